/** Copy between a directory on disk and a StagingTree, for tests that run an oracle on a real directory. */
import { mkdirSync, readdirSync, lstatSync, readlinkSync, readFileSync, writeFileSync, symlinkSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { StagingTree, BufferContent } from '../../src/tree/tree.js';
import { readInodeBytes } from '../../src/install/treetext.js';

/** Load a directory (files, dirs, symlinks; modes kept) into a new StagingTree. */
export function loadDirIntoTree(root: string, tree = new StagingTree()): StagingTree {
  const walk = (rel: string): void => {
    for (const name of readdirSync(join(root, rel)).sort()) {
      const r = `${rel}/${name}`;
      const st = lstatSync(join(root, r));
      if (st.isSymbolicLink()) tree.symlink(r, readlinkSync(join(root, r)));
      else if (st.isDirectory()) { tree.mkdirp(r, { mode: st.mode & 0o7777 }); walk(r); }
      else if (st.isFile()) tree.addFile(r, BufferContent.of(readFileSync(join(root, r))), { mode: st.mode & 0o7777 });
    }
  };
  walk('');
  return tree;
}

/** Write a StagingTree's dirs, files and symlinks under `dest` (ownership ignored). */
export async function writeTreeToDir(tree: StagingTree, dest: string): Promise<void> {
  for (const { path, inode } of tree.walk()) {
    if (path === '/') continue;
    const p = join(dest, path);
    if (inode.type === 'dir') mkdirSync(p, { recursive: true });
    else if (inode.type === 'symlink') symlinkSync(inode.target!, p);
    else if (inode.type === 'file') { writeFileSync(p, await readInodeBytes(inode, path)); chmodSync(p, inode.mode); }
  }
}
