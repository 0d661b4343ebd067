/** Reading small files of a staging tree (configuration files, macros). */
import { readAll } from './content-store.js';
import type { StagingTree } from './tree.js';

/** The text of a regular file in the tree (symlinks followed chroot-style), or undefined when absent. */
export async function readTreeText(tree: StagingTree, path: string): Promise<string | undefined> {
  const node = tree.lookup(path);
  if (!node || node.type !== 'file') return undefined;
  return (await readAll(node.content!)).toString('utf8');
}

/** Names in a tree directory (byte order), or [] when absent. */
export function listTreeDir(tree: StagingTree, path: string): string[] {
  const node = tree.lookup(path);
  if (!node || node.type !== 'dir') return [];
  return [...node.entries!.keys()].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
}
