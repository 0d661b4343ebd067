/**
 * Coalesces the writer's block writes: consecutive blocks (a directory
 * followed by the files it holds, as the allocator lays them out) fill one
 * window buffer, whose file reads run concurrently, then go to the target
 * in one positioned write. Padding in a file's last block is zeroed.
 *
 * Several windows are written at once (a queue, not a double buffer): the
 * thread pool always has the next write waiting, so on a busy machine it
 * never idles while this thread waits to be scheduled again.
 */
import type { BlockTarget } from '../../disk/target.js';
import type { FileContent } from '../../tree/tree.js';
import { Ext4Error } from './errors.js';

interface PendingRead { content: FileContent; from: number; at: number; n: number; what: () => string }

function shortRead(r: PendingRead, done: number): never {
  throw new Ext4Error('EXT4_SHORT_READ', `file content ended early (it changed size while being written?)`, {
    file: r.what(), offset: r.from + done, expected: `${r.n} bytes`, actual: `${done} bytes`,
  });
}

export class DataWriter {
  private buf: Uint8Array;
  /** Windows free to fill. */
  private readonly free: Uint8Array[] = [];
  /** Windows being written, oldest first; each resolves to its buffer once written. */
  private readonly inFlight: Promise<Uint8Array>[] = [];
  private start = -1;
  private len = 0;
  private reads: PendingRead[] = [];
  /** Bytes handed to the target. */
  written = 0;

  constructor(
    private readonly target: BlockTarget,
    private readonly blockSize: number,
    windowBytes = 2 << 20,
    private readonly concurrency = 16,
    windows = 8,
  ) {
    this.buf = new Uint8Array(Math.max(windowBytes, blockSize));
    for (let k = 1; k < Math.max(2, windows); k++) this.free.push(new Uint8Array(this.buf.length));
  }

  /** Window offset for `n` bytes at absolute `pos` (flushing first when they do not continue it). */
  private async slot(pos: number, n: number): Promise<number> {
    if (this.start < 0 || pos !== this.start + this.len || this.len + n > this.buf.length) {
      await this.rotate();
      this.start = pos;
    }
    const at = this.len;
    const padded = Math.ceil(n / this.blockSize) * this.blockSize;
    // The end of a partial last block is written as zeros (windows are reused, not cleared).
    if (padded > n) this.buf.fill(0, at + n, at + padded);
    this.len += padded;
    return at;
  }

  async bytes(pos: number, data: Uint8Array): Promise<void> {
    for (let o = 0; o < data.length; o += this.buf.length) {
      const piece = data.subarray(o, Math.min(data.length, o + this.buf.length));
      const at = await this.slot(pos + o, piece.length);
      this.buf.set(piece, at);
    }
  }

  /** Queue `n` bytes of `content` from offset `from`, to land at absolute `pos` (block aligned); `what` names it in errors. */
  async content(pos: number, content: FileContent, from: number, n: number, what: () => string): Promise<void> {
    const step = this.buf.length;
    for (let o = 0; o < n; o += step) {
      const k = Math.min(step, n - o);
      const at = await this.slot(pos + o, k);
      this.reads.push({ content, from: from + o, at, n: k, what });
    }
  }

  /** Complete every queued read and write. */
  async flush(): Promise<void> {
    await this.rotate();
    while (this.inFlight.length) this.free.push(await this.inFlight.shift()!);
  }

  /** Fill the current window from its reads, start writing it, and continue in the spare one. */
  private async rotate(): Promise<void> {
    if (this.len === 0) { this.start = -1; return; }
    // Contents with a synchronous read (host files) are read right here: from the page cache
    // that beats a thread-pool round trip per open, read and close. The rest run concurrently.
    const reads: PendingRead[] = [];
    for (const r of this.reads) {
      if (!r.content.readSync) { reads.push(r); continue; }
      let done = 0;
      while (done < r.n) {
        const got = r.content.readSync(this.buf.subarray(r.at + done, r.at + r.n), r.from + done);
        if (got <= 0) break;
        done += got;
      }
      if (done !== r.n) shortRead(r, done);
    }
    let next = 0;
    const worker = async () => {
      while (next < reads.length) {
        const r = reads[next++]!;
        let done = 0;
        while (done < r.n) {
          const got = await r.content.read(this.buf.subarray(r.at + done, r.at + r.n), r.from + done);
          if (got <= 0) break;
          done += got;
        }
        if (done !== r.n) shortRead(r, done);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.concurrency, reads.length) }, worker));
    const full = this.buf, len = this.len, start = this.start;
    const writing = this.target.write(full.subarray(0, len), start).then(() => full);
    writing.catch(() => { /* surfaced when awaited below or by flush */ });
    this.inFlight.push(writing);
    this.written += len;
    if (this.free.length === 0) this.free.push(await this.inFlight.shift()!);
    this.buf = this.free.pop()!;
    this.reads = [];
    this.start = -1;
    this.len = 0;
  }
}
