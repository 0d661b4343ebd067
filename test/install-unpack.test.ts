// Oracle: rpm2cpio | cpio -idm (unpackWithHostTools) for every package of the
// fixture repository, against what the Unpacker puts in the staging tree:
// same paths, types, modes, sizes, symlink targets, hard links and contents.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { lstatSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixturePackages, unpackWithHostTools } from '../fixtures/repo.js';
import { openRpm } from '../src/rpm/reader.js';
import { ContentStore, readAll } from '../src/tree/content-store.js';
import { StagingTree, type Inode } from '../src/tree/tree.js';
import { Unpacker, FileConflictError } from '../src/install/unpack.js';
import { requireTool } from './helpers/tools.js';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

function hostWalk(root: string, rel = ''): Map<string, string> {
  const out = new Map<string, string>();
  for (const name of readdirSync(join(root, rel))) {
    const p = `${rel}/${name}`;
    const st = lstatSync(join(root, p));
    const mode = (st.mode & 0o7777).toString(8);
    if (st.isDirectory()) { out.set(p, `dir ${mode}`); for (const [k, v] of hostWalk(root, p)) out.set(k, v); }
    else if (st.isSymbolicLink()) out.set(p, `symlink -> ${readlinkSync(join(root, p))}`);
    else if (st.isFile()) out.set(p, `file ${mode} ${st.size} ${sha(readFileSync(join(root, p)))} nlink=${st.nlink}`);
    else out.set(p, `special ${mode}`);
  }
  return out;
}

async function treeWalk(tree: StagingTree): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const { path, inode } of tree.walk()) {
    if (path === '/') continue;
    const mode = (inode.mode & 0o7777).toString(8);
    const n: Inode = inode;
    if (n.type === 'dir') out.set(path, `dir ${mode}`);
    else if (n.type === 'symlink') out.set(path, `symlink -> ${n.target}`);
    else if (n.type === 'file') out.set(path, `file ${mode} ${n.content!.size} ${sha(await readAll(n.content!))} nlink=${n.nlink}`);
    else out.set(path, `special ${mode}`);
  }
  return out;
}

test('every fixture package unpacks exactly as rpm2cpio | cpio -idm lays it out', async () => {
  requireTool('rpm2cpio');
  requireTool('cpio');
  const pkgs = fixturePackages();
  const names = [...new Set([...pkgs.entries()].filter(([n]) => n !== 'kernel').map(([n]) => n))];
  assert.ok(names.length >= 8, `fixture repo has ${names.length} packages`);
  const store = ContentStore.create();
  try {
    for (const name of names) {
      const dest = mkdtempSync(join(tmpdir(), 'ingot-unpack-'));
      try {
        unpackWithHostTools([name], dest);
        const tree = new StagingTree();
        const u = new Unpacker(tree, store, () => ({ uid: () => 0, gid: () => 0 }), { lenientOwners: true });
        await u.install(await openRpm(pkgs.get(name)!));
        const want = hostWalk(dest);
        const got = await treeWalk(tree);
        // cpio creates the parent directories of files whose directories the package does not own, with mode 0755 too.
        for (const [p, v] of want) assert.is(got.get(p), v, `${name}: ${p}`);
        for (const p of got.keys()) assert.ok(want.has(p), `${name}: extra ${p}`);
      } finally {
        rmSync(dest, { recursive: true, force: true });
      }
    }
  } finally {
    await store.dispose();
  }
});

test('two packages shipping different contents at one path conflict, naming both', async () => {
  const pkgs = fixturePackages();
  const store = ContentStore.create();
  try {
    const tree = new StagingTree();
    const u = new Unpacker(tree, store, () => ({ uid: () => 0, gid: () => 0 }), { lenientOwners: true });
    const pkg = await openRpm(pkgs.get('ingot-base')!);
    await u.install(pkg);
    // The same package again under another name: identical files are fine, so nothing conflicts…
    const u2 = new Unpacker(tree, store, () => ({ uid: () => 0, gid: () => 0 }), { lenientOwners: true });
    await u2.install(pkg);
    // …but a different file at a path another package owns does.
    (u as unknown as { owners: Map<string, { pkg: string; kind: string; digest: string; linkTo: string }> }).owners.set('/etc/passwd', { pkg: 'other-1-1.noarch', kind: 'file', digest: 'ff', linkTo: '' });
    try {
      await u.install(pkg);
      assert.unreachable('expected a conflict');
    } catch (e) {
      assert.instance(e, FileConflictError);
      assert.match((e as Error).message, /other-1-1\.noarch/);
      assert.match((e as Error).message, /ingot-base/);
    }
  } finally {
    await store.dispose();
  }
});

test.run();
