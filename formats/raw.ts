/**
 * raw: the disk bytes as they are.
 *
 * Allocation map: the file's data extents from SEEK_DATA/SEEK_HOLE
 * (src/disk's FileSource); holes are then never read. Where that is unavailable (the addon
 * failed to build, or the filesystem answers EINVAL) the file is scanned in
 * large reads and all-zero blocks are dropped — reading a hole costs the
 * kernel a zero-page copy, no disk I/O. Inside data extents zero blocks are
 * still dropped, so written zeros do not become data either.
 *
 * The writer produces a sparse file: only non-zero blocks are written, the
 * rest stays a hole (the file is truncated to the virtual size).
 */
import type { ByteSource, Range } from '../src/disk/target.js';
import { CHUNK, type BufferPool, clip, pooledDataRuns, splitNonZero, withOutput, type DataRun, type RunSource } from './io.js';
import { FileSource, type FileWindow } from '../src/disk/file.js';

/** Granularity of the zero scan: 64 KiB keeps it cheap and matches the default qcow2 cluster. */
export const RAW_SCAN_BLOCK = 64 * 1024;
const YIELD_BYTES = 64 * 1024 * 1024;

export class RawSource implements RunSource {
  readonly format = 'raw';
  private extents: Range[] | null | undefined;
  private constructor(readonly file: FileSource, readonly size: number, private readonly base: number) {}

  /** A raw image file, or a window of one (a stored tar/zip member). */
  static async open(path: string, window?: FileWindow): Promise<RawSource> {
    return RawSource.fromFile(await FileSource.open(path, window));
  }

  /** The whole of `file`, or `size` bytes of it from `offset` (a flat VMDK extent). */
  static fromFile(file: FileSource, part?: { offset: number; size: number }): RawSource {
    return new RawSource(file, part?.size ?? file.size, part?.offset ?? 0);
  }

  get path(): string { return this.file.path; }

  async read(buf: Uint8Array, position: number): Promise<number> {
    const n = clip(buf, position, this.size);
    if (n > 0) await this.file.readPadded(buf.subarray(0, n), this.base + position, n);
    return n;
  }

  /** The file system's data extents (in this source's coordinates), or null. */
  private fsExtents(): Range[] | null {
    if (this.extents === undefined) {
      this.extents = this.file.dataExtents(this.base, this.size);
    }
    return this.extents;
  }

  async *dataRuns(blockSize: number, pool?: BufferPool): AsyncIterable<DataRun> {
    const ext = this.fsExtents();
    const ranges: Iterable<Range> = ext ?? [{ offset: 0, length: this.size }];
    const step = Math.max(blockSize, Math.floor(CHUNK / blockSize) * blockSize);
    // The reads to make: extents widened to whole blocks, never a block twice, packed into
    // chunks of at most `step` bytes (small extents share one buffer: fewer buffers in flight).
    const plan: { pieces: Range[]; length: number }[] = [];
    let doneTo = 0;
    const addPiece = (piece: Range) => {
      const last = plan[plan.length - 1];
      if (last && last.length + piece.length <= step) { last.pieces.push(piece); last.length += piece.length; }
      else plan.push({ pieces: [piece], length: piece.length });
    };
    for (const r of ranges) {
      const start = Math.max(doneTo, Math.floor(r.offset / blockSize) * blockSize);
      const end = Math.min(this.size, Math.ceil((r.offset + r.length) / blockSize) * blockSize);
      for (let off = start; off < end; off += step) addPiece({ offset: off, length: Math.min(step, end - off) });
      doneTo = Math.max(doneTo, end);
    }
    // Reads are synchronous: from the page cache they cost less than a thread-pool hand-off, and
    // the output's writes (OutputFile) run in the pool meanwhile. With extents and a pool the
    // runs point into recycled buffers (see pooledDataRuns).
    // A consumer that never waits for real I/O (an allocation scan) would hold the event loop for the
    // whole file: give it a turn every YIELD_BYTES read, so embedders' timers and signals still run.
    const usePool = ext !== null && pool !== undefined && pool.size >= step;
    let sinceYield = 0;
    for (const c of plan) {
      if ((sinceYield += c.length) >= YIELD_BYTES) { sinceYield = 0; await new Promise<void>((r) => setImmediate(r)); }
      const owner = usePool ? pool.get() : undefined;
      try {
        const buf = owner ? owner.buf.subarray(0, c.length) : Buffer.allocUnsafe(c.length);
        let at = 0;
        for (const r of c.pieces) {
          const part = buf.subarray(at, at + r.length);
          at += r.length;
          const n = clip(part, r.offset, this.size);
          if (n > 0) this.file.readPaddedSync(part, this.base + r.offset, n);
        }
        at = 0;
        for (const piece of c.pieces) {
          const part = buf.subarray(at, at + piece.length);
          at += piece.length;
          // Without extents holes are read too: copy out only the data so holes cost no memory.
          for (const run of splitNonZero(part, piece.offset, blockSize)) yield ext ? (owner ? { ...run, owner } : run) : { ...run, data: Buffer.from(run.data!) };
        }
      } finally {
        owner?.release();
      }
    }
  }

  async *allocated(): AsyncIterable<Range> {
    const ext = this.fsExtents();
    if (ext) { yield* ext; return; }
    let cur: Range | null = null;
    for await (const r of this.dataRuns(RAW_SCAN_BLOCK)) {
      if (cur && cur.offset + cur.length === r.offset) { cur.length += r.length; continue; }
      if (cur) yield cur;
      cur = { offset: r.offset, length: r.length };
    }
    if (cur) yield cur;
  }

  close(): Promise<void> { return this.file.close(); }
}

/** Write `source` as a sparse raw file at `path` (the caller provides the temp path of an atomic output). */
export async function writeRaw(source: ByteSource, path: string): Promise<void> {
  await withOutput(path, async (out) => {
    for await (const run of pooledDataRuns(source, RAW_SCAN_BLOCK)) {
      if (run.data) await out.write(run.data, run.offset, run.owner);
    }
    await out.finish(source.size);
  }, { source });
}
