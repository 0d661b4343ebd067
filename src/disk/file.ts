/** A read-only {@link ByteSource} over an existing file (a raw disk image or partition dump). */
import { open, type FileHandle } from 'node:fs/promises';
import type { ByteSource, Range } from './target.js';

export class FileSource implements ByteSource {
  private constructor(private readonly fh: FileHandle, readonly path: string, readonly size: number) {}

  static async open(path: string): Promise<FileSource> {
    const fh = await open(path, 'r');
    try {
      const st = await fh.stat();
      return new FileSource(fh, path, st.size);
    } catch (e) {
      await fh.close();
      throw e;
    }
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

  /** A plain file cannot cheaply tell its holes here: everything counts as allocated. */
  async *allocated(): AsyncIterable<Range> {
    if (this.size > 0) yield { offset: 0, length: this.size };
  }

  async close(): Promise<void> { await this.fh.close(); }
}

/** A ByteSource over bytes in memory (fragments, test sectors). */
export class BytesSource implements ByteSource {
  constructor(private readonly bytes: Uint8Array) {}
  get size(): number { return this.bytes.length; }
  async read(buf: Uint8Array, position: number): Promise<number> {
    const n = Math.max(0, Math.min(buf.length, this.bytes.length - position));
    buf.set(this.bytes.subarray(position, position + n));
    return n;
  }
  async *allocated(): AsyncIterable<Range> {
    if (this.bytes.length > 0) yield { offset: 0, length: this.bytes.length };
  }
  async close(): Promise<void> {}
}
