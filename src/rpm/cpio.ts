/**
 * rpm's cpio payload, streamed: SVR4 "newc" entries (magic 070701, 110-byte
 * ASCII-hex header, name and data padded to 4 bytes) and rpm's "stripped"
 * entries (magic 07070X + 8 hex digits of the header file index, padded to 4;
 * metadata and 64-bit sizes come from the header, see rpm lib/cpio.c). The
 * archive ends with a newc "TRAILER!!!" entry.
 */
import { RpmFormatError } from './errors.js';

/** Longest entry name accepted (rpm refuses names longer than PATH_MAX). */
export const CPIO_NAME_MAX = 4096;
export const NEWC_HEADER_SIZE = 110;
export const STRIPPED_HEADER_SIZE = 14;
const TRAILER = 'TRAILER!!!';

/** Pulls exact byte counts out of an async stream of chunks without copying data it merely passes on. */
export class ChunkReader {
  private chunk: Buffer = Buffer.alloc(0);
  private pos = 0;
  /** Bytes consumed so far (offset in the uncompressed payload). */
  position = 0;
  private done = false;

  constructor(private readonly src: AsyncIterator<Buffer | Uint8Array>, private readonly onError: (e: unknown) => never) {}

  private async fill(): Promise<boolean> {
    while (this.pos >= this.chunk.length) {
      if (this.done) return false;
      let r: IteratorResult<Buffer | Uint8Array>;
      try { r = await this.src.next(); } catch (e) { this.onError(e); }
      if (r.done) { this.done = true; return false; }
      const v = r.value;
      this.chunk = Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.length);
      this.pos = 0;
    }
    return true;
  }

  /** Exactly `n` bytes (small n: headers and names), or null at a clean end of stream when nothing was read. */
  async read(n: number): Promise<Buffer | null> {
    if (!(await this.fill())) return null;
    if (this.chunk.length - this.pos >= n) {
      const out = this.chunk.subarray(this.pos, this.pos + n);
      this.pos += n; this.position += n;
      return out;
    }
    const out = Buffer.alloc(n);
    let got = 0;
    while (got < n) {
      if (!(await this.fill())) {
        throw new RpmFormatError('CPIO_TRUNCATED', 'payload ends inside a cpio entry', { offset: this.position, expected: `${n - got} more bytes` });
      }
      const take = Math.min(n - got, this.chunk.length - this.pos);
      this.chunk.copy(out, got, this.pos, this.pos + take);
      got += take; this.pos += take; this.position += take;
    }
    return out;
  }

  /** Exactly `n` bytes; the stream ending first is a truncated archive. */
  async need(n: number): Promise<Buffer> {
    const b = await this.read(n);
    if (!b) throw new RpmFormatError('CPIO_TRUNCATED', 'payload ends inside a cpio entry', { offset: this.position, expected: `${n} more bytes` });
    return b;
  }

  /** Up to `max` bytes of whatever is buffered (at least one byte), or null at end of stream. */
  async some(max: number): Promise<Buffer | null> {
    if (!(await this.fill())) return null;
    const take = Math.min(max, this.chunk.length - this.pos);
    const out = this.chunk.subarray(this.pos, this.pos + take);
    this.pos += take; this.position += take;
    return out;
  }

  async skip(n: number): Promise<void> {
    while (n > 0) {
      const b = await this.some(n);
      if (!b) throw new RpmFormatError('CPIO_TRUNCATED', 'payload ends inside a cpio entry', { offset: this.position, expected: `${n} more bytes` });
      n -= b.length;
    }
  }

  /** True when the stream has no more bytes. */
  async atEnd(): Promise<boolean> { return !(await this.fill()); }

  /** Bytes available without waiting (the rest of the current chunk). */
  get buffered(): number { return this.chunk.length - this.pos; }

  /** The buffered bytes, not consumed. */
  peekBuffered(): Buffer { return this.chunk.subarray(this.pos); }

  /** `n` already-buffered bytes (caller checked `buffered`), without an await: the common case of small reads. */
  takeBuffered(n: number): Buffer {
    const out = this.chunk.subarray(this.pos, this.pos + n);
    this.pos += n; this.position += n;
    return out;
  }
}

export interface CpioHeader {
  format: 'newc' | 'stripped';
  /** Uncompressed payload offset of this entry's header. */
  offset: number;
  /** Stripped entries: index into the header's file list. */
  fileIndex: number;
  ino: number; mode: number; uid: number; gid: number; nlink: number; mtime: number;
  /** newc: the size field; stripped: -1 (the size comes from the header). */
  size: number;
  devMajor: number; devMinor: number; rdevMajor: number; rdevMinor: number;
  name: string;
  rawName: Buffer;
}

const HEX = /^[0-9a-fA-F]{8}$/;

function hex(b: Buffer, at: number, field: string, offset: number): number {
  const s = b.toString('latin1', at, at + 8);
  if (!HEX.test(s)) throw new RpmFormatError('CPIO_BAD_HEADER', 'non-hex digit in cpio header', { offset: offset + at, field, actual: JSON.stringify(s) });
  return parseInt(s, 16);
}

const pad4 = (n: number) => (4 - (n % 4)) % 4;

const STRIPPED_PADDED = STRIPPED_HEADER_SIZE + pad4(STRIPPED_HEADER_SIZE);

function badMagic(m: string, offset: number): RpmFormatError {
  return new RpmFormatError('CPIO_BAD_MAGIC', 'bad cpio magic', { offset, expected: '070701 or 07070X', actual: JSON.stringify(m) });
}

function strippedHeader(b: Buffer, offset: number): CpioHeader {
  return {
    format: 'stripped', offset, fileIndex: hex(b, 6, 'fileIndex', offset), ino: 0, mode: 0, uid: 0, gid: 0, nlink: 0, mtime: 0, size: -1,
    devMajor: 0, devMinor: 0, rdevMajor: 0, rdevMinor: 0, name: '', rawName: Buffer.alloc(0),
  };
}

/** The name size of a newc header whose 110 bytes are in `b` (checked against CPIO_NAME_MAX). */
function newcNameSize(b: Buffer, offset: number): number {
  const namesize = hex(b, 94, 'namesize', offset);
  if (namesize < 1 || namesize > CPIO_NAME_MAX) {
    throw new RpmFormatError('CPIO_BAD_HEADER', 'absurd cpio name size', { offset: offset + 94, field: 'namesize', expected: `1..${CPIO_NAME_MAX}`, actual: `${namesize}` });
  }
  return namesize;
}

/** A newc header from its 110 header bytes `b` and its NUL-terminated name; null for the trailer. */
function newcHeader(b: Buffer, nameBuf: Buffer, offset: number): CpioHeader | null {
  const namesize = nameBuf.length;
  if (nameBuf[namesize - 1] !== 0) throw new RpmFormatError('CPIO_BAD_HEADER', 'cpio name not NUL-terminated', { offset: offset + NEWC_HEADER_SIZE });
  const f = (i: number, name: string) => hex(b, 6 + i * 8, name, offset);
  const rawName = Buffer.from(nameBuf.subarray(0, namesize - 1));
  const name = rawName.toString('latin1');
  if (name === TRAILER) return null;
  return {
    format: 'newc', offset, fileIndex: -1,
    ino: f(0, 'ino'), mode: f(1, 'mode'), uid: f(2, 'uid'), gid: f(3, 'gid'), nlink: f(4, 'nlink'),
    mtime: f(5, 'mtime'), size: f(6, 'filesize'), devMajor: f(7, 'devmajor'), devMinor: f(8, 'devminor'),
    rdevMajor: f(9, 'rdevmajor'), rdevMinor: f(10, 'rdevminor'), name, rawName,
  };
}

/**
 * The next header when all of it (with name and padding) is already buffered, parsed without an await;
 * undefined when it is not (then `readCpioHeader` waits for the bytes). Most headers take this path.
 */
export function bufferedCpioHeader(r: ChunkReader): CpioHeader | null | undefined {
  const avail = r.buffered;
  const offset = r.position;
  if (avail < STRIPPED_PADDED) return undefined;
  const head = r.peekBuffered();
  const m = head.toString('latin1', 0, 6);
  if (m === '07070X') return strippedHeader(r.takeBuffered(STRIPPED_PADDED), offset);
  if (m !== '070701') throw badMagic(m, offset);
  if (avail < NEWC_HEADER_SIZE) return undefined;
  const namesize = newcNameSize(head, offset);
  const total = NEWC_HEADER_SIZE + namesize + pad4(NEWC_HEADER_SIZE + namesize);
  if (avail < total) return undefined;
  const b = r.takeBuffered(total);
  return newcHeader(b, b.subarray(NEWC_HEADER_SIZE, NEWC_HEADER_SIZE + namesize), offset);
}

/** Read the next cpio header; null after the trailer. Data of the entry follows (caller consumes it, then `skipPadding`). */
export async function readCpioHeader(r: ChunkReader): Promise<CpioHeader | null> {
  const fast = bufferedCpioHeader(r);
  if (fast !== undefined) return fast;
  const offset = r.position;
  const magic = await r.read(6);
  if (!magic) throw new RpmFormatError('CPIO_TRUNCATED', 'payload ends without a cpio trailer', { offset });
  const m = magic.toString('latin1');
  if (m === '07070X') {
    const rest = await r.need(STRIPPED_PADDED - 6);
    return strippedHeader(Buffer.concat([magic, rest]), offset);
  }
  if (m !== '070701') throw badMagic(m, offset);
  const h = Buffer.concat([magic, await r.need(NEWC_HEADER_SIZE - 6)]);
  const namesize = newcNameSize(h, offset);
  const nameBuf = await r.need(namesize);
  const header = newcHeader(h, nameBuf, offset);
  await r.skip(pad4(NEWC_HEADER_SIZE + namesize));
  return header;
}

/** Skip the padding after `size` data bytes. */
export async function skipDataPadding(r: ChunkReader, size: number): Promise<void> {
  const n = pad4(size);
  if (r.buffered >= n) r.takeBuffered(n);
  else await r.skip(n);
}
