/**
 * Read-only sources over existing files: the one way ingot reads an image
 * file, a partition dump, or a member stored inside a tar/zip container.
 *
 * Every read is bounds-checked: a structure that points outside the file is
 * an ImageFormatError naming the file and offset, never a silent short read.
 * The allocation map comes from the file system (lseek SEEK_DATA/SEEK_HOLE,
 * Linux) where it can tell, so holes are neither read nor written as zeros.
 */
import { createRequire } from 'node:module';
import { readSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { ImageFormatError } from './errors.js';
import type { ByteSource, Range } from './target.js';

/** A byte window of a file: a container member read in place. `size` defaults to the rest of the file. */
export interface FileWindow { offset: number; size?: number; label?: string }

const SEEK_DATA = 3, SEEK_HOLE = 4; // Linux <unistd.h>
type SeekFn = (fd: number, offset: number, whence: number) => number;
let seekSync: SeekFn | null | undefined;
/** lseek(2) through fs-ext (a small addon built from source): Node itself has no SEEK_DATA. */
function lseek(): SeekFn | null {
  if (seekSync === undefined) {
    try {
      seekSync = (createRequire(import.meta.url)('fs-ext') as { seekSync: SeekFn }).seekSync;
    } catch {
      seekSync = null;
    }
  }
  return seekSync;
}

/**
 * Data extents of [base, base+size) of `fd` by SEEK_DATA/SEEK_HOLE, relative
 * to `base`, or null when the system cannot tell (no addon, not Linux, or the
 * file system answers EINVAL).
 */
export function dataExtents(fd: number, base: number, size: number): Range[] | null {
  const seek = lseek();
  if (!seek || process.platform !== 'linux') return null;
  const out: Range[] = [];
  let pos = base;
  const end = base + size;
  try {
    while (pos < end) {
      let d: number;
      try {
        d = seek(fd, pos, SEEK_DATA);
      } catch (e) {
        if ((e as { code?: string }).code === 'ENXIO') break; // no data after pos
        throw e;
      }
      if (d >= end) break;
      const h = Math.min(end, seek(fd, d, SEEK_HOLE));
      if (h <= d) return null;
      out.push({ offset: d - base, length: h - d });
      pos = h;
    }
  } catch {
    return null;
  }
  return out;
}

/** A read-only file (or a window of one) with positioned, bounds-checked reads. */
export class FileSource implements ByteSource {
  private extents: Range[] | null | undefined;

  private constructor(
    private readonly fh: FileHandle,
    /** The file's path; for a window, `path[label]`. */
    readonly path: string,
    readonly size: number,
    /** Where the window starts in the file (0 for a whole file). */
    readonly base: number,
  ) {}

  /**
   * Open `path`, or a window of it (a member stored inside a tar or zip, a
   * partition at a known offset): offsets and the size are then relative to
   * the window. A window reaching outside the file is an error.
   */
  static async open(path: string, window?: FileWindow): Promise<FileSource> {
    const fh = await open(path, 'r');
    try {
      const st = await fh.stat();
      if (!st.isFile() && !st.isBlockDevice()) {
        throw new ImageFormatError('IMAGE_NOT_A_FILE', 'not a regular file', { file: path });
      }
      if (!window) return new FileSource(fh, path, st.size, 0);
      const size = window.size ?? st.size - window.offset;
      if (!Number.isSafeInteger(window.offset) || window.offset < 0 || size < 0 || window.offset + size > st.size) {
        throw new ImageFormatError('IMAGE_OUT_OF_RANGE', `${window.label ?? 'window'} (${size} bytes at ${window.offset}) lies outside the ${st.size}-byte file`, {
          file: path, offset: window.offset,
        });
      }
      return new FileSource(fh, window.label ? `${path}[${window.label}]` : path, size, window.offset);
    } catch (e) {
      await fh.close();
      throw e;
    }
  }

  /** ByteSource read: clipped at the end of the source, the rest of `buf` zero-filled. */
  async read(buf: Uint8Array, position: number): Promise<number> {
    const n = Math.max(0, Math.min(buf.length, this.size - position));
    if (n > 0) await this.fill(buf, position, n);
    if (n < buf.length) buf.fill(0, n);
    return n;
  }

  /** Read exactly `len` bytes at `pos`; a range outside the source is a typed error naming `what`. */
  async readExact(pos: number, len: number, what: string, into?: Buffer): Promise<Buffer> {
    if (!Number.isSafeInteger(pos) || pos < 0 || len < 0 || pos + len > this.size) {
      throw new ImageFormatError('IMAGE_OUT_OF_RANGE', `${what} (${len} bytes) lies outside the ${this.size}-byte file`, {
        file: this.path, offset: pos,
      });
    }
    const buf = into ?? Buffer.allocUnsafe(len);
    await this.fill(buf, pos, len);
    return buf;
  }

  /** Read `len` bytes at `pos` into `buf`; bytes past the end of the source read as zeros. */
  async readPadded(buf: Uint8Array, pos: number, len = buf.length): Promise<void> {
    const n = Math.max(0, Math.min(len, this.size - pos));
    if (n > 0) await this.fill(buf, pos, n);
    if (n < len) buf.fill(0, Math.max(0, n), len);
  }

  /**
   * readPadded without a trip through the thread pool: for streaming copies,
   * whose reads come from the page cache and whose writes run in the pool
   * meanwhile (a thread hand-off and a promise per read cost more than the read).
   */
  readPaddedSync(buf: Uint8Array, pos: number, len = buf.length): void {
    const n = Math.max(0, Math.min(len, this.size - pos));
    let done = 0;
    while (done < n) {
      const got = readSync(this.fh.fd, buf, done, n - done, this.base + pos + done);
      if (got === 0) throw new ImageFormatError('IMAGE_TRUNCATED', 'file shrank while reading', { file: this.path, offset: pos + done });
      done += got;
    }
    if (n < len) buf.fill(0, Math.max(0, n), len);
  }

  private async fill(buf: Uint8Array, pos: number, len: number): Promise<void> {
    let done = 0;
    while (done < len) {
      const { bytesRead } = await this.fh.read(buf, done, len - done, this.base + pos + done);
      if (bytesRead === 0) throw new ImageFormatError('IMAGE_TRUNCATED', 'file shrank while reading', { file: this.path, offset: pos + done });
      done += bytesRead;
    }
  }

  /** The file system's data extents of `[offset, offset+length)` of this source (relative to it), or null. */
  dataExtents(offset = 0, length = this.size): Range[] | null {
    const len = Math.max(0, Math.min(length, this.size - offset));
    if (offset === 0 && length === this.size) {
      if (this.extents === undefined) this.extents = dataExtents(this.fh.fd, this.base, this.size);
      return this.extents;
    }
    return dataExtents(this.fh.fd, this.base + offset, len);
  }

  /** Data extents from the file system; everything when it cannot tell. */
  async *allocated(): AsyncIterable<Range> {
    const ext = this.dataExtents();
    if (ext) yield* ext;
    else if (this.size > 0) yield { offset: 0, length: this.size };
  }

  close(): Promise<void> { return this.fh.close(); }
}

/** Open a file (or a window of it) as a ByteSource. */
export function openFileSource(path: string, window?: FileWindow): Promise<FileSource> {
  return FileSource.open(path, window);
}

/** A ByteSource over bytes in memory (fragments, test sectors). */
export class BytesSource implements ByteSource {
  constructor(private readonly bytes: Uint8Array) {}
  get size(): number { return this.bytes.length; }
  async read(buf: Uint8Array, position: number): Promise<number> {
    const n = Math.max(0, Math.min(buf.length, this.bytes.length - position));
    buf.set(this.bytes.subarray(position, position + n));
    if (n < buf.length) buf.fill(0, Math.max(0, n));
    return n;
  }
  async *allocated(): AsyncIterable<Range> {
    if (this.bytes.length > 0) yield { offset: 0, length: this.bytes.length };
  }
  async close(): Promise<void> {}
}
