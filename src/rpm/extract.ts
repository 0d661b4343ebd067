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
  mkdirSync, openSync, readFileSync, readdirSync, symlinkSync, utimesSync, write,
} from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import { IngotError, PathEscapeError } from '../errors.js';
import { atomicOutput } from '../util/atomic.js';
import { openRpm } from './reader.js';
import type { PayloadEntry } from './payload.js';

/**
 * File writes run on libuv's thread pool while the main thread decompresses
 * and parses the next entries (as rpm2cpio and cpio overlap in a pipeline).
 * In-flight data is bounded; the first error is kept and rethrown by drain().
 */
class WriteQueue {
  private readonly pending = new Set<Promise<void>>();
  private bytes = 0;
  private error: unknown = null;
  constructor(private readonly maxBytes = 8 << 20, private readonly maxOps = 64) {}

  add(p: Promise<void>, bytes: number): void {
    this.bytes += bytes;
    const tracked = p.then(
      () => { this.bytes -= bytes; this.pending.delete(tracked); },
      (e: unknown) => { this.bytes -= bytes; this.pending.delete(tracked); this.error ??= e; },
    );
    this.pending.add(tracked);
  }

  async room(): Promise<void> {
    while (this.pending.size > 0 && (this.bytes > this.maxBytes || this.pending.size > this.maxOps)) await Promise.race(this.pending);
    if (this.error) throw this.error;
  }

  async drain(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
    if (this.error) throw this.error;
  }
}

const writeAt = (fd: number, b: Buffer, pos: number) => new Promise<void>((res, rej) => {
  let off = 0;
  const step = (): void => {
    write(fd, b, off, b.length - off, pos + off, (e, n) => {
      if (e) return rej(e);
      off += n;
      if (off < b.length) step(); else res();
    });
  };
  step();
});

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
    const queue = new WriteQueue();
    const dirs: { path: Buffer; entry: PayloadEntry }[] = [];
    const res: ExtractResult = { files: 0, dirs: 0, symlinks: 0, hardlinks: 0, bytes: 0 };
    // As cpio -idm: the archive's numeric ids; stripped entries carry only names, resolved on this host (else root).
    const ownerOf = (e: PayloadEntry): [number, number] => [
      e.uid ?? users.get(e.user) ?? 0,
      e.gid ?? groups.get(e.group) ?? 0,
    ];
    // Parents are created as plain 0755 directories (cpio -d); a parent that is a symlink is an escape.
    const parentOf = (parts: string[], path: string): string => {
      let rel = '';
      for (let i = 0; i < parts.length - 1; i++) {
        rel = rel ? `${rel}/${parts[i]}` : parts[i]!;
        const k = kinds.get(rel);
        if (k === 'symlink') throw new PathEscapeError(path, { file: rpmPath, field: 'through a symlink' });
        if (k === 'other') throw new IngotError('RPM_EXTRACT', `parent of ${JSON.stringify(path)} is not a directory`, { file: rpmPath });
        if (k === undefined) {
          mkdirSync(Buffer.from(`${tmp}/${rel}`, 'latin1'), { mode: 0o755 });
          kinds.set(rel, 'dir');
        }
      }
      return rel;
    };
    try {
    for await (const e of pkg.entries()) {
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
        case 'dir':
          if (prev === undefined) mkdirSync(full, { mode: 0o700 });
          kinds.set(rel, 'dir');
          dirs.push({ path: full, entry: e });
          res.dirs++;
          break;
        case 'symlink':
          symlinkSync(e.linkTo, full);
          kinds.set(rel, 'symlink');
          if (owners) { const [u, g] = ownerOf(e); lchownSync(full, u, g); }
          lutimesSync(full, e.mtime, e.mtime);
          res.symlinks++;
          break;
        case 'hardlink': {
          const target = safeComponents(e.linkToRaw ? Buffer.from(e.linkToRaw).toString('latin1') : e.linkTo).join('/');
          linkSync(Buffer.from(`${tmp}/${target}`, 'latin1'), full);
          kinds.set(rel, 'other');
          res.hardlinks++;
          break;
        }
        case 'file': {
          const fd = openSync(full, 'wx', 0o600);
          const writes: Promise<void>[] = [];
          let pos = 0;
          try {
            for await (const chunk of e.content) {
              await queue.room();
              const p = writeAt(fd, chunk, pos);
              writes.push(p);
              queue.add(p, chunk.length);
              pos += chunk.length;
            }
          } catch (err) {
            await Promise.allSettled(writes);
            closeSync(fd);
            throw err;
          }
          res.bytes += pos;
          const [u, g] = owners ? ownerOf(e) : [-1, -1];
          // chown clears set-id bits, so owners first, then the mode.
          queue.add(Promise.all(writes).then(() => {
            if (owners) fchownSync(fd, u, g);
            fchmodSync(fd, perm);
            futimesSync(fd, e.mtime, e.mtime);
          }).finally(() => closeSync(fd)), 0);
          kinds.set(rel, 'other');
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
          if (owners) { const [u, g] = ownerOf(e); chownSync(full, u, g); }
          chmodSync(full, perm);
          utimesSync(full, e.mtime, e.mtime);
          kinds.set(rel, 'other');
          res.files++;
        }
      }
    }
    } catch (e) {
      await queue.drain().catch(() => undefined); // nothing may still write into the directory being removed
      throw e;
    }
    await queue.drain();
    // Directory metadata last (deepest first), so read-only directories and mtimes survive their children.
    for (let i = dirs.length - 1; i >= 0; i--) {
      const { path, entry } = dirs[i]!;
      if (owners) { const [u, g] = ownerOf(entry); chownSync(path, u, g); }
      chmodSync(path, entry.mode & 0o7777);
      utimesSync(path, entry.mtime, entry.mtime);
    }
    return res;
  });
}
