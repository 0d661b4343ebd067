/** Small helpers to read and write text files of a {@link StagingTree} (configs, unit files, policies). */
import { BufferContent, StagingTree, type Inode } from '../tree/tree.js';
import { IngotError } from '../errors.js';

/** Config files larger than this are refused rather than read into memory. */
export const MAX_TEXT_FILE = 64 * 1024 * 1024;

/** Read a regular file of the tree as bytes (following symlinks); undefined when absent or not a file. */
export async function readTreeBytes(tree: StagingTree, path: string): Promise<Buffer | undefined> {
  const node = tree.lookup(path);
  if (!node || node.type !== 'file' || !node.content) return undefined;
  return readInodeBytes(node, path);
}

export async function readInodeBytes(node: Inode, path: string): Promise<Buffer> {
  const size = node.content!.size;
  if (size > MAX_TEXT_FILE) throw new IngotError('TREE_FILE_TOO_LARGE', `file too large to read as text (${size} bytes)`, { file: path });
  const buf = Buffer.alloc(size);
  let off = 0;
  while (off < size) {
    const n = await node.content!.read(buf.subarray(off), off);
    if (n <= 0) break;
    off += n;
  }
  return buf.subarray(0, off);
}

export async function readTreeText(tree: StagingTree, path: string): Promise<string | undefined> {
  return (await readTreeBytes(tree, path))?.toString('utf8');
}

/** Write (replace) a small text file, creating parent directories. */
export function writeTreeText(tree: StagingTree, path: string, text: string | Uint8Array, mode = 0o644): Inode {
  const dir = path.slice(0, path.lastIndexOf('/'));
  if (dir) tree.mkdirp(dir);
  return tree.addFile(path, BufferContent.of(text), { mode });
}

/** Names in a directory of the tree (following symlinks to it), sorted bytewise; [] when absent. */
export function listTreeDir(tree: StagingTree, path: string): string[] {
  const node = tree.lookup(path);
  if (!node || node.type !== 'dir') return [];
  return [...node.entries!.keys()].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
}
