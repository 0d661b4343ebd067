/**
 * raw: the disk bytes as they are. Node has no SEEK_DATA/SEEK_HOLE, so the
 * allocation map of a raw file is found by scanning it in large reads and
 * dropping all-zero blocks (reading a hole costs the kernel a zero-page copy,
 * no disk I/O). The writer produces a sparse file: only non-zero blocks are
 * written, the rest is left as holes by truncating to the virtual size.
 */
import type { ByteSource, Range } from '../src/disk/target.js';
import { CHUNK, ImageFile, type FileWindow, clip, dataRuns, splitNonZero, withOutput, type DataRun, type RunSource } from './io.js';

/** Granularity of the zero scan: qemu-img's default zero-detection unit is 4 KiB sectors; 64 KiB keeps it cheap. */
export const RAW_SCAN_BLOCK = 64 * 1024;

export class RawSource implements RunSource {
  readonly format = 'raw';
  private constructor(readonly file: ImageFile, readonly size: number, private readonly base: number) {}

  /** A raw image file, or a window of one (a stored tar/zip member). */
  static async open(path: string, window?: FileWindow): Promise<RawSource> {
    return RawSource.fromFile(await ImageFile.open(path, window));
  }

  /** The whole of `file`, or `size` bytes of it from `offset` (a flat VMDK extent). */
  static fromFile(file: ImageFile, part?: { offset: number; size: number }): RawSource {
    return new RawSource(file, part?.size ?? file.size, part?.offset ?? 0);
  }

  get path(): string { return this.file.path; }

  async read(buf: Uint8Array, position: number): Promise<number> {
    const n = clip(buf, position, this.size);
    if (n > 0) await this.file.readPadded(buf.subarray(0, n), this.base + position, n);
    return n;
  }

  async *dataRuns(blockSize: number): AsyncIterable<DataRun> {
    const step = Math.max(blockSize, Math.floor(CHUNK / blockSize) * blockSize);
    for (let off = 0; off < this.size; off += step) {
      const len = Math.min(step, this.size - off);
      const buf = Buffer.allocUnsafe(len);
      await this.read(buf, off);
      yield* splitNonZero(buf, off, blockSize);
    }
  }

  async *allocated(): AsyncIterable<Range> {
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
    for await (const run of dataRuns(source, RAW_SCAN_BLOCK)) {
      if (run.data) await out.write(run.data, run.offset);
    }
    await out.finish(source.size);
  });
}
