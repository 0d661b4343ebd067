/**
 * File contents kept outside the JS heap.
 *
 * - {@link ContentStore}: append-only segment files in a private temp
 *   directory; `put()` streams bytes in and returns a {@link FileContent}
 *   that reads its span back. Optional dedup by SHA-256. Sparse contents keep
 *   only their data ranges. `dispose()` deletes everything.
 * - {@link FileSpanContent}: a span of an existing host file (a file found by
 *   `importDirectory`, a member of an uncompressed archive), read through a
 *   process-wide {@link FdCache} that bounds the number of open descriptors.
 */
import { createHash } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readSync, rmSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IngotError } from '../errors.js';
import type { Range } from '../util/intervals.js';
import type { FileContent } from './tree.js';

export class ContentStoreError extends IngotError {}

/** Something `put` accepts: bytes, a Node stream, or any async iterable of chunks. */
export type ContentSource = Uint8Array | AsyncIterable<Uint8Array>;

/** One data extent of a sparse file, at its logical offset. */
export interface SparseExtent { offset: number; data: ContentSource }

/** One piece of a read from a sparse file: `len` bytes at `dst` in the buffer from data range `range`, `within` bytes into it. */
interface SparsePiece { dst: number; len: number; range: number; within: number }

/**
 * Plan a read of up to `want` bytes at `position` from a sparse logical file of `size`
 * bytes whose data ranges are `ranges` (ascending, disjoint): the byte count and the
 * data pieces; everything else in the buffer is a hole and reads as zero.
 */
function sparsePieces(ranges: readonly Range[], size: number, want: number, position: number): { n: number; pieces: SparsePiece[] } {
  const n = Math.max(0, Math.min(want, size - position));
  const end = position + n;
  const pieces: SparsePiece[] = [];
  // Binary search the first range that ends after `position`.
  let lo = 0, hi = ranges.length;
  while (lo < hi) { const m = (lo + hi) >> 1; const r = ranges[m]!; if (r.offset + r.length <= position) lo = m + 1; else hi = m; }
  for (let i = lo; i < ranges.length && ranges[i]!.offset < end; i++) {
    const r = ranges[i]!;
    const s = Math.max(position, r.offset);
    const e = Math.min(end, r.offset + r.length);
    if (e > s) pieces.push({ dst: s - position, len: e - s, range: i, within: s - r.offset });
  }
  return { n, pieces };
}

/**
 * Read `buf.length` bytes of a sparse logical file at `position` whose data
 * ranges map to `readData` reads; holes are zero.
 */
async function readSparse(
  ranges: readonly Range[], size: number, buf: Uint8Array, position: number,
  readData: (dst: Uint8Array, rangeIndex: number, within: number) => Promise<void>,
): Promise<number> {
  const { n, pieces } = sparsePieces(ranges, size, buf.length, position);
  buf.fill(0, 0, n);
  for (const p of pieces) await readData(buf.subarray(p.dst, p.dst + p.len), p.range, p.within);
  return n;
}

async function writeAll(fh: FileHandle, data: Uint8Array, pos: number): Promise<void> {
  for (let done = 0; done < data.length;) {
    const { bytesWritten } = await fh.write(data, done, data.length - done, pos + done);
    done += bytesWritten;
  }
}

/** Read exactly `dst.length` bytes at `pos` (short reads only at EOF, which is an error here). */
async function readFully(fh: FileHandle, dst: Uint8Array, pos: number, what: string): Promise<void> {
  let done = 0;
  while (done < dst.length) {
    const { bytesRead } = await fh.read(dst, done, dst.length - done, pos + done);
    if (bytesRead === 0) {
      throw new ContentStoreError('CONTENT_SHORT_READ', 'file shorter than its recorded span (changed since import?)', {
        file: what, offset: pos + done, expected: `${dst.length} bytes`, actual: `${done}`,
      });
    }
    done += bytesRead;
  }
}

// ---------------------------------------------------------------- fd cache

interface CachedFd { fh: Promise<FileHandle>; users: number; lastUse: number }

/**
 * Bounded cache of read-only descriptors keyed by path. A descriptor in use by
 * a read is never closed; when the bound is reached the least recently used
 * idle one is closed, and when all are busy a new read waits for a slot.
 */
export class FdCache {
  private readonly fds = new Map<string, CachedFd>();
  private tick = 0;
  constructor(readonly maxOpen = 128) {}

  async with<T>(path: string, fn: (fh: FileHandle) => Promise<T>): Promise<T> {
    let e = this.fds.get(path);
    while (!e && this.fds.size >= this.maxOpen && !this.evictOne()) {
      // Every descriptor is busy: wait for a read to finish rather than exceed the bound.
      await new Promise<void>((resolve) => this.waiters.push(resolve));
      e = this.fds.get(path);
    }
    if (!e) {
      const entry: CachedFd = { fh: open(path, 'r'), users: 0, lastUse: 0 };
      e = entry;
      this.fds.set(path, entry);
      this.maxSeen = Math.max(this.maxSeen, this.fds.size);
      entry.fh.catch(() => { if (this.fds.get(path) === entry) this.fds.delete(path); });
    }
    e.users++;
    e.lastUse = ++this.tick;
    try {
      return await fn(await e.fh);
    } finally {
      e.users--;
      this.waiters.shift()?.();
    }
  }

  private readonly waiters: (() => void)[] = [];
  /** Most descriptors ever open at once (≤ maxOpen). */
  maxSeen = 0;

  /** Close the least recently used idle descriptor; false when all are busy. */
  private evictOne(): boolean {
    let victim: [string, CachedFd] | undefined;
    for (const kv of this.fds) if (kv[1].users === 0 && (!victim || kv[1].lastUse < victim[1].lastUse)) victim = kv;
    if (!victim) return false;
    this.fds.delete(victim[0]);
    victim[1].fh.then((fh) => fh.close()).catch(() => {});
    return true;
  }

  get openCount(): number { return this.fds.size; }

  async closeAll(): Promise<void> {
    const all = [...this.fds.values()];
    this.fds.clear();
    await Promise.all(all.map((v) => v.fh.then((fh) => fh.close()).catch(() => {})));
  }
}

/** The process-wide descriptor cache used by {@link FileSpanContent} unless one is given. */
export const defaultFdCache = new FdCache(128);

/** Read from a span (`offset`, `length`) of a host file, sparse when `ranges` (relative to the span) are given. */
async function readHostSpan(
  cache: FdCache, path: string, offset: number, length: number, ranges: readonly Range[] | undefined, buf: Uint8Array, position: number,
): Promise<number> {
  if (ranges) {
    return cache.with(path, (fh) => readSparse(ranges, length, buf, position, (dst, i, within) =>
      readFully(fh, dst, offset + ranges[i]!.offset + within, path)));
  }
  const n = Math.max(0, Math.min(buf.length, length - position));
  if (n === 0) return 0;
  await cache.with(path, (fh) => readFully(fh, buf.subarray(0, n), offset + position, path));
  return n;
}

/** Read exactly `dst.length` bytes at `pos` of an open descriptor (synchronously). */
function readFullySync(fd: number, dst: Uint8Array, pos: number, what: string): void {
  let done = 0;
  while (done < dst.length) {
    const got = readSync(fd, dst, done, dst.length - done, pos + done);
    if (got === 0) {
      throw new ContentStoreError('CONTENT_SHORT_READ', 'file shorter than its recorded span (changed since import?)', {
        file: what, offset: pos + done, expected: `${dst.length} bytes`, actual: `${done}`,
      });
    }
    done += got;
  }
}

/**
 * {@link readHostSpan} with synchronous system calls, opening and closing the file: for
 * a consumer that reads many small files from the page cache in a row (the ext4
 * writer), where the thread-pool round trips of open, read and close cost more than
 * the reads themselves.
 */
function readHostSpanSync(path: string, offset: number, length: number, ranges: readonly Range[] | undefined, buf: Uint8Array, position: number): number {
  const { n, pieces } = ranges
    ? sparsePieces(ranges, length, buf.length, position)
    : { n: Math.max(0, Math.min(buf.length, length - position)), pieces: undefined };
  if (n === 0) return 0;
  const fd = openSync(path, 'r');
  try {
    if (!pieces) {
      readFullySync(fd, buf.subarray(0, n), offset + position, path);
    } else {
      buf.fill(0, 0, n);
      for (const p of pieces) readFullySync(fd, buf.subarray(p.dst, p.dst + p.len), offset + ranges![p.range]!.offset + p.within, path);
    }
  } finally {
    closeSync(fd);
  }
  return n;
}

/**
 * `length` bytes of the host file `path` starting at `offset`. With
 * `dataRanges` (relative to the span) the content is sparse: only those
 * ranges are read, the rest are holes.
 */
export class FileSpanContent implements FileContent {
  private readonly ranges: Range[] | undefined;
  constructor(
    readonly path: string, readonly offset: number, readonly length: number,
    opts: { dataRanges?: Range[]; fdCache?: FdCache } = {},
  ) {
    this.ranges = opts.dataRanges;
    this.cache = opts.fdCache ?? defaultFdCache;
  }
  private readonly cache: FdCache;
  get size(): number { return this.length; }

  read(buf: Uint8Array, position: number): Promise<number> {
    return readHostSpan(this.cache, this.path, this.offset, this.length, this.ranges, buf, position);
  }

  readSync(buf: Uint8Array, position: number): number {
    return readHostSpanSync(this.path, this.offset, this.length, this.ranges, buf, position);
  }

  dataRanges(): Range[] { return this.ranges ? this.ranges.map((r) => ({ ...r })) : [{ offset: 0, length: this.length }]; }
}

/** A host directory whose files {@link HostFileContent} reads (shared by all its files). */
export interface HostDir { readonly path: string; readonly fdCache: FdCache }

/**
 * A whole host file found by a directory walk. It keeps its directory and
 * name rather than a full path string: a tree of ~100,000 host files then
 * costs a few references per file.
 */
export class HostFileContent implements FileContent {
  constructor(private readonly dir: HostDir, private readonly name: string, readonly size: number, private readonly ranges?: Range[]) {}

  get path(): string { return `${this.dir.path}/${this.name}`; }

  read(buf: Uint8Array, position: number): Promise<number> {
    return readHostSpan(this.dir.fdCache, this.path, 0, this.size, this.ranges, buf, position);
  }

  readSync(buf: Uint8Array, position: number): number {
    return readHostSpanSync(this.path, 0, this.size, this.ranges, buf, position);
  }

  dataRanges(): Range[] { return this.ranges ? this.ranges.map((r) => ({ ...r })) : [{ offset: 0, length: this.size }]; }
}

// ---------------------------------------------------------------- content store

/** A span of a store segment. Sparse contents map each data range to consecutive store bytes. */
export class StoredContent implements FileContent {
  constructor(
    private readonly store: ContentStore, private readonly segment: number, readonly offset: number,
    readonly size: number, private readonly ranges?: Range[],
  ) {}

  async read(buf: Uint8Array, position: number): Promise<number> {
    if (!this.ranges) {
      const n = Math.max(0, Math.min(buf.length, this.size - position));
      if (n > 0) await this.store.readAt(this.segment, buf.subarray(0, n), this.offset + position);
      return n;
    }
    // Data ranges are stored back to back; the physical offset of range i is the sum of earlier lengths.
    const phys = this.physicalStarts();
    return readSparse(this.ranges, this.size, buf, position, (dst, i, within) =>
      this.store.readAt(this.segment, dst, this.offset + phys[i]! + within));
  }

  private phys?: number[];
  private physicalStarts(): number[] {
    if (!this.phys) {
      let acc = 0;
      this.phys = this.ranges!.map((r) => { const s = acc; acc += r.length; return s; });
    }
    return this.phys;
  }

  dataRanges(): Range[] { return this.ranges ? this.ranges.map((r) => ({ ...r })) : [{ offset: 0, length: this.size }]; }
}

export interface ContentStoreOptions {
  /** Parent directory for the store's private temp directory (default `os.tmpdir()`). */
  dir?: string;
  /** Reuse identical contents (SHA-256). Costs one hash pass over every byte put. */
  dedup?: boolean;
  /** Start a new segment file once the current one reaches this many bytes (default 64 GiB). */
  segmentSize?: number;
}

/**
 * A segment file. `size` counts every appended byte; bytes from `flushed` on
 * are still in `buf` (appends are coalesced into large writes).
 */
interface Segment { path: string; fh: FileHandle; size: number; flushed: number; buf: Buffer; bufLen: number; pending?: Buffer }

/** Appends are gathered into writes of this size. */
const WRITE_BUFFER = 4 << 20;

/**
 * Append-only on-disk store. Writes are serialized (one append position per
 * segment); reads may run concurrently with writes.
 */
export class ContentStore {
  readonly dir: string;
  readonly dedup: boolean;
  private readonly segmentSize: number;
  private readonly segments: Segment[] = [];
  private readonly byDigest = new Map<string, StoredContent>();
  private queue: Promise<unknown> = Promise.resolve();
  private disposed = false;
  /** Bytes written to segment files so far (after dedup). */
  bytesStored = 0;

  private constructor(dir: string, opts: ContentStoreOptions) {
    this.dir = dir;
    this.dedup = opts.dedup ?? false;
    this.segmentSize = opts.segmentSize ?? 64 * 2 ** 30;
  }

  static create(opts: ContentStoreOptions = {}): ContentStore {
    const dir = mkdtempSync(join(opts.dir ?? tmpdir(), 'ingot-store-'));
    return new ContentStore(dir, opts);
  }

  /** Store the bytes of `source`; resolves to a content reading them back. */
  put(source: ContentSource): Promise<FileContent> {
    return this.serialized(async () => {
      const seg = await this.currentSegment();
      const start = seg.size;
      const hash = this.dedup ? createHash('sha256') : undefined;
      const len = await this.append(seg, source, hash);
      return this.finish(seg, start, len, hash, undefined, len);
    });
  }

  /**
   * Store a sparse file of logical `size`: each extent's bytes at its
   * logical offset, the rest holes. Extents must be ascending and disjoint.
   */
  putSparse(size: number, extents: Iterable<SparseExtent> | AsyncIterable<SparseExtent>): Promise<FileContent> {
    return this.serialized(async () => {
      const seg = await this.currentSegment();
      const start = seg.size;
      const hash = this.dedup ? createHash('sha256') : undefined;
      const ranges: Range[] = [];
      let stored = 0;
      let prevEnd = 0;
      for await (const ext of extents) {
        if (!Number.isSafeInteger(ext.offset) || ext.offset < prevEnd) {
          throw new ContentStoreError('CONTENT_BAD_EXTENT', 'sparse extents must be ascending and disjoint', { offset: ext.offset });
        }
        const len = await this.append(seg, ext.data, hash);
        if (ext.offset + len > size) {
          throw new ContentStoreError('CONTENT_BAD_EXTENT', 'sparse extent beyond the file size', { offset: ext.offset, expected: `≤ ${size}`, actual: `${ext.offset + len}` });
        }
        hash?.update(`@${ext.offset}+${len};`);
        if (len > 0) {
          const last = ranges[ranges.length - 1];
          if (last && last.offset + last.length === ext.offset) last.length += len;
          else ranges.push({ offset: ext.offset, length: len });
        }
        prevEnd = ext.offset + len;
        stored += len;
      }
      hash?.update(`size=${size}`);
      return this.finish(seg, start, stored, hash, ranges, size);
    });
  }

  private async finish(seg: Segment, start: number, stored: number, hash: ReturnType<typeof createHash> | undefined,
    ranges: Range[] | undefined, size: number): Promise<FileContent> {
    if (hash) {
      const key = `${ranges ? 's' : 'f'}:${hash.digest('hex')}`;
      const hit = this.byDigest.get(key);
      if (hit) {
        // Identical bytes already stored: roll the append back.
        await this.rollback(seg, start);
        return hit;
      }
      const c = new StoredContent(this, this.segments.indexOf(seg), start, size, ranges);
      this.byDigest.set(key, c);
      this.bytesStored += stored;
      return c;
    }
    this.bytesStored += stored;
    return new StoredContent(this, this.segments.indexOf(seg), start, size, ranges);
  }

  private async append(seg: Segment, source: ContentSource, hash?: ReturnType<typeof createHash>): Promise<number> {
    let len = 0;
    const write = async (chunk: Uint8Array): Promise<void> => {
      hash?.update(chunk);
      len += chunk.length;
      if (seg.bufLen + chunk.length > seg.buf.length) await this.flushSegment(seg);
      if (chunk.length >= seg.buf.length) {
        await writeAll(seg.fh, chunk, seg.flushed);
        seg.flushed += chunk.length;
      } else {
        seg.buf.set(chunk, seg.bufLen);
        seg.bufLen += chunk.length;
      }
      seg.size += chunk.length;
    };
    const start = seg.size;
    try {
      if (source instanceof Uint8Array) await write(source);
      else for await (const chunk of source) await write(chunk instanceof Uint8Array ? chunk : Buffer.from(chunk as string));
    } catch (e) {
      // Leave no half-written span behind (the store stays append-only and consistent).
      await this.rollback(seg, start).catch(() => {});
      throw e;
    }
    return len;
  }

  /** Write the buffered appends of `seg` to its file. */
  private async flushSegment(seg: Segment): Promise<void> {
    if (seg.bufLen === 0) return;
    // Hand the filled buffer to the write and continue into a fresh one, so readers copying from it stay correct.
    const data = seg.buf.subarray(0, seg.bufLen);
    seg.pending = data;
    seg.buf = Buffer.allocUnsafe(WRITE_BUFFER);
    seg.bufLen = 0;
    try {
      await writeAll(seg.fh, data, seg.flushed);
      seg.flushed += data.length;
    } finally {
      seg.pending = undefined;
    }
  }

  /** Drop everything appended from `start` on. */
  private async rollback(seg: Segment, start: number): Promise<void> {
    if (start >= seg.flushed) {
      seg.bufLen = start - seg.flushed;
    } else {
      seg.bufLen = 0;
      await seg.fh.truncate(start);
      seg.flushed = start;
    }
    seg.size = start;
  }

  private serialized<T>(fn: () => Promise<T>): Promise<T> {
    if (this.disposed) return Promise.reject(new ContentStoreError('CONTENT_STORE_CLOSED', 'content store already disposed', { file: this.dir }));
    const p = this.queue.then(fn);
    this.queue = p.catch(() => {});
    return p;
  }

  private async currentSegment(): Promise<Segment> {
    let seg = this.segments[this.segments.length - 1];
    if (!seg || seg.size >= this.segmentSize) {
      if (seg) await this.flushSegment(seg);
      const path = join(this.dir, `segment-${this.segments.length}.bin`);
      seg = { path, fh: await open(path, 'w+'), size: 0, flushed: 0, buf: Buffer.allocUnsafe(WRITE_BUFFER), bufLen: 0 };
      this.segments.push(seg);
    }
    return seg;
  }

  /** @internal read for {@link StoredContent}. */
  async readAt(segment: number, dst: Uint8Array, pos: number): Promise<void> {
    const seg = this.segments[segment];
    if (!seg || this.disposed) throw new ContentStoreError('CONTENT_STORE_CLOSED', 'content store already disposed', { file: this.dir });
    // Bytes not yet written are copied from memory first (synchronously, so the buffers cannot
    // change underneath); the rest is on disk already, and the on-disk part only ever grows.
    const flushed = seg.flushed;
    const end = pos + dst.length;
    if (end > flushed) {
      const pending = seg.pending;
      const pendingEnd = flushed + (pending?.length ?? 0);
      for (let p = Math.max(pos, flushed); p < end;) {
        if (pending && p < pendingEnd) {
          const n = Math.min(end, pendingEnd) - p;
          dst.set(pending.subarray(p - flushed, p - flushed + n), p - pos);
          p += n;
        } else {
          const bufStart = pendingEnd;
          if (p - bufStart + (end - p) > seg.bufLen) {
            throw new ContentStoreError('CONTENT_SHORT_READ', 'read beyond the stored bytes', { file: seg.path, offset: p });
          }
          dst.set(seg.buf.subarray(p - bufStart, end - bufStart), p - pos);
          p = end;
        }
      }
      if (pos >= flushed) return;
      dst = dst.subarray(0, flushed - pos);
    }
    await readFully(seg.fh, dst, pos, seg.path);
  }

  /** Write all buffered appends to the segment files. */
  flush(): Promise<void> {
    return this.serialized(async () => { for (const seg of this.segments) await this.flushSegment(seg); });
  }

  /** Close and delete the segment files. Contents from this store are unreadable afterwards. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    await this.queue;
    this.disposed = true;
    await Promise.all(this.segments.map((s) => s.fh.close().catch(() => {})));
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Read a whole content into memory (tests, small config files). */
export async function readAll(content: FileContent): Promise<Buffer> {
  const buf = Buffer.alloc(content.size);
  let pos = 0;
  while (pos < buf.length) {
    const n = await content.read(buf.subarray(pos, Math.min(buf.length, pos + (1 << 20))), pos);
    if (n === 0) break;
    pos += n;
  }
  return buf;
}
