/**
 * The thin I/O layer every format and filesystem sits on: a random-access
 * byte source with an allocation map (so holes are never read or written as
 * zeros), and a writable block target with positioned writes.
 *
 * Offsets and sizes are byte counts as JS numbers (exact up to 2^53).
 */
import { open, type FileHandle } from 'node:fs/promises';
import { IntervalSet, type Range } from '../util/intervals.js';

export type { Range } from '../util/intervals.js';

/** A readable virtual disk (or partition, or file content). */
export interface ByteSource {
  /** Virtual size in bytes. */
  readonly size: number;
  /**
   * Fill `buf` from `position`. Unallocated ranges read as zeros. Returns the
   * number of bytes read, which is `buf.length` unless the read passes `size`.
   */
  read(buf: Uint8Array, position: number): Promise<number>;
  /**
   * The allocated (possibly non-zero) ranges in ascending order. Everything
   * outside them reads as zeros. A source that cannot tell reports one range
   * covering everything.
   */
  allocated(): AsyncIterable<Range>;
  close(): Promise<void>;
}

/** A writable target: positioned writes into a fixed-size virtual disk. */
export interface BlockTarget extends ByteSource {
  /** Write `data` at `position`; must stay within `size`. */
  write(data: Uint8Array, position: number): Promise<void>;
  /** Flush to stable storage where that applies. */
  flush(): Promise<void>;
}

export class TargetRangeError extends RangeError {
  constructor(position: number, length: number, size: number) {
    super(`write of ${length} bytes at ${position} passes the end of the ${size}-byte target`);
  }
}

/** A window [offset, offset+size) of a parent target: how a partition becomes a filesystem's whole disk. */
export class SubTarget implements BlockTarget {
  constructor(private readonly parent: BlockTarget, readonly offset: number, readonly size: number) {
    if (offset < 0 || size < 0 || offset + size > parent.size) throw new TargetRangeError(offset, size, parent.size);
  }
  async read(buf: Uint8Array, position: number): Promise<number> {
    const n = Math.max(0, Math.min(buf.length, this.size - position));
    if (n === 0) return 0;
    return this.parent.read(n === buf.length ? buf : buf.subarray(0, n), this.offset + position);
  }
  async write(data: Uint8Array, position: number): Promise<void> {
    if (position < 0 || position + data.length > this.size) throw new TargetRangeError(position, data.length, this.size);
    return this.parent.write(data, this.offset + position);
  }
  async *allocated(): AsyncIterable<Range> {
    for await (const r of this.parent.allocated()) {
      const s = Math.max(r.offset, this.offset);
      const e = Math.min(r.offset + r.length, this.offset + this.size);
      if (e > s) yield { offset: s - this.offset, length: e - s };
    }
  }
  flush(): Promise<void> { return this.parent.flush(); }
  async close(): Promise<void> { /* the parent owns the handle */ }
}

/** An in-memory sparse target for tests: only written chunks take memory. */
export class MemoryTarget implements BlockTarget {
  private static readonly CHUNK = 64 * 1024;
  private readonly chunks = new Map<number, Uint8Array>();
  private readonly map = new IntervalSet();
  constructor(readonly size: number) {}

  async write(data: Uint8Array, position: number): Promise<void> {
    if (position < 0 || position + data.length > this.size) throw new TargetRangeError(position, data.length, this.size);
    const C = MemoryTarget.CHUNK;
    let done = 0;
    while (done < data.length) {
      const p = position + done;
      const ci = Math.floor(p / C);
      const co = p - ci * C;
      const n = Math.min(C - co, data.length - done);
      let chunk = this.chunks.get(ci);
      if (!chunk) { chunk = new Uint8Array(C); this.chunks.set(ci, chunk); }
      chunk.set(data.subarray(done, done + n), co);
      done += n;
    }
    this.map.add(position, data.length);
  }

  async read(buf: Uint8Array, position: number): Promise<number> {
    const n = Math.max(0, Math.min(buf.length, this.size - position));
    const C = MemoryTarget.CHUNK;
    let done = 0;
    while (done < n) {
      const p = position + done;
      const ci = Math.floor(p / C);
      const co = p - ci * C;
      const k = Math.min(C - co, n - done);
      const chunk = this.chunks.get(ci);
      if (chunk) buf.set(chunk.subarray(co, co + k), done); else buf.fill(0, done, done + k);
      done += k;
    }
    return n;
  }

  async *allocated(): AsyncIterable<Range> { yield* this.map.ranges(); }
  async flush(): Promise<void> {}
  async close(): Promise<void> {}
}

/**
 * A sparse file: the file is truncated to `size` (a hole) and only written
 * ranges become data. The allocation map records what this process wrote.
 */
export class SparseFileTarget implements BlockTarget {
  private readonly map = new IntervalSet();
  private constructor(private readonly fh: FileHandle, readonly path: string, readonly size: number) {}

  /** Create (or truncate) `path` as a hole of `size` bytes. */
  static async create(path: string, size: number): Promise<SparseFileTarget> {
    const fh = await open(path, 'w+');
    try {
      await fh.truncate(size);
    } catch (e) {
      await fh.close();
      throw e;
    }
    return new SparseFileTarget(fh, path, size);
  }

  async write(data: Uint8Array, position: number): Promise<void> {
    if (position < 0 || position + data.length > this.size) throw new TargetRangeError(position, data.length, this.size);
    let done = 0;
    while (done < data.length) {
      const { bytesWritten } = await this.fh.write(data, done, data.length - done, position + done);
      done += bytesWritten;
    }
    this.map.add(position, data.length);
  }

  async read(buf: Uint8Array, position: number): Promise<number> {
    const n = Math.max(0, Math.min(buf.length, this.size - position));
    let done = 0;
    while (done < n) {
      const { bytesRead } = await this.fh.read(buf, done, n - done, position + done);
      if (bytesRead === 0) { buf.fill(0, done, n); break; }
      done += bytesRead;
    }
    return n;
  }

  async *allocated(): AsyncIterable<Range> { yield* this.map.ranges(); }
  async flush(): Promise<void> { await this.fh.datasync(); }
  async close(): Promise<void> { await this.fh.close(); }
}
