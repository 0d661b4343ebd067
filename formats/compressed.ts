/**
 * Compressed raw disks (raw.xz, raw.gz, raw.zst) and the sequential stream
 * source they share with compressed tarballs and deflated zip members.
 *
 * A compressed stream has no random access: {@link StreamImage} decodes
 * forward, keeping only the current chunk, and restarts from the beginning
 * on a backward read. Converters read in ascending order, so a conversion is
 * one decoding pass in bounded memory. The virtual size comes from the xz
 * index or the zstd frame header when present, otherwise from one counting
 * pass (gzip's ISIZE is only the size modulo 2^32).
 *
 * Writers stream the whole virtual disk through the encoder: data is read
 * from the source, holes are fed from a shared zero buffer (never read).
 * raw.xz is compressed in independent segments on parallel lanes (see
 * writeXz), zstd uses libzstd's worker threads; gzip output carries mtime 0.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { Readable, Transform, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createRequire } from 'node:module';
import zlib from 'node:zlib';
import type { ByteSource, Range } from '../src/disk/target.js';
import { ImageFormatError } from './errors.js';
import { IntervalSet } from '../src/util/intervals.js';
import { clip, isZero, pooledDataRuns, withOutput } from './io.js';

const require = createRequire(import.meta.url);

export type CompressedKind = 'xz' | 'gz' | 'zst';

interface ZstdStreams {
  DecompressStream: new () => Transform;
  CompressStream: new (p: { compressionLevel?: number; nbWorkers?: number; checksumFlag?: boolean }) => Transform;
}
function zstdStreams(): ZstdStreams { return require('zstd-napi') as ZstdStreams; }
type Lzma = typeof import('lzma-native').default;
let lzmaModule: Lzma | undefined;
/** liblzma bindings, loaded on first use (a native addon: no cost for commands that never touch xz). */
function lzma(): Lzma { return (lzmaModule ??= require('lzma-native') as Lzma); }

export function decoderFor(kind: CompressedKind): Transform {
  if (kind === 'xz') return lzma().createDecompressor();
  if (kind === 'gz') return zlib.createGunzip();
  return new (zstdStreams().DecompressStream)();
}

/** A readable stream of bytes that can be started again from the beginning. */
export type StreamFactory = () => Readable;

/** Sequential, restartable decoded view of a stream with a known size. */
export class StreamImage implements ByteSource {
  private iter: AsyncIterator<Buffer> | null = null;
  private cur: Buffer = Buffer.alloc(0);
  private curStart = 0;
  private stream: Readable | null = null;
  /** How many times decoding restarted (a backward read); tests watch it. */
  restarts = 0;

  constructor(readonly path: string, readonly size: number, private readonly factory: StreamFactory) {}

  private start(): void {
    this.stream?.destroy();
    this.stream = this.factory();
    this.iter = (this.stream as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
    this.cur = Buffer.alloc(0);
    this.curStart = 0;
  }

  private async next(): Promise<void> {
    let r: IteratorResult<Buffer>;
    try {
      r = await this.iter!.next();
    } catch (e) {
      throw new ImageFormatError('STREAM_CORRUPT', `compressed data is corrupt: ${(e as Error).message}`, { file: this.path, offset: this.curStart + this.cur.length }, { cause: e });
    }
    if (r.done) {
      throw new ImageFormatError('STREAM_TRUNCATED', `stream ends at ${this.curStart + this.cur.length} bytes, before the ${this.size}-byte size`, { file: this.path });
    }
    this.curStart += this.cur.length;
    this.cur = r.value;
  }

  async read(buf: Uint8Array, position: number): Promise<number> {
    const n = clip(buf, position, this.size);
    let done = 0;
    while (done < n) {
      const p = position + done;
      if (!this.iter || p < this.curStart) { if (this.iter) this.restarts++; this.start(); }
      while (p >= this.curStart + this.cur.length) await this.next();
      const k = Math.min(n - done, this.curStart + this.cur.length - p);
      buf.set(this.cur.subarray(p - this.curStart, p - this.curStart + k), done);
      done += k;
    }
    return n;
  }

  async *allocated(): AsyncIterable<Range> {
    if (this.size > 0) yield { offset: 0, length: this.size };
  }

  async close(): Promise<void> {
    this.stream?.destroy();
    this.stream = null;
    this.iter = null;
  }
}

/** Count the decoded length of a stream (one full pass, bounded memory). */
export async function countStream(path: string, factory: StreamFactory): Promise<number> {
  let n = 0;
  try {
    for await (const c of factory() as AsyncIterable<Buffer>) n += c.length;
  } catch (e) {
    throw new ImageFormatError('STREAM_CORRUPT', `compressed data is corrupt: ${(e as Error).message}`, { file: path, offset: n }, { cause: e });
  }
  return n;
}

function fileDecoder(path: string, kind: CompressedKind): StreamFactory {
  return () => {
    const dec = decoderFor(kind);
    const src = createReadStream(path, { highWaterMark: 1 << 20 });
    src.on('error', (e) => dec.destroy(e));
    return src.pipe(dec);
  };
}

async function xzSize(path: string): Promise<number | null> {
  const fh = await open(path, 'r');
  try {
    return await new Promise<number | null>((res) => {
      lzma().parseFileIndexFD(fh.fd, (err, info) => res(err ? null : info.uncompressedSize));
    });
  } finally {
    await fh.close();
  }
}

async function zstdSize(path: string): Promise<number | null> {
  const fh = await open(path, 'r');
  try {
    const head = Buffer.alloc(18);
    const { bytesRead } = await fh.read(head, 0, 18, 0);
    const binding = require('zstd-napi/binding.js') as { getFrameContentSize(b: Uint8Array): number | null; findFrameCompressedSize(b: Uint8Array): number };
    const size = binding.getFrameContentSize(head.subarray(0, bytesRead));
    if (size === null) return null;
    // Only trust it for a single-frame file.
    const st = await fh.stat();
    if (st.size > 64 * 1024 * 1024) return null;
    const all = Buffer.alloc(st.size);
    await fh.read(all, 0, st.size, 0);
    return binding.findFrameCompressedSize(all) === st.size ? size : null;
  } catch {
    return null;
  } finally {
    await fh.close();
  }
}

/** Open a compressed raw disk. */
export async function openCompressed(path: string, kind: CompressedKind): Promise<StreamImage> {
  const factory = fileDecoder(path, kind);
  let size: number | null = null;
  if (kind === 'xz') size = await xzSize(path);
  if (kind === 'zst') size = await zstdSize(path);
  if (size === null) size = await countStream(path, factory);
  return new StreamImage(path, size, factory);
}

/**
 * Bytes handed to the encoder at a time. Every chunk is one round trip between
 * the JS thread and the encoder's thread, each a scheduling delay on a busy
 * machine, so chunks are large and of fixed size whatever the source's runs are.
 */
export const STREAM_CHUNK = 8 << 20;

/** Staging buffers diskChunks cycles through: a yielded chunk stays intact for RING - 1 further yields. */
const RING = 3;

/**
 * The whole virtual disk as STREAM_CHUNK-sized buffers: data read from the
 * source, holes as zeros (never read; whole-zero chunks share one buffer, so
 * a mostly empty disk costs no copying). Mixed chunks are assembled in a ring
 * of RING staging buffers: the consumer must be done with a chunk before it
 * asks for the RING-th one after it (feedEncoder waits for that).
 */
export async function* diskChunks(source: ByteSource, chunkSize = STREAM_CHUNK): AsyncIterable<Buffer> {
  const zero = Buffer.alloc(chunkSize);
  const ring: Buffer[] = [];
  let slot = 0;
  const total = source.size;
  let pos = 0;
  let stage: Buffer | null = null;
  let filled = 0;
  /** Append `len` bytes (from `src`, or zeros when null) at `pos`, yielding each completed chunk. */
  function* append(src: Buffer | null, len: number): Generator<Buffer> {
    let i = 0;
    while (i < len) {
      if (!stage && src === null && len - i >= chunkSize) { yield zero; i += chunkSize; pos += chunkSize; continue; }
      if (!stage) {
        ring[slot] ??= Buffer.allocUnsafe(chunkSize);
        stage = ring[slot]!.subarray(0, Math.min(chunkSize, total - pos));
        slot = (slot + 1) % RING;
        filled = 0;
      }
      const k = Math.min(stage.length - filled, len - i);
      if (src) src.copy(stage, filled, i, i + k); else stage.fill(0, filled, filled + k);
      filled += k; i += k; pos += k;
      if (filled === stage.length) { const full: Buffer = stage; stage = null; yield full; }
    }
  }
  // Runs are copied into the staging buffer at once, so they may live in recycled read buffers.
  for await (const run of pooledDataRuns(source, 64 * 1024)) {
    yield* append(null, run.offset - pos);
    yield* append(run.data, run.length);
  }
  yield* append(null, total - pos);
}

/** Write `chunks` (from diskChunks) into `encoder` and end it, keeping at most RING - 1 chunks unconsumed. */
export async function feedEncoder(encoder: Writable, chunks: AsyncIterable<Buffer>): Promise<void> {
  const pending: Promise<void>[] = [];
  let failed: unknown = null;
  const onError = (e: unknown) => { failed ??= e; };
  encoder.on('error', onError);
  try {
    for await (const c of chunks) {
      if (failed) throw failed;
      pending.push(new Promise<void>((res, rej) => encoder.write(c, (e) => (e ? rej(e) : res()))));
      pending[pending.length - 1]!.catch(() => undefined);
      if (pending.length >= RING - 1) await pending.shift();
    }
    await Promise.all(pending);
    if (failed) throw failed;
    encoder.end();
  } catch (e) {
    encoder.destroy(e as Error);
    throw e;
  } finally {
    encoder.off('error', onError);
  }
}

export function encoderFor(kind: CompressedKind, threads?: number): Transform {
  const t = Math.max(1, threads ?? Math.min(4, availableParallelism()));
  // liblzma's multithreaded encoder cuts fixed 24 MiB blocks (3 x the preset-6 dictionary), so its output
  // does not depend on the thread count; at least 2 keeps it on that encoder on any machine.
  if (kind === 'xz') return lzma().createCompressor({ preset: 6, threads: Math.max(2, t), blockSize: 24 << 20, check: lzma().CHECK_CRC64, bufsize: 1 << 20 });
  if (kind === 'gz') return zlib.createGzip({ level: 6 });
  return new (zstdStreams().CompressStream)({ compressionLevel: 3, nbWorkers: t, checksumFlag: true });
}

/** Write `source` compressed (a bare raw disk) to `path`. */
export async function writeCompressed(source: ByteSource, path: string, kind: CompressedKind, opts: { threads?: number } = {}): Promise<void> {
  if (kind === 'xz') return writeXz(source, path, opts);
  const encoder = encoderFor(kind, opts.threads);
  const written = pipeline(encoder, createWriteStream(path));
  written.catch(() => undefined);
  await feedEncoder(encoder, diskChunks(source));
  await written;
}

/** Longest raw.xz segment (uncompressed bytes); see writeXz. */
export const XZ_SEGMENT = 32 << 20;
/** Dictionary per lane: 4 MiB keeps a lane's match finder at 47 MiB (8 MiB, preset 6's, takes 93 MiB). */
const XZ_DICT = 4 << 20;
/** Granule of raw.xz segmentation and of its reads. */
const XZ_BLOCK = 1 << 20;
/**
 * Compressed bytes lanes may hold for segments after the one being written,
 * beyond one segment per lane: lets a lane that finished early go on without
 * letting incompressible data pile up.
 */
const XZ_AHEAD_BYTES = 8 << 20;

/**
 * LZMA2 as in xz's preset 6 (xz(1), "Presets": normal mode, bt4 match finder,
 * nice length 64, automatic depth; lc 3, lp 0, pb 2) but with XZ_DICT.
 */
function segmentEncoder(): Transform {
  const l = lzma();
  const options = { dictSize: XZ_DICT, lc: 3, lp: 0, pb: 2, mode: l.MODE_NORMAL, niceLen: 64, mf: l.MF_BT4, depth: 0 };
  return l.createStream('streamEncoder', { filters: [{ id: l.FILTER_LZMA2, options }], check: l.CHECK_CRC64 });
}

/**
 * The encoder of zero segments: fast mode, hc4, longest matches, a 64 KiB
 * dictionary. On zeros it writes the same number of bytes as segmentEncoder
 * (5,016 for 32 MiB with xz 5.4's CLI) at half the time and 3 MB instead of
 * 41 MB of memory; zeros need no history.
 */
function zeroSegmentEncoder(): Transform {
  const l = lzma();
  const options = { dictSize: 64 << 10, lc: 3, lp: 0, pb: 2, mode: l.MODE_FAST, niceLen: 273, mf: l.MF_HC4, depth: 0 };
  return l.createStream('streamEncoder', { filters: [{ id: l.FILTER_LZMA2, options }], check: l.CHECK_CRC64 });
}

/** A piece of the disk that becomes one .xz stream; `zero` pieces hold only zero bytes. */
export interface XzSegment { offset: number; length: number; zero: boolean }

/**
 * Cuts a disk into raw.xz segments by content, fed its XZ_BLOCK-aligned
 * blocks in order (`zero`: the block holds only zero bytes). A run of zero
 * blocks at least XZ_DICT long becomes zero segments of its own: an LZMA
 * match reaches back at most the dictionary size, so past such a run the
 * encoder could refer to nothing but zeros, and cutting there costs only the
 * stream overhead. Encoding zeros is slow (bt4 match finding over long
 * repeats, ~20 ns a byte), and all zero segments of one length compress to
 * the same bytes. Everything else is data segments, shorter zero runs
 * included. No segment exceeds XZ_SEGMENT. The cut depends on the bytes
 * alone, not on which of them are holes.
 */
export class XzSegmenter {
  private dataStart: number | null = null;
  private zeroStart: number | null = null;
  private end = 0;

  /** The segments completed by the next block. */
  push(b: { offset: number; length: number; zero: boolean }): XzSegment[] {
    const out: XzSegment[] = [];
    this.end = b.offset + b.length;
    if (b.zero) {
      this.zeroStart ??= b.offset;
    } else {
      if (this.zeroStart !== null) {
        if (this.dataStart === null || b.offset - this.zeroStart >= XZ_DICT) {
          if (this.dataStart !== null) out.push({ offset: this.dataStart, length: this.zeroStart - this.dataStart, zero: false });
          out.push(...zeroSegments(this.zeroStart, b.offset));
          this.dataStart = null;
        }
        this.zeroStart = null;
      }
      this.dataStart ??= b.offset;
    }
    if (this.dataStart !== null && this.end - this.dataStart >= XZ_SEGMENT) {
      if (this.zeroStart !== null && this.end - this.zeroStart >= XZ_DICT) {
        // Inside a run already long enough to be cut out: the data ends where it began.
        out.push({ offset: this.dataStart, length: this.zeroStart - this.dataStart, zero: false });
        this.dataStart = null;
      } else {
        out.push({ offset: this.dataStart, length: this.end - this.dataStart, zero: false });
        this.dataStart = this.zeroStart = null;
      }
    }
    return out;
  }

  /** The segments left after the last block. */
  finish(): XzSegment[] {
    const out: XzSegment[] = [];
    if (this.zeroStart !== null && this.dataStart !== null && this.end - this.zeroStart < XZ_DICT) this.zeroStart = null;
    if (this.dataStart !== null) out.push({ offset: this.dataStart, length: (this.zeroStart ?? this.end) - this.dataStart, zero: false });
    if (this.zeroStart !== null) out.push(...zeroSegments(this.zeroStart, this.end));
    this.dataStart = this.zeroStart = null;
    return out;
  }
}

function zeroSegments(from: number, to: number): XzSegment[] {
  const out: XzSegment[] = [];
  for (let at = from; at < to; at += XZ_SEGMENT) out.push({ offset: at, length: Math.min(XZ_SEGMENT, to - at), zero: true });
  return out;
}

/** The XZ_BLOCK blocks of `source`, classified: holes without reading, allocated blocks by their bytes. */
async function* classifiedBlocks(source: ByteSource, allocation: IntervalSet): AsyncGenerator<{ offset: number; length: number; zero: boolean }> {
  const buf = Buffer.allocUnsafe(XZ_BLOCK);
  for (let at = 0; at < source.size; at += XZ_BLOCK) {
    const length = Math.min(XZ_BLOCK, source.size - at);
    let zero = true;
    for (const r of allocation.within(at, length)) {
      const part = buf.subarray(0, r.length);
      await source.read(part, r.offset);
      if (!isZero(part)) { zero = false; break; }
    }
    yield { offset: at, length, zero };
  }
}

/**
 * raw.xz: the virtual disk cut into segments (XzSegmenter), each compressed
 * by a single-threaded encoder into an independent .xz stream, the streams
 * concatenated in order — the .xz format allows any number of streams in a
 * file, and xz, unxz and liblzma's decoders read them as one (xz file format
 * 1.1.0, §2 "Overall Structure of .xz File").
 *
 * Why not liblzma's multithreaded encoder: at preset 6 every thread holds a
 * 93 MiB match finder and a 24 MiB input block, and the xz 5.2.3 inside
 * lzma-native allocates an output queue of 2 × threads blocks up front —
 * 389 MB peak for two threads; and it spends most of a sparse disk's time
 * compressing zeros. A lane here holds one encoder with a 4 MiB dictionary
 * and reads its segment straight from the source (no input buffering); a
 * lane ahead of the output keeps its compressed segment until the segments
 * before it are written. Zero segments are encoded once per length. Output
 * depends only on the disk's bytes, not on the thread count or on holes.
 * Sizes and times against xz -T2 are in docs/performance.md.
 */
export async function writeXz(source: ByteSource, path: string, opts: { threads?: number } = {}): Promise<void> {
  const lanes = Math.max(1, Math.min(16, Math.floor(opts.threads ?? Math.min(2, availableParallelism()))));
  const allocation = new IntervalSet();
  for await (const r of source.allocated()) allocation.add(r.offset, Math.min(r.length, source.size - r.offset));
  const plan = planSegments(source, allocation);
  const segments = new Map<number, { chunks: Buffer[]; done: boolean }>();
  const zeroStreams = new Map<number, Buffer>();
  let head = 0, next = 0;
  let planned = Infinity;
  let failure: unknown = null;
  let waiters: (() => void)[] = [];
  const notify = () => { for (const w of waiters.splice(0)) w(); };
  const changed = () => new Promise<void>((r) => waiters.push(r));
  const waiting = () => {
    let n = 0;
    for (const [k, seg] of segments) if (k !== head) for (const c of seg.chunks) n += c.length;
    return n;
  };
  const zero = Buffer.alloc(XZ_BLOCK);
  // One planner, shared by the lanes: each asks in turn (the chain keeps the generator's calls serial).
  let planning: Promise<unknown> = Promise.resolve();
  const nextSegment = (): Promise<IteratorResult<XzSegment>> => {
    const r = planning.then(() => plan.next());
    planning = r.catch(() => undefined);
    return r;
  };

  const encodeSegment = async (s: XzSegment, seg: { chunks: Buffer[]; done: boolean }) => {
    const cached = s.zero ? zeroStreams.get(s.length) : undefined;
    if (cached) { seg.chunks.push(cached); return; }
    const enc = s.zero ? zeroSegmentEncoder() : segmentEncoder();
    const produced: Buffer[] = [];
    enc.on('data', (c: Buffer) => { seg.chunks.push(c); if (s.zero) produced.push(c); notify(); });
    const ended = new Promise<void>((res, rej) => { enc.on('end', res); enc.on('error', rej); });
    ended.catch(() => undefined);
    const buf = Buffer.allocUnsafe(XZ_BLOCK);
    try {
      for (let at = s.offset; at < s.offset + s.length; at += XZ_BLOCK) {
        if (failure) throw failure;
        const n = Math.min(XZ_BLOCK, s.offset + s.length - at);
        let piece = zero.subarray(0, n);
        // Holes are fed from the zero buffer; a read buffer is reused once the encoder has taken it.
        if (!s.zero && !allocation.within(at, n).next().done) { piece = buf.subarray(0, n); await source.read(piece, at); }
        await new Promise<void>((res, rej) => enc.write(piece, (e?: Error | null) => (e ? rej(e) : res())));
      }
      enc.end();
      await ended;
    } catch (e) {
      enc.destroy();
      throw e;
    }
    if (s.zero) zeroStreams.set(s.length, Buffer.concat(produced));
  };

  const lane = async () => {
    while (!failure) {
      // Up to `lanes` segments from the one being written, more while little output waits.
      while (next >= head + lanes && waiting() >= XZ_AHEAD_BYTES && !failure) await changed();
      if (failure) return;
      const k = next++;
      const seg = { chunks: [] as Buffer[], done: false };
      segments.set(k, seg);
      try {
        const r = await nextSegment();
        if (r.done) { planned = Math.min(planned, k); segments.delete(k); notify(); return; }
        await encodeSegment(r.value, seg);
      } catch (e) {
        failure ??= e;
      }
      seg.done = true;
      notify();
    }
  };

  await withOutput(path, async (out) => {
    let pos = 0;
    const writer = async () => {
      try {
        while (head < planned && !failure) {
          const seg = segments.get(head);
          if (seg && seg.chunks.length > 0) {
            for (const c of seg.chunks.splice(0)) { await out.write(c, pos); pos += c.length; }
            continue;
          }
          if (seg?.done) { segments.delete(head); head++; notify(); continue; }
          await changed();
        }
      } catch (e) {
        failure ??= e;
        notify();
      }
    };
    await Promise.all([writer(), ...Array.from({ length: lanes }, lane)]);
    if (failure) throw failure;
    if (pos === 0) {
      // An empty disk is still one (empty) stream: a .xz file has at least one.
      const enc = segmentEncoder();
      enc.end();
      for await (const c of enc as AsyncIterable<Buffer>) { await out.write(c, pos); pos += c.length; }
    }
    await out.finish(pos);
  }, { thread: false });
}

/** The segments of `source`, planned as its blocks are classified. */
async function* planSegments(source: ByteSource, allocation: IntervalSet): AsyncGenerator<XzSegment> {
  const cut = new XzSegmenter();
  for await (const b of classifiedBlocks(source, allocation)) yield* cut.push(b);
  yield* cut.finish();
}
