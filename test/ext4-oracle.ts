/**
 * Oracles for the ext4 tests: e2fsprogs (e2fsck, debugfs, dumpe2fs,
 * resize2fs) judge the images ingot writes. Shared by test/ext4*.test.ts.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync, lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireTool } from './helpers/tools.js';
import type { StagingTree, Inode, Timespec } from '../src/tree/tree.js';

export function tmp(prefix = 'ingot-ext4-'): string {
  return mkdtempSync(join(process.env.INGOT_TMP ?? tmpdir(), prefix));
}

export function run(cmd: string, args: string[], input?: string): { code: number; out: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', input, maxBuffer: 1 << 30 });
  return { code: r.status ?? -1, out: (r.stdout ?? '') + (r.stderr ?? '') };
}

/** e2fsck -fn: exit code and the lines that are not the normal pass banner. */
export function fsck(image: string, extra: string[] = []): { code: number; problems: string[]; out: string } {
  requireTool('e2fsck');
  const r = run('e2fsck', ['-fn', ...extra, image]);
  const problems = r.out.split('\n').filter((l) => l.trim() && !/^(e2fsck \d|Pass \d|.*: \d+\/\d+ files \()/.test(l));
  return { code: r.code, problems, out: r.out };
}

/** Run debugfs commands in one process; returns each command's output. */
export function debugfs(image: string, cmds: string[]): string[] {
  requireTool('debugfs');
  const dir = tmp('ingot-dbg-');
  try {
    const f = join(dir, 'cmds');
    writeFileSync(f, cmds.join('\n') + '\n');
    // stdout only: the version banner and error messages go to stderr.
    const r = spawnSync('debugfs', ['-f', f, image], { encoding: 'utf8', maxBuffer: 1 << 30 });
    const parts = (r.stdout ?? '').split(/^debugfs: /m).slice(1);
    return parts.map((p) => p.slice(p.indexOf('\n') + 1));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface DebugfsStat {
  type: string; mode: number; uid: number; gid: number; size: number; links: number; flags: number;
  atime: Timespec; mtime: Timespec; ctime: Timespec; fastLink?: string; device?: { major: number; minor: number };
  fileAcl: number; extents: string;
}

function time(s: string, name: string): Timespec {
  const m = new RegExp(`${name}: 0x([0-9a-f]+)(?::([0-9a-f]+))?`).exec(s);
  if (!m) throw new Error(`no ${name} in debugfs stat: ${s}`);
  const lo = parseInt(m[1]!, 16) | 0;
  const extra = parseInt(m[2] ?? '0', 16);
  return { sec: lo + (extra & 3) * 2 ** 32, nsec: extra >>> 2 };
}

export function parseStat(s: string): DebugfsStat {
  const num = (re: RegExp) => {
    const m = re.exec(s);
    if (!m) throw new Error(`${re} not in debugfs stat: ${s}`);
    return Number(m[1]);
  };
  const dev = /Device major\/minor number: (\d+):(\d+)/.exec(s);
  const link = /Fast link dest: "(.*)"/.exec(s);
  return {
    type: /Type: ([A-Za-z ]+?)\s+Mode/.exec(s)![1]!,
    mode: parseInt(/Mode:\s+(\d+)/.exec(s)![1]!, 8),
    flags: parseInt(/Flags: 0x([0-9a-f]+)/.exec(s)![1]!, 16),
    uid: num(/User:\s+(\d+)/), gid: num(/Group:\s+(\d+)/), size: num(/Size: (\d+)/), links: num(/Links: (\d+)/),
    fileAcl: num(/File ACL: (\d+)/),
    atime: time(s, 'atime'), mtime: time(s, 'mtime'), ctime: time(s, 'ctime'),
    fastLink: link?.[1], device: dev ? { major: Number(dev[1]), minor: Number(dev[2]) } : undefined,
    extents: /EXTENTS:\n(.*)/.exec(s)?.[1] ?? '',
  };
}

const DEBUGFS_TYPE: Record<Inode['type'], string> = {
  file: 'regular', dir: 'directory', symlink: 'symlink', chardev: 'character special', blockdev: 'block special', fifo: 'FIFO', socket: 'socket',
};

export async function contentHash(inode: Inode): Promise<string> {
  const h = createHash('sha256');
  const c = inode.content!;
  const buf = new Uint8Array(1 << 20);
  for (let pos = 0; pos < c.size;) {
    const n = await c.read(buf.subarray(0, Math.min(buf.length, c.size - pos)), pos);
    if (n <= 0) throw new Error('short read');
    h.update(buf.subarray(0, n));
    pos += n;
  }
  return h.digest('hex');
}

/**
 * Compare every node of `tree` with what debugfs sees in `image`: type,
 * mode, owner, size, link count, times (ns), symlink target, device
 * numbers, xattrs (ea_get), and file contents (rdump + sha256).
 * Returns a list of differences (empty when equal). `clamp` is SOURCE_DATE_EPOCH.
 */
export async function compareWithDebugfs(tree: StagingTree, image: string, clamp?: number, maxContent = Infinity): Promise<string[]> {
  const diffs: string[] = [];
  const entries = [...tree.walk()].filter((e) => e.path !== '/lost+found');
  const cmds: string[] = [];
  const q = (p: string) => `"${p.replace(/"/g, '\\"')}"`;
  const dir = tmp('ingot-cmp-');
  try {
    const xattrFiles: { path: string; name: string; file: string; value: Uint8Array }[] = [];
    for (const e of entries) {
      cmds.push(`stat ${q(e.path)}`);
    }
    let k = 0;
    for (const e of entries) {
      for (const [name, value] of e.inode.xattrs) {
        if (name.startsWith('system.posix_acl')) continue;
        const file = join(dir, `x${k++}`);
        xattrFiles.push({ path: e.path, name, file, value });
        cmds.push(`ea_get -f ${file} ${q(e.path)} ${name}`);
      }
    }
    const rd = join(dir, 'rdump');
    run('mkdir', [rd]);
    // Whole-tree rdump, or (with a content limit) one dump per small file.
    const hostPath = new Map<string, string>();
    if (maxContent === Infinity) {
      cmds.push(`rdump / ${rd}`);
      for (const e of entries) hostPath.set(e.path, join(rd, e.path));
    } else {
      entries.forEach((e, i) => {
        if (e.inode.type !== 'file' || e.inode.content!.size > maxContent) return;
        hostPath.set(e.path, join(rd, `f${i}`));
        cmds.push(`dump ${q(e.path)} ${join(rd, `f${i}`)}`);
      });
    }
    const outs = debugfs(image, cmds);
    const clampT = (t: Timespec) => (clamp !== undefined && t.sec > clamp ? { sec: clamp, nsec: 0 } : t);
    entries.forEach((e, i) => {
      let st: DebugfsStat;
      try { st = parseStat(outs[i]!); } catch (err) { diffs.push(`${e.path}: ${(err as Error).message.slice(0, 200)}`); return; }
      const n = e.inode;
      const want = (field: string, a: unknown, b: unknown) => {
        if (JSON.stringify(a) !== JSON.stringify(b)) diffs.push(`${e.path}: ${field} ${JSON.stringify(a)} != tree ${JSON.stringify(b)}`);
      };
      want('type', st.type, DEBUGFS_TYPE[n.type]);
      want('mode', st.mode, n.mode);
      want('uid', st.uid, n.uid);
      want('gid', st.gid, n.gid);
      want('mtime', st.mtime, clampT(n.mtime));
      want('atime', st.atime, clampT(n.atime));
      want('ctime', st.ctime, clampT(n.ctime));
      if (n.type === 'file') want('size', st.size, n.content!.size);
      if (n.type !== 'dir') want('links', st.links, n.nlink);
      if (n.type === 'symlink') {
        want('size', st.size, Buffer.byteLength(n.target!));
        if (Buffer.byteLength(n.target!) < 60) want('target', st.fastLink, n.target);
      }
      if (n.type === 'chardev' || n.type === 'blockdev') want('rdev', st.device, n.rdev);
    });
    for (const x of xattrFiles) {
      let got: Buffer | undefined;
      try { got = readFileSync(x.file); } catch { /* missing */ }
      if (!got || !got.equals(Buffer.from(x.value))) diffs.push(`${x.path}: xattr ${x.name} differs`);
    }
    for (const e of entries) {
      const host = hostPath.get(e.path);
      if (host === undefined) continue;
      if (e.inode.type === 'file' && e.inode.content!.size <= maxContent) {
        let got: string | undefined;
        // debugfs 1.47.0 dumps an inline-data file shorter than i_block as all 60 bytes of i_block.
        const size = e.inode.content!.size;
        try { got = hashFile(host, size < 60 && lstatSync(host).size === 60 ? size : Infinity); } catch { /* missing */ }
        if (got !== await contentHash(e.inode)) diffs.push(`${e.path}: content differs`);
      } else if (e.inode.type === 'symlink') {
        let got: string | undefined;
        try { got = readlinkSync(host); } catch { /* missing */ }
        if (got !== e.inode.target) diffs.push(`${e.path}: link target ${got} != ${e.inode.target}`);
      } else if (e.inode.type === 'dir' && e.path !== '/') {
        const names = new Set(readdirSync(host));
        for (const c of e.inode.entries!.keys()) {
          const t = e.inode.entries!.get(c)!.type;
          if ((t === 'file' || t === 'dir' || t === 'symlink') && !names.has(c)) diffs.push(`${e.path}/${c}: not in rdump`);
        }
        if (!lstatSync(host).isDirectory()) diffs.push(`${e.path}: not a directory in rdump`);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return diffs;
}

export function dumpe2fsHeader(image: string): string {
  requireTool('dumpe2fs');
  return run('dumpe2fs', ['-h', image]).out;
}

function hashFile(path: string, limit = Infinity): string {
  const h = createHash('sha256');
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(4 << 20);
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n <= 0) break;
      h.update(buf.subarray(0, Math.min(n, limit)));
      limit -= n;
      if (limit <= 0) break;
    }
  } finally {
    closeSync(fd);
  }
  return h.digest('hex');
}
