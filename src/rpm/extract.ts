/**
 * Extracting a package's payload into a directory, as `rpm2cpio | cpio -idm`
 * does: files, directories, symlinks, hard links (data written once, the
 * other members linked), device nodes; modes and mtimes applied; owners only
 * when running as root. The directory is built under a temporary name and
 * renamed into place on success, so a failure leaves nothing behind. Paths
 * that would leave the directory (`..`, or through a symlink the package
 * itself created) are refused.
 */
import {
  chmodSync, chownSync, closeSync, futimesSync, fchmodSync, fchownSync, lchownSync, linkSync, lutimesSync,
  mkdirSync, openSync, readFileSync, readdirSync, statSync, symlinkSync, utimesSync, writeSync,
} from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import { IngotError, PathEscapeError } from '../errors.js';
import { atomicOutput } from '../util/atomic.js';
import { openRpm } from './reader.js';
import type { PayloadEntry } from './payload.js';

/** All of `b` at file position `pos` (write(2) may be short). */
function writeAll(fd: number, b: Buffer, pos: number): void {
  let off = 0;
  while (off < b.length) off += writeSync(fd, b, off, b.length - off, pos + off);
}

export interface ExtractOptions {
  /** Apply owners (default: only when running as root). */
  owners?: boolean;
}

export interface ExtractResult { files: number; dirs: number; symlinks: number; hardlinks: number; bytes: number }

/** Host user/group name → id tables, for entries that carry names only (stripped cpio). */
function idTable(path: string): Map<string, number> {
  const m = new Map<string, number>();
  try {
    for (const line of readFileSync(path, 'utf8').split('\n')) {
      const f = line.split(':');
      if (f.length >= 3 && f[0]) m.set(f[0], Number(f[2]));
    }
  } catch { /* no table: ids from the payload */ }
  return m;
}

/** Split a package path into safe components relative to the destination; refuses `..`. */
export function safeComponents(path: string): string[] {
  const parts = path.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.some((p) => p === '..')) throw new PathEscapeError(path);
  return parts;
}

/** Extract the package at `rpmPath` into `dest` (which must not exist yet, or be an empty directory). */
export async function extractRpm(rpmPath: string, dest: string, opts: ExtractOptions = {}): Promise<ExtractResult> {
  try {
    if (readdirSync(dest).length > 0) throw new IngotError('RPM_EXTRACT', `destination ${JSON.stringify(dest)} exists and is not empty`, { file: rpmPath });
  } catch (e) {
    if (e instanceof IngotError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOTDIR') throw new IngotError('RPM_EXTRACT', `destination ${JSON.stringify(dest)} is not a directory`, { file: rpmPath });
    if (code !== 'ENOENT') throw e;
  }
  const pkg = await openRpm(rpmPath);
  const owners = opts.owners ?? (typeof process.getuid === 'function' && process.getuid() === 0);
  const users = owners ? idTable('/etc/passwd') : new Map<string, number>();
  const groups = owners ? idTable('/etc/group') : new Map<string, number>();
  return atomicOutput(dest, async (tmp) => {
    await mkdir(tmp, { mode: 0o755 });
    const kinds = new Map<string, 'dir' | 'symlink' | 'other'>([['', 'dir']]);
    const dirs: { path: Buffer; entry: PayloadEntry; exact: boolean }[] = [];
    const res: ExtractResult = { files: 0, dirs: 0, symlinks: 0, hardlinks: 0, bytes: 0 };
    const creds = creationCredentials(tmp);
    // As cpio -idm: the archive's numeric ids; stripped entries carry only names, resolved on this host (else root).
    // An owner a new inode already has (the usual root:root when extracting as root) is not set again.
    const chownNeeded = (e: PayloadEntry): [number, number] | null => {
      if (!owners) return null;
      const u = e.uid ?? users.get(e.user) ?? 0;
      const g = e.gid ?? groups.get(e.group) ?? 0;
      return u === creds.uid && g === creds.gid ? null : [u, g];
    };
    // Parents are created as plain 0755 directories (cpio -d); a parent that is a symlink is an escape.
    const parentOf = (parts: string[], path: string): void => {
      let rel = '';
      for (let i = 0; i < parts.length - 1; i++) {
        rel = rel ? `${rel}/${parts[i]}` : parts[i]!;
        const k = kinds.get(rel);
        if (k === 'dir') continue;
        if (k === 'symlink') throw new PathEscapeError(path, { file: rpmPath, field: 'through a symlink' });
        if (k === 'other') throw new IngotError('RPM_EXTRACT', `parent of ${JSON.stringify(path)} is not a directory`, { file: rpmPath });
        mkdirSync(Buffer.from(`${tmp}/${rel}`, 'latin1'), { mode: 0o755 });
        kinds.set(rel, 'dir');
      }
    };
    for await (const e of pkg.entries({ transient: true })) {
      // Paths keep their bytes (headers need not be UTF-8): work on a Latin-1 view, one char per byte.
      const parts = safeComponents(Buffer.from(e.rawPath).toString('latin1'));
      if (parts.length === 0) { for await (const _ of e.content) { /* root entry */ } continue; }
      parentOf(parts, e.path);
      const rel = parts.join('/');
      const full = Buffer.from(`${tmp}/${rel}`, 'latin1');
      const prev = kinds.get(rel);
      if (prev !== undefined && !(prev === 'dir' && e.type === 'dir')) {
        throw new IngotError('RPM_EXTRACT', `payload entry ${JSON.stringify(e.path)} already exists`, { file: rpmPath });
      }
      const perm = e.mode & 0o7777;
      switch (e.type) {
        case 'dir': {
          // Created with its final mode when that leaves the owner free to fill it; else 0700 until the end.
          const exact = prev === undefined && (perm & 0o700) === 0o700 && creds.honours(perm);
          if (prev === undefined) mkdirSync(full, { mode: exact ? perm : 0o700 });
          kinds.set(rel, 'dir');
          dirs.push({ path: full, entry: e, exact });
          res.dirs++;
          break;
        }
        case 'symlink': {
          symlinkSync(e.linkTo, full);
          kinds.set(rel, 'symlink');
          const own = chownNeeded(e);
          if (own) lchownSync(full, own[0], own[1]);
          lutimesSync(full, e.mtime, e.mtime);
          res.symlinks++;
          break;
        }
        case 'hardlink': {
          const target = safeComponents(e.linkToRaw ? Buffer.from(e.linkToRaw).toString('latin1') : e.linkTo).join('/');
          linkSync(Buffer.from(`${tmp}/${target}`, 'latin1'), full);
          kinds.set(rel, 'other');
          res.hardlinks++;
          break;
        }
        case 'file': {
          // Synchronous writes: the payload is decoded on another thread (or is the slower side anyway),
          // and each thread-pool round trip would cost more than the write it carries.
          const fd = openSync(full, 'wx', perm & 0o777);
          kinds.set(rel, 'other');
          try {
            let pos = 0;
            for await (const chunk of e.content) { writeAll(fd, chunk, pos); pos += chunk.length; }
            res.bytes += pos;
            const own = chownNeeded(e);
            if (own) fchownSync(fd, own[0], own[1]);
            // chown clears set-id bits, so the mode comes after the owner; skipped when open() already set it.
            if (own || !creds.honours(perm)) fchmodSync(fd, perm);
            futimesSync(fd, e.mtime, e.mtime);
          } finally {
            closeSync(fd);
          }
          res.files++;
          break;
        }
        default: {
          // Device nodes, FIFOs, sockets: only root may create device nodes.
          if (!owners && (e.type === 'char' || e.type === 'block')) {
            throw new IngotError('RPM_EXTRACT', `creating device node ${JSON.stringify(e.path)} needs root`, { file: rpmPath });
          }
          const kind = e.type === 'char' ? 'c' : e.type === 'block' ? 'b' : 'p';
          const name = full.toString('latin1');
          const args = kind === 'p' ? [name, 'p'] : [name, kind, String(e.rdevMajor), String(e.rdevMinor)];
          const r = spawnSync('mknod', ['-m', perm.toString(8), ...args]);
          if (r.status !== 0) throw new IngotError('RPM_EXTRACT', `mknod ${JSON.stringify(e.path)} failed: ${String(r.stderr).trim()}`, { file: rpmPath });
          const own = chownNeeded(e);
          if (own) chownSync(full, own[0], own[1]);
          chmodSync(full, perm);
          utimesSync(full, e.mtime, e.mtime);
          kinds.set(rel, 'other');
          res.files++;
        }
      }
    }
    // Directory metadata last (deepest first), so read-only directories and mtimes survive their children.
    for (let i = dirs.length - 1; i >= 0; i--) {
      const { path, entry, exact } = dirs[i]!;
      const own = chownNeeded(entry);
      if (own) chownSync(path, own[0], own[1]);
      if (own || !exact) chmodSync(path, entry.mode & 0o7777);
      utimesSync(path, entry.mtime, entry.mtime);
    }
    return res;
  });
}

/**
 * Who owns, and which mode bits survive on, an inode created under `root`:
 * the effective ids (or the directory's group when it is set-group-ID), and
 * the permission bits outside the umask. Set-id and sticky bits are always
 * applied with chmod, as open(2)/mkdir(2) may drop them.
 */
function creationCredentials(root: string): { uid: number; gid: number; honours(perm: number): boolean } {
  const st = statSync(root);
  const umask = process.umask();
  return {
    uid: process.geteuid?.() ?? -1,
    gid: st.mode & 0o2000 ? -1 : (process.getegid?.() ?? -1),
    honours: (perm: number) => (perm & 0o7000) === 0 && (perm & umask) === 0,
  };
}
