/** A sorted set of disjoint half-open byte ranges [offset, offset+length), merged on insert. */
export interface Range { offset: number; length: number }

export class IntervalSet {
  private starts: number[] = [];
  private ends: number[] = [];

  add(offset: number, length: number): void {
    if (length <= 0) return;
    let s = offset;
    let e = offset + length;
    // first range whose end >= s
    let lo = 0, hi = this.ends.length;
    while (lo < hi) { const m = (lo + hi) >> 1; if (this.ends[m]! < s) lo = m + 1; else hi = m; }
    let j = lo;
    while (j < this.starts.length && this.starts[j]! <= e) {
      s = Math.min(s, this.starts[j]!);
      e = Math.max(e, this.ends[j]!);
      j++;
    }
    this.starts.splice(lo, j - lo, s);
    this.ends.splice(lo, j - lo, e);
  }

  /** Ranges in ascending order. */
  *ranges(): IterableIterator<Range> {
    for (let i = 0; i < this.starts.length; i++) yield { offset: this.starts[i]!, length: this.ends[i]! - this.starts[i]! };
  }

  /** Ranges clipped to [offset, offset+length). */
  *within(offset: number, length: number): IterableIterator<Range> {
    const end = offset + length;
    let lo = 0, hi = this.ends.length;
    while (lo < hi) { const m = (lo + hi) >> 1; if (this.ends[m]! <= offset) lo = m + 1; else hi = m; }
    for (let i = lo; i < this.starts.length && this.starts[i]! < end; i++) {
      const s = Math.max(offset, this.starts[i]!);
      const e = Math.min(end, this.ends[i]!);
      if (e > s) yield { offset: s, length: e - s };
    }
  }

  get count(): number { return this.starts.length; }

  totalBytes(): number {
    let t = 0;
    for (let i = 0; i < this.starts.length; i++) t += this.ends[i]! - this.starts[i]!;
    return t;
  }
}
