/** Snapshot of an extracted tree for comparing ingot's extraction with cpio's. */
import { createHash } from 'node:crypto';
import { lstatSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { requireTool } from './tools.js';

export interface Node { type: string; rdev: number; mode: number; size: number; sha256: string; target: string; mtime: number; uid: number; gid: number; ino: number }

export function snapshot(root: string): Map<string, Node> {
  const out = new Map<string, Node>();
  const walk = (rel: Buffer) => {
    const abs = rel.length ? Buffer.concat([Buffer.from(root + '/'), rel]) : Buffer.from(root);
    for (const name of readdirSync(abs, { encoding: 'buffer' }).sort(Buffer.compare)) {
      const r = rel.length ? Buffer.concat([rel, Buffer.from('/'), name]) : name;
      const p = Buffer.concat([Buffer.from(root + '/'), r]);
      const st = lstatSync(p);
      const type = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isFile() ? 'file' : st.isCharacterDevice() ? 'char' : st.isBlockDevice() ? 'block' : st.isFIFO() ? 'fifo' : 'other';
      out.set(r.toString('latin1'), {
        type, rdev: st.rdev, mode: st.mode & 0o7777, size: type === 'file' ? st.size : 0,
        sha256: type === 'file' ? createHash('sha256').update(readFileSync(p)).digest('hex') : '',
        target: type === 'symlink' ? readlinkSync(p, { encoding: 'buffer' }).toString('latin1') : '',
        mtime: Math.floor(st.mtimeMs / 1000), uid: st.uid, gid: st.gid, ino: st.ino,
      });
      if (type === 'dir') walk(r);
    }
  };
  walk(Buffer.alloc(0));
  return out;
}

/** Hard-link groups (sets of paths sharing an inode, size > 1), canonical form. */
export function linkGroups(t: Map<string, Node>): string[][] {
  const by = new Map<number, string[]>();
  for (const [p, n] of t) if (n.type === 'file') by.set(n.ino, [...(by.get(n.ino) ?? []), p]);
  return [...by.values()].filter((g) => g.length > 1).map((g) => g.sort()).sort((a, b) => a[0]!.localeCompare(b[0]!));
}

/** Differences between two snapshots (ino ignored; hard links compared as groups). */
export function compareTrees(mine: Map<string, Node>, theirs: Map<string, Node>, opts: { owners: boolean; ignore?: string[] }): string[] {
  const d: string[] = [];
  for (const [p, b] of theirs) {
    const a = mine.get(p);
    if (!a) { d.push(`missing ${JSON.stringify(p)}`); continue; }
    const pick = (n: Node) => ({
      type: n.type, rdev: n.rdev, mode: n.mode.toString(8), size: n.size, sha256: n.sha256, target: n.target,
      // GNU cpio -m restores the mtime of regular files only (not of directories or symlinks).
      ...(n.type === 'file' ? { mtime: n.mtime } : {}),
      ...(opts.owners ? { uid: n.uid, gid: n.gid } : {}),
      // symlink permission bits are not meaningful on Linux
      ...(n.type === 'symlink' ? { mode: '' } : {}),
    });
    const drop = (o: Record<string, unknown>) => { for (const k of opts.ignore ?? []) delete o[k]; return o; };
    const x = JSON.stringify(drop(pick(a)));
    const y = JSON.stringify(drop(pick(b)));
    if (x !== y) d.push(`${JSON.stringify(p)}: ingot ${x} ≠ cpio ${y}`);
  }
  for (const p of mine.keys()) if (!theirs.has(p)) d.push(`extra ${JSON.stringify(p)}`);
  const la = JSON.stringify(linkGroups(mine));
  const lb = JSON.stringify(linkGroups(theirs));
  if (la !== lb) d.push(`hard links: ingot ${la} ≠ cpio ${lb}`);
  return d;
}

/**
 * `rpm2cpio FILE | cpio -idm` into dir. Success is cpio's exit status: rpm 4.18's
 * rpm2cpio exits 1 after writing a complete archive for some packages (Rimmer,
 * nfpm), so its status says nothing about the archive.
 */
export function cpioExtract(file: string, dir: string): { ok: boolean; stderr: string } {
  requireTool('rpm2cpio');
  requireTool('cpio');
  const r = spawnSync('bash', ['-c', 'rpm2cpio "$1" | cpio -idm --quiet --no-absolute-filenames', 'bash', file], { cwd: dir, encoding: 'utf8' });
  return { ok: r.status === 0, stderr: r.stderr };
}

/** rpm 4.18's rpm2cpio refuses packages with 64-bit file sizes (rpm 6 / v6, stripped cpio) with this message. */
export function rpm2cpioRefusesLongSizes(file: string): boolean {
  const r = spawnSync('rpm2cpio', [file], { encoding: 'latin1', maxBuffer: 1 << 30 });
  return /files over 4GB not supported by cpio/.test(r.stderr);
}

export const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
export { join };
