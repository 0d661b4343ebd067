/**
 * The I/O layer shared by every format: zero detection, the data-run
 * iterator writers consume, recycled read buffers, and a coalescing
 * positioned writer for outputs. Image files are read through src/disk's
 * FileSource (bounds-checked reads, SEEK_DATA allocation map).
 */
import { open, type FileHandle } from 'node:fs/promises';
import type { ByteSource, Range } from '../src/disk/target.js';
import { IntervalSet } from '../src/util/intervals.js';
import { WriteThread, type WriteSegment } from './write-thread.js';

/**
 * Read size of streaming passes, and the most bytes one output write gathers
 * (one pwritev, IOV_MAX pieces at most). Measured (bench/convert, qcow2 of
 * 1.5 GiB, docs/performance.md): 1 MiB beat 128–512 KiB, whose extra system
 * calls are each a thread-pool round trip, and 2–8 MiB, which let the kernel
 * use larger page-cache folios — slow to fill on this machine (a VM; see
 * segmentLength).
 */
export const CHUNK = 1024 * 1024;
const COALESCE = CHUNK;
const MAX_PIECES = 1024; // Linux IOV_MAX

/**
 * A run of data at `offset`; `data === null` means "explicit zeros" (an overlay hiding backing data).
 * `owner` is set only for runs asked for with a pool: `data` then lives in a recycled read buffer and
 * stays valid after the consumer moves on only while it holds the owner (OutputFile.write does).
 */
export interface DataRun { offset: number; data: Buffer | null; length: number; owner?: PooledBuffer }

/** A source that can produce its non-zero runs in one pass (raw files: the scan and the read are the same I/O). */
export interface RunSource extends ByteSource {
  dataRuns(blockSize: number, pool?: BufferPool): AsyncIterable<DataRun>;
}

/**
 * A reference-counted read buffer. Recycling the multi-MiB read buffers
 * instead of allocating one per read keeps a streaming copy free of page
 * faults on fresh memory and of the garbage collections that external
 * (off-heap) allocations trigger.
 */
export class PooledBuffer {
  private refs = 1;
  constructor(readonly buf: Buffer, private readonly pool: BufferPool) {}
  hold(): void { this.refs++; }
  release(): void {
    if (--this.refs === 0) this.pool.put(this);
    else if (this.refs < 0) throw new Error('PooledBuffer released more often than held');
  }
}

/**
 * Buffers of one size; a request when none is free allocates (never waits), at most `keep` are kept.
 * They live in SharedArrayBuffers, so OutputFile's write thread writes them without a copy.
 */
export class BufferPool {
  private free: PooledBuffer[] = [];
  constructor(readonly size: number, private readonly keep = 16) {}
  get(): PooledBuffer {
    const b = this.free.pop();
    if (b) { b.hold(); return b; }
    return new PooledBuffer(Buffer.from(new SharedArrayBuffer(this.size)), this);
  }
  /** Called by the last release: back to the free list (with a fresh reference for its next user). */
  put(b: PooledBuffer): void {
    if (this.free.length < this.keep) this.free.push(b);
  }
}

function hasRuns(s: ByteSource): s is RunSource {
  return typeof (s as Partial<RunSource>).dataRuns === 'function';
}

const zeroCache = new Map<number, Buffer>();
function zeros(n: number): Buffer {
  let z = zeroCache.get(n);
  if (!z) { z = Buffer.alloc(n); if (zeroCache.size < 16) zeroCache.set(n, z); }
  return z;
}

/** True when every byte of `b` is zero (memcmp against a shared zero page). */
export function isZero(b: Uint8Array): boolean {
  const step = 1 << 20;
  for (let i = 0; i < b.length; i += step) {
    const part = b.subarray(i, Math.min(b.length, i + step));
    if (Buffer.compare(part, zeros(part.length).subarray(0, part.length)) !== 0) return false;
  }
  return true;
}

/** Zero-fill helper for sources: read `buf` fully, clipped at `size`. Returns the clipped length. */
export function clip(buf: Uint8Array, position: number, size: number): number {
  const n = Math.max(0, Math.min(buf.length, size - position));
  if (n < buf.length) buf.fill(0, n);
  return n;
}

/**
 * The allocated ranges of `source` widened to `blockSize` boundaries and
 * merged, clipped at the virtual size.
 */
export async function* alignedRanges(source: ByteSource, blockSize: number): AsyncIterable<Range> {
  let cur: Range | null = null;
  for await (const r of source.allocated()) {
    if (r.length <= 0) continue;
    const s = Math.floor(r.offset / blockSize) * blockSize;
    const e = Math.min(source.size, Math.ceil((r.offset + r.length) / blockSize) * blockSize);
    if (cur && s <= cur.offset + cur.length) { cur.length = Math.max(cur.length, e - cur.offset); continue; }
    if (cur) yield cur;
    cur = { offset: s, length: e - s };
  }
  if (cur) yield cur;
}

/**
 * The non-zero data of `source` as runs of whole blocks (`blockSize`-aligned;
 * the last block of the disk may be short). Zero blocks inside allocated
 * ranges are dropped, so writers never store zeros. Each run's buffer is
 * fresh (safe to hand to asynchronous compressors).
 */
export async function* dataRuns(source: ByteSource, blockSize: number, chunk = CHUNK): AsyncIterable<DataRun> {
  if (hasRuns(source)) { yield* source.dataRuns(blockSize); return; }
  yield* readRuns(source, blockSize, chunk);
}

/**
 * Like dataRuns, for consumers that pass each run's `owner` on to
 * OutputFile.write and are done with `data` when they ask for the next run:
 * sources that can (raw files) read into recycled buffers.
 */
export async function* pooledDataRuns(source: ByteSource, blockSize: number): AsyncIterable<DataRun> {
  if (hasRuns(source)) {
    const step = Math.max(blockSize, Math.floor(CHUNK / blockSize) * blockSize);
    yield* source.dataRuns(blockSize, new BufferPool(step));
    return;
  }
  yield* readRuns(source, blockSize, CHUNK);
}

async function* readRuns(source: ByteSource, blockSize: number, chunk: number): AsyncIterable<DataRun> {
  const step = Math.max(blockSize, Math.floor(chunk / blockSize) * blockSize);
  for await (const r of alignedRanges(source, blockSize)) {
    for (let off = r.offset; off < r.offset + r.length; off += step) {
      const len = Math.min(step, r.offset + r.length - off);
      const buf = Buffer.allocUnsafe(len);
      await source.read(buf, off);
      yield* splitNonZero(buf, off, blockSize);
    }
  }
}

/** Split a buffer read at `base` into runs of non-zero blocks. */
export function* splitNonZero(buf: Buffer, base: number, blockSize: number): Iterable<DataRun> {
  let runStart = -1;
  for (let i = 0; i < buf.length; i += blockSize) {
    const z = isZero(buf.subarray(i, Math.min(buf.length, i + blockSize)));
    if (!z && runStart < 0) runStart = i;
    if (z && runStart >= 0) {
      yield { offset: base + runStart, data: buf.subarray(runStart, i), length: i - runStart };
      runStart = -1;
    }
  }
  if (runStart >= 0) yield { offset: base + runStart, data: buf.subarray(runStart), length: buf.length - runStart };
}

/** Collect a source's allocation map. */
export async function allocationOf(source: ByteSource): Promise<IntervalSet> {
  const set = new IntervalSet();
  for await (const r of source.allocated()) set.add(r.offset, r.length);
  return set;
}

/**
 * Runs for an overlay over `backing`: only blocks whose content differs from
 * the backing image are produced; a block that is zero in `source` but not in
 * the backing comes out as an explicit-zero run (`data: null`).
 */
export async function* diffRuns(source: ByteSource, backing: ByteSource, blockSize: number): AsyncIterable<DataRun> {
  const union = await allocationOf(source);
  for await (const r of backing.allocated()) {
    const e = Math.min(r.offset + r.length, source.size);
    if (e > r.offset) union.add(r.offset, e - r.offset);
  }
  const merged: ByteSource = {
    size: source.size,
    read: (b, p) => source.read(b, p),
    allocated: async function* () { yield* union.ranges(); },
    close: async () => {},
  };
  const step = Math.max(blockSize, Math.floor(CHUNK / blockSize) * blockSize);
  for await (const r of alignedRanges(merged, blockSize)) {
    for (let off = r.offset; off < r.offset + r.length; off += step) {
      const len = Math.min(step, r.offset + r.length - off);
      const a = Buffer.allocUnsafe(len);
      const b = Buffer.allocUnsafe(len);
      await source.read(a, off);
      await readZeroPadded(backing, b, off);
      for (let i = 0; i < len; i += blockSize) {
        const n = Math.min(blockSize, len - i);
        const sa = a.subarray(i, i + n);
        if (Buffer.compare(sa, b.subarray(i, i + n)) === 0) continue;
        yield isZero(sa) ? { offset: off + i, data: null, length: n } : { offset: off + i, data: sa, length: n };
      }
    }
  }
}

/** Read from a source that may be smaller than the window: bytes past its end are zeros. */
export async function readZeroPadded(source: ByteSource, buf: Buffer, position: number): Promise<void> {
  const n = Math.max(0, Math.min(buf.length, source.size - position));
  if (n > 0) await source.read(n === buf.length ? buf : buf.subarray(0, n), position);
  if (n < buf.length) buf.fill(0, n);
}

/**
 * Bytes an output is written through libuv's pool before its writes move to
 * a WriteThread: small outputs (most tests, metadata-only images) never pay
 * the thread's start-up (≈30 ms), large ones switch as soon as it runs.
 */
const THREAD_AFTER = 8 * 1024 * 1024;
/**
 * INGOT_WRITE_THREAD_AFTER overrides it (bytes): 0 starts the thread with the
 * file and writes nothing before it runs (the tests use it to exercise the
 * thread on small outputs); a huge value keeps every write in the pool.
 */
function threadAfter(): number {
  const v = Number(process.env.INGOT_WRITE_THREAD_AFTER);
  return process.env.INGOT_WRITE_THREAD_AFTER && Number.isFinite(v) && v >= 0 ? v : THREAD_AFTER;
}

/**
 * Data (by the source's allocation map) from which the thread is started
 * with the file instead: it then runs by the first large write (it takes
 * 60–100 ms to come up while both vCPUs are busy; qcow2 of 1.5 GiB: median
 * 0.84 s vs 0.89 s). Below it a conversion does not pay the ≈30 ms start.
 */
const THREAD_EARLY = 64 * 1024 * 1024;

async function hasDataAtLeast(source: ByteSource, n: number): Promise<boolean> {
  let total = 0;
  for await (const r of source.allocated()) if ((total += r.length) >= n) return true;
  return false;
}

/** Counters the tests read to know which write path ran. */
export const outputStats = { threadedOutputs: 0 };

/**
 * An output file written with positioned writes; consecutive writes are
 * coalesced into large ones. Unwritten ranges stay holes.
 */
export class OutputFile {
  private pending: Buffer[] = [];
  private pendingOwners: PooledBuffer[] = [];
  private pendingStart = 0;
  private pendingLen = 0;
  /**
   * Writes in flight (write-behind). One: buffered writes to one file serialise
   * on its inode lock anyway, and a second writer only spins on it
   * (rwsem_spin_on_owner was 13% of a 4-deep qcow2 conversion's CPU); reads of
   * the source still overlap the write.
   */
  private inflight: Promise<void>[] = [];
  private static readonly DEPTH = 1;
  /** Bytes handed to writes so far; past THREAD_AFTER a write thread is started. */
  private flushed = 0;
  private starting: WriteThread | null = null;
  private thread: WriteThread | null = null;
  private threadAfter = THREAD_AFTER;
  private threadTried = false;
  /** Copies of non-shared pieces for the write thread (see shared()). */
  private readonly scratch = new BufferPool(COALESCE, 12);
  /** Highest offset written so far (the file is truncated to at least this). */
  end = 0;

  private constructor(readonly fh: FileHandle, readonly path: string) {}

  /**
   * `opts.thread: false` keeps every write in the pool (outputs whose bytes are few next to their CPU
   * work, like xz); `opts.early` starts the write thread with the file.
   */
  static async create(path: string, opts: { thread?: boolean; early?: boolean } = {}): Promise<OutputFile> {
    const out = new OutputFile(await open(path, 'w'), path);
    out.threadAfter = opts.thread === false ? Infinity : threadAfter();
    if (opts.early && out.threadAfter === THREAD_AFTER) {
      out.threadTried = true;
      try { out.starting = new WriteThread(out.fh.fd, path); } catch { out.starting = null; }
    }
    return out;
  }

  /**
   * Write `data` at `pos`. The bytes are referenced, not copied, until the
   * write completes: `owner` (a pooled read buffer holding them) is held
   * until then; without one, `data` must simply not be modified afterwards.
   */
  async write(data: Uint8Array, pos: number, owner?: PooledBuffer): Promise<void> {
    if (data.length === 0) return;
    const piece = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.length);
    if (this.pendingLen > 0 && pos === this.pendingStart + this.pendingLen && this.pendingLen + data.length <= COALESCE) {
      this.pending.push(piece);
      this.pendingLen += data.length;
    } else {
      await this.flushPending();
      this.pending = [piece];
      this.pendingStart = pos;
      this.pendingLen = data.length;
    }
    if (owner) { owner.hold(); this.pendingOwners.push(owner); }
    this.end = Math.max(this.end, pos + data.length);
    if (this.pendingLen >= COALESCE || this.pending.length >= MAX_PIECES) await this.flushPending();
  }

  /** Start `op` once fewer than DEPTH writes are in flight; errors surface at the next wait. */
  private async queue(op: () => Promise<void>, owners: PooledBuffer[]): Promise<void> {
    while (this.inflight.length >= OutputFile.DEPTH) await this.inflight.shift();
    const p = op().finally(() => { for (const o of owners) o.release(); });
    p.catch(() => undefined);
    this.inflight.push(p);
  }

  private async drain(): Promise<void> {
    while (this.inflight.length) await this.inflight.shift();
  }

  async flushPending(): Promise<void> {
    if (this.pendingLen === 0) return;
    const bufs = this.pending;
    const owners = this.pendingOwners;
    const pos = this.pendingStart;
    const total = this.pendingLen;
    this.pending = [];
    this.pendingOwners = [];
    this.pendingLen = 0;
    if (await this.useThread(total)) {
      await this.thread!.write(segments(shared(bufs, this.scratch, owners), pos, total), owners);
      return;
    }
    // One pwritev per segment of the coalesced pieces (no concatenation copy).
    await this.queue(async () => {
      for (const seg of segments(bufs, pos, total)) {
        let piece = seg.bufs;
        let left = piece.reduce((n, b) => n + b.length, 0);
        for (let at = seg.pos; left > 0;) {
          const { bytesWritten } = await this.fh.writev(piece, at);
          at += bytesWritten;
          left -= bytesWritten;
          if (left > 0) piece = dropBytes(piece, bytesWritten);
        }
      }
    }, owners);
  }

  /**
   * Whether this write goes to the write thread: starts one once THREAD_AFTER
   * bytes went through the pool, and switches when it runs (after the pool's
   * write in flight, so writes stay in order). Without worker threads (an
   * embedder's sandbox) everything stays in the pool.
   */
  private async useThread(bytes: number): Promise<boolean> {
    if (this.thread) return true;
    this.flushed += bytes;
    if (!this.threadTried && this.flushed >= this.threadAfter) {
      this.threadTried = true;
      try { this.starting = new WriteThread(this.fh.fd, this.path); } catch { return false; }
    }
    if (!this.starting) return false;
    if (this.threadAfter === 0) await this.starting.online;
    if (!this.starting.ready) return false;
    await this.drain();
    this.thread = this.starting;
    outputStats.threadedOutputs++;
    return true;
  }

  /** Flush, set the final length (holes at the end stay holes) and close. */
  async finish(length?: number): Promise<void> {
    try {
      await this.flushPending();
      await this.drain();
      await this.thread?.drain();
      await this.stopThread();
      await this.fh.truncate(length ?? this.end);
      // No fdatasync: like `qemu-img convert` (whose data is not synced either — measured: its
      // fdatasync calls take microseconds), durability is left to the kernel's write-back; the
      // temp-file-and-rename still means a reader sees a whole image or none. Forcing 1.5 GiB to disk
      // here cost 1.3–4 s per conversion on this machine (docs/performance.md).
      if (process.env.INGOT_FSYNC === '1') await this.fh.datasync();
    } finally {
      await this.stopThread();
      await this.fh.close();
    }
  }

  /** Stop the write thread (started or running): it has exited before the descriptor is closed. */
  private async stopThread(): Promise<void> {
    const t = this.starting;
    this.starting = this.thread = null;
    await t?.stop();
  }

  async abort(): Promise<void> {
    this.pending = [];
    this.pendingOwners = [];
    await Promise.allSettled(this.inflight);
    this.inflight = [];
    await this.stopThread();
    await this.fh.close().catch(() => undefined);
  }
}

/** The system calls for `total` bytes of `bufs` at `pos`, cut by segmentLength. */
function segments(bufs: Buffer[], pos: number, total: number): (WriteSegment & { bufs: Buffer[] })[] {
  const out: (WriteSegment & { bufs: Buffer[] })[] = [];
  let left = bufs;
  while (total > 0) {
    const seg = segmentLength(pos, total);
    out.push({ pos, bufs: takeBytes(left, seg) });
    left = dropBytes(left, seg);
    pos += seg;
    total -= seg;
  }
  return out;
}

/**
 * `bufs` with every piece that is not already in shared memory (tables,
 * headers, data from non-pooled reads, encoder output) copied into a buffer
 * from `scratch` (held in `owners` until written), so the write thread can
 * see it. Scratch buffers are recycled: the thread's side frees a shared
 * buffer only when its own garbage collector runs, which it rarely does, so
 * a fresh SharedArrayBuffer per write would pile up (compressed output grew
 * the process by 70 MiB that way).
 */
function shared(bufs: Buffer[], scratch: BufferPool, owners: PooledBuffer[]): Buffer[] {
  let copyBytes = 0;
  for (const b of bufs) if (!(b.buffer instanceof SharedArrayBuffer)) copyBytes += b.length;
  if (copyBytes === 0) return bufs;
  let area: Buffer;
  if (copyBytes <= scratch.size) {
    const o = scratch.get();
    owners.push(o);
    area = o.buf;
  } else {
    area = Buffer.from(new SharedArrayBuffer(copyBytes));
  }
  let at = 0;
  return bufs.map((b) => {
    if (b.buffer instanceof SharedArrayBuffer) return b;
    const c = area.subarray(at, at + b.length);
    b.copy(c);
    at += b.length;
    return c;
  });
}

const MiB = 1024 * 1024;
/**
 * How much of a write of `length` bytes at `pos` to issue in one system
 * call: all of it, unless it covers a whole 1 MiB-aligned MiB — then up to
 * that MiB's midpoint, so no call covers one. A call that does lets the
 * kernel back the MiB with a single 1 MiB page-cache folio (ext4 large
 * folios, Linux 6.x), and on this machine (a VM with free page reporting,
 * where such blocks come back from the host) filling those costs about 3×:
 * raw output, 1.5 GiB in 1 MiB-aligned extents, 1.8–2.1 s → 0.90–0.96 s
 * (docs/performance.md). Writes of qcow2/vmdk/vhd data rarely start
 * MiB-aligned and are left whole.
 */
export function segmentLength(pos: number, length: number): number {
  const m = Math.ceil(pos / MiB) * MiB;
  return m + MiB <= pos + length ? m + MiB / 2 - pos : length;
}

/** The first `n` bytes of `bufs` (views, no copy). */
function takeBytes(bufs: Buffer[], n: number): Buffer[] {
  const out: Buffer[] = [];
  for (const b of bufs) {
    if (n <= 0) break;
    out.push(b.length <= n ? b : b.subarray(0, n));
    n -= b.length;
  }
  return out;
}

function dropBytes(bufs: Buffer[], n: number): Buffer[] {
  const out: Buffer[] = [];
  for (const b of bufs) {
    if (n >= b.length) { n -= b.length; continue; }
    out.push(n > 0 ? b.subarray(n) : b);
    n = 0;
  }
  return out;
}

/** Run `body` with an OutputFile on `path`; always closes it. `opts.source`: what will be written (sizes the write path). */
export async function withOutput<T>(path: string, body: (out: OutputFile) => Promise<T>, opts: { thread?: boolean; source?: ByteSource } = {}): Promise<T> {
  const early = opts.thread !== false && opts.source !== undefined && await hasDataAtLeast(opts.source, THREAD_EARLY);
  const out = await OutputFile.create(path, { thread: opts.thread, early });
  try {
    return await body(out);
  } catch (e) {
    await out.abort();
    throw e;
  }
}

/** Bounded-concurrency ordered map: starts up to `depth` tasks ahead, yields results in input order. */
export async function* orderedParallel<I, O>(input: AsyncIterable<I>, fn: (x: I) => Promise<O>, depth: number): AsyncIterable<O> {
  const queue: Promise<O>[] = [];
  for await (const x of input) {
    const p = fn(x);
    p.catch(() => undefined); // observed when dequeued
    queue.push(p);
    if (queue.length >= depth) yield await queue.shift()!;
  }
  while (queue.length) yield await queue.shift()!;
}

/** SOURCE_DATE_EPOCH in seconds, or 0 (outputs never carry the wall clock). */
export function sourceDateEpoch(): number {
  const v = process.env.SOURCE_DATE_EPOCH;
  if (v && /^\d+$/.test(v)) return Number(v);
  return 0;
}
