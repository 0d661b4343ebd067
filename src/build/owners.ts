/**
 * User and group names → ids through the image's own /etc/passwd and
 * /etc/group, re-read whenever a package replaced them (the `setup` package
 * installs them early in the transaction; later packages add accounts).
 */
import type { StagingTree, Inode } from '../tree/tree.js';
import type { OwnerResolver } from '../install/unpack.js';
import { readInodeBytes } from '../install/treetext.js';

function parseIds(text: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f.length >= 3 && f[0] && /^\d+$/.test(f[2]!)) m.set(f[0], Number(f[2]));
  }
  return m;
}

export class TreeOwnerResolver {
  private cache = new Map<string, { node: Inode; size: number; ids: Map<string, number> }>();
  /** Accounts created outside the files (sysusers.d, scriptlets) before the files are rewritten. */
  readonly extraUsers = new Map<string, number>();
  readonly extraGroups = new Map<string, number>();

  constructor(private readonly tree: StagingTree) {}

  private async load(path: string): Promise<void> {
    const node = this.tree.lookup(path);
    if (!node || node.type !== 'file') { this.cache.delete(path); return; }
    const hit = this.cache.get(path);
    if (hit && hit.node === node && hit.size === node.content!.size) return;
    const text = (await readInodeBytes(node, path)).toString('utf8');
    this.cache.set(path, { node, size: node.content!.size, ids: parseIds(text) });
  }

  /** Refresh from the tree; call between packages. */
  async refresh(): Promise<void> {
    await this.load('/etc/passwd');
    await this.load('/etc/group');
  }

  resolver(): OwnerResolver {
    return {
      uid: (n) => this.cache.get('/etc/passwd')?.ids.get(n) ?? this.extraUsers.get(n),
      gid: (n) => this.cache.get('/etc/group')?.ids.get(n) ?? this.extraGroups.get(n),
    };
  }
}
