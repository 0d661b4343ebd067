/**
 * Coalesces the writer's block writes: consecutive blocks (a directory
 * followed by the files it holds, as the allocator lays them out) fill one
 * window buffer, whose file reads run concurrently, then go to the target
 * in one positioned write. Padding in a file's last block stays zero.
 */
import type { BlockTarget } from '../../disk/target.js';
import type { FileContent } from '../../tree/tree.js';
import { Ext4Error } from './errors.js';

interface PendingRead { content: FileContent; from: number; at: number; n: number; path: string }

export class DataWriter {
  private readonly buf: Uint8Array;
  private start = -1;
  private len = 0;
  private reads: PendingRead[] = [];
  /** Bytes handed to the target. */
  written = 0;

  constructor(
    private readonly target: BlockTarget,
    private readonly blockSize: number,
    windowBytes = 8 << 20,
    private readonly concurrency = 16,
  ) {
    this.buf = new Uint8Array(Math.max(windowBytes, blockSize));
  }

  /** Window offset for `n` bytes at absolute `pos` (flushing first when they do not continue it). */
  private async slot(pos: number, n: number): Promise<number> {
    if (this.start < 0 || pos !== this.start + this.len || this.len + n > this.buf.length) {
      await this.flush();
      this.start = pos;
    }
    const at = this.len;
    this.len += Math.ceil(n / this.blockSize) * this.blockSize;
    return at;
  }

  async bytes(pos: number, data: Uint8Array): Promise<void> {
    for (let o = 0; o < data.length; o += this.buf.length) {
      const piece = data.subarray(o, Math.min(data.length, o + this.buf.length));
      const at = await this.slot(pos + o, piece.length);
      this.buf.set(piece, at);
    }
  }

  /** Queue `n` bytes of `content` from offset `from`, to land at absolute `pos` (block aligned). */
  async content(pos: number, content: FileContent, from: number, n: number, path: string): Promise<void> {
    const step = this.buf.length;
    for (let o = 0; o < n; o += step) {
      const k = Math.min(step, n - o);
      const at = await this.slot(pos + o, k);
      this.reads.push({ content, from: from + o, at, n: k, path });
    }
  }

  async flush(): Promise<void> {
    if (this.len === 0) { this.start = -1; return; }
    const reads = this.reads;
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
        if (done !== r.n) {
          throw new Ext4Error('EXT4_SHORT_READ', `file content ended early (it changed size while being written?)`, {
            file: r.path, offset: r.from + done, expected: `${r.n} bytes`, actual: `${done} bytes`,
          });
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.concurrency, reads.length) }, worker));
    await this.target.write(this.buf.subarray(0, this.len), this.start);
    this.written += this.len;
    this.buf.fill(0, 0, this.len);
    this.reads = [];
    this.start = -1;
    this.len = 0;
  }
}
