import type { ByteSource, Range } from './target.js';

/** A read-only window [offset, offset+size) of a source: a partition of a disk image being read. */
export class SubSource implements ByteSource {
  constructor(private readonly parent: ByteSource, readonly offset: number, readonly size: number) {
    if (offset < 0 || size < 0 || offset + size > parent.size) throw new RangeError(`window ${offset}+${size} outside the ${parent.size}-byte source`);
  }
  async read(buf: Uint8Array, position: number): Promise<number> {
    const n = Math.max(0, Math.min(buf.length, this.size - position));
    if (n === 0) return 0;
    return this.parent.read(n === buf.length ? buf : buf.subarray(0, n), this.offset + position);
  }
  async *allocated(): AsyncIterable<Range> {
    for await (const r of this.parent.allocated()) {
      const s = Math.max(r.offset, this.offset);
      const e = Math.min(r.offset + r.length, this.offset + this.size);
      if (e > s) yield { offset: s - this.offset, length: e - s };
    }
  }
  async close(): Promise<void> { /* the parent owns the handle */ }
}
