/**
 * Payload entries: the cpio archive joined with the header's file list.
 * Metadata comes from the header, as rpm installs it (newc entries are
 * matched by path, stripped entries by file index). Contents are streamed:
 * each entry's `content` must be consumed (or is skipped) before the next
 * entry is produced. Hard-link sets are written once: rpm stores the data
 * with the last member, so the data-less members are held back (metadata
 * only) and yielded after it as `hardlink` entries pointing at it.
 */
import { ChunkReader, bufferedCpioHeader, readCpioHeader, skipDataPadding, type CpioHeader } from './cpio.js';
import { RpmFormatError } from './errors.js';
import type { FileInfo } from './package.js';
import { FileFlag } from './tags.js';

export type EntryType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo' | 'socket';

export interface PayloadEntry {
  /** Absolute path in the package ("/usr/bin/hello"); source packages have bare names ("hello.spec" → "/hello.spec"). */
  path: string;
  rawPath: Uint8Array;
  type: EntryType;
  /** Full st_mode (type and permission bits). */
  mode: number;
  user: string;
  group: string;
  /** Numeric ids from a newc entry; null for stripped entries (only names are stored). */
  uid: number | null;
  gid: number | null;
  /** Content bytes (regular files); 0 for hard-link entries. */
  size: number;
  mtime: number;
  /** Symlink target, or for `hardlink` entries the path of the member holding the data. */
  linkTo: string;
  rdev: number;
  rdevMajor: number;
  rdevMinor: number;
  /** Inode number shared by the members of a hard-link set, and the set size. */
  inode: number;
  nlink: number;
  flags: number;
  caps: string | null;
  digest: string;
  digestAlgo: string;
  /** `hardlink` entries: the raw path bytes of the member holding the data. */
  linkToRaw?: Uint8Array;
  /** Index in the header file list; -1 if the header has no such file. */
  fileIndex: number;
  /** The file data, streamed; must be consumed before the next entry is requested. */
  content: AsyncIterable<Buffer>;
}

const S_IFMT = 0o170000;
export function entryType(mode: number): EntryType {
  switch (mode & S_IFMT) {
    case 0o040000: return 'dir';
    case 0o120000: return 'symlink';
    case 0o020000: return 'char';
    case 0o060000: return 'block';
    case 0o010000: return 'fifo';
    case 0o140000: return 'socket';
    default: return 'file';
  }
}

function normalize(name: string): string {
  let p = name;
  if (p.startsWith('./')) p = p.slice(1);
  if (!p.startsWith('/')) p = '/' + p;
  return p;
}

const EMPTY: AsyncIterable<Buffer> = { async *[Symbol.asyncIterator]() { /* nothing */ } };

export interface PayloadOptions {
  /** Package path, for error messages. */
  file?: string;
}

/**
 * Iterate the entries of an uncompressed cpio payload given the header's files.
 * `source` yields the decompressed bytes.
 */
export async function* payloadEntries(source: AsyncIterable<Buffer | Uint8Array> | Iterable<Buffer | Uint8Array>, files: readonly FileInfo[], opts: PayloadOptions = {}): AsyncGenerator<PayloadEntry> {
  const file = opts.file;
  const wrap = (e: unknown): never => {
    if (e instanceof RpmFormatError) throw e;
    throw new RpmFormatError('DECOMPRESS', `payload decompression failed: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`, { file }, { cause: e });
  };
  const iter = Symbol.asyncIterator in source ? source[Symbol.asyncIterator]() : (async function* () { yield* source; })();
  const r = new ChunkReader(iter, wrap);
  const byPath = new Map<string, FileInfo>();
  const sets = new Map<string, FileInfo[]>();
  for (const f of files) {
    byPath.set(normalize(f.path), f);
    if (f.inode !== 0 && entryType(f.mode) === 'file' && !(f.flags & FileFlag.GHOST)) {
      const k = `${f.device}:${f.inode}`;
      const l = sets.get(k);
      if (l) l.push(f); else sets.set(k, [f]);
    }
  }
  // Hard-link sets: key → members seen without data (held back until the data member comes).
  const pending = new Map<string, PayloadEntry[]>();
  const seen = new Set<number>();
  try {
    for (;;) {
      const buffered = bufferedCpioHeader(r);
      const h = buffered !== undefined ? buffered : await readCpioHeader(r);
      if (!h) break;
      const { entry, dataSize, linkKey } = describe(h, { files, byPath, sets, file });
      if (entry.fileIndex >= 0) {
        if (seen.has(entry.fileIndex)) throw new RpmFormatError('CPIO_DUPLICATE', 'file appears twice in the payload', { file, offset: h.offset, field: entry.path });
        seen.add(entry.fileIndex);
      }
      if (entry.type === 'symlink') {
        // The target is stored as the entry data; the header's FILELINKTOS is authoritative.
        if (dataSize > 65536) throw new RpmFormatError('CPIO_BAD_HEADER', 'absurd symlink target length', { file, offset: h.offset, actual: `${dataSize}` });
        const data = dataSize > 0 ? await r.need(dataSize) : Buffer.alloc(0);
        if (!entry.linkTo) entry.linkTo = data.toString('latin1');
        await skipDataPadding(r, dataSize);
        yield entry;
        continue;
      }
      if (entry.type !== 'file') {
        await r.skip(dataSize);
        await skipDataPadding(r, dataSize);
        yield entry;
        continue;
      }
      if (linkKey !== null && dataSize === 0) {
        const list = pending.get(linkKey) ?? [];
        list.push(entry);
        pending.set(linkKey, list);
        continue;
      }
      let remaining = dataSize;
      entry.size = dataSize;
      entry.content = {
        [Symbol.asyncIterator]: async function* () {
          while (remaining > 0) {
            const b = await r.some(Math.min(remaining, 1 << 20));
            if (!b) throw new RpmFormatError('CPIO_TRUNCATED', 'payload ends inside file data', { file, offset: r.position, field: entry.path, expected: `${remaining} more bytes` });
            remaining -= b.length;
            yield b;
          }
        },
      };
      yield entry;
      if (remaining > 0) await r.skip(remaining);
      remaining = 0;
      await skipDataPadding(r, dataSize);
      if (linkKey !== null) {
        for (const m of pending.get(linkKey) ?? []) {
          m.type = 'hardlink';
          m.linkTo = entry.path;
          m.linkToRaw = entry.rawPath;
          yield m;
        }
        pending.delete(linkKey);
      }
    }
    // Members of a set whose data never came are plain empty files (as cpio extracts them).
    for (const list of pending.values()) for (const m of list) yield m;
  } catch (e) {
    if (e instanceof RpmFormatError && e.context.file === undefined && file !== undefined) {
      throw new RpmFormatError(e.code.replace(/^RPM_/, ''), e.detail, { ...e.context, file, field: e.context.field ?? 'payload (uncompressed offset)' }, { cause: e.cause });
    }
    throw e;
  } finally {
    // Stop the decoder (bytes after the trailer are never read): closes the file and frees its worker.
    await iter.return?.();
  }
}

interface Context { files: readonly FileInfo[]; byPath: Map<string, FileInfo>; sets: Map<string, FileInfo[]>; file: string | undefined }

function describe(h: CpioHeader, { files, byPath, sets, file }: Context): { entry: PayloadEntry; dataSize: number; linkKey: string | null } {
  let fi: FileInfo | undefined;
  if (h.format === 'stripped') {
    fi = files[h.fileIndex];
    if (!fi) throw new RpmFormatError('CPIO_BAD_INDEX', 'stripped cpio file index outside the header file list', { file, offset: h.offset, expected: `< ${files.length}`, actual: `${h.fileIndex}` });
  } else {
    fi = byPath.get(normalize(h.name));
  }
  if (fi && fi.flags & FileFlag.GHOST && h.format === 'stripped') {
    throw new RpmFormatError('CPIO_BAD_INDEX', '%ghost file in stripped payload', { file, offset: h.offset, field: fi.path });
  }
  const mode = fi ? fi.mode : h.mode;
  const type = entryType(mode);
  let dataSize: number;
  let linkKey: string | null = null;
  if (h.format === 'newc') {
    dataSize = h.size;
    if (type === 'file' && h.nlink > 1) linkKey = `${h.devMajor}:${h.devMinor}:${h.ino}`;
  } else {
    // rpmfiArchiveReadHeader: a hard-link member carries data only if it is the last of its set.
    const set = type === 'file' ? sets.get(`${fi!.device}:${fi!.inode}`) ?? [] : [];
    if (set.length > 1) {
      linkKey = `${fi!.device}:${fi!.inode}`;
      dataSize = set[set.length - 1] === fi ? fi!.size : 0;
    } else {
      dataSize = type === 'file' || type === 'symlink' ? fi!.size : 0;
    }
  }
  if (!Number.isSafeInteger(dataSize) || dataSize < 0) throw new RpmFormatError('CPIO_BAD_HEADER', 'bad entry size', { file, offset: h.offset, actual: `${dataSize}` });
  const rdev = fi ? fi.rdev : ((h.rdevMajor & 0xff) << 8) | (h.rdevMinor & 0xff);
  const nlinkFromHeader = linkKey !== null && fi ? sets.get(`${fi.device}:${fi.inode}`)?.length ?? 1 : 1;
  const entry: PayloadEntry = {
    path: fi ? normalize(fi.path) : normalize(h.name),
    rawPath: fi ? fi.rawPath : h.rawName,
    type,
    mode,
    user: fi?.user ?? String(h.uid),
    group: fi?.group ?? String(h.gid),
    uid: h.format === 'newc' ? h.uid : null,
    gid: h.format === 'newc' ? h.gid : null,
    size: 0,
    mtime: fi ? fi.mtime : h.mtime,
    linkTo: fi?.linkTo ?? '',
    rdev,
    rdevMajor: fi ? (rdev >> 8) & 0xff : h.rdevMajor,
    rdevMinor: fi ? rdev & 0xff : h.rdevMinor,
    inode: fi ? fi.inode : h.ino,
    nlink: h.format === 'newc' ? Math.max(1, h.nlink) : nlinkFromHeader,
    flags: fi?.flags ?? 0,
    caps: fi?.caps ?? null,
    digest: fi?.digest ?? '',
    digestAlgo: fi?.digestAlgo ?? 'md5',
    fileIndex: fi ? fi.index : -1,
    content: EMPTY,
  };
  return { entry, dataSize, linkKey };
}
