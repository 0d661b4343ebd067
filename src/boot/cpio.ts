/**
 * cpio "newc" (SVR4 portable, no CRC) archive writer, the format the kernel
 * unpacks as an initramfs (Documentation/driver-api/early-userspace/
 * buffer-format.rst): a 110-byte ASCII header "070701" + 13 eight-digit hex
 * fields, the NUL-ended name padded to 4 bytes, the data padded to 4 bytes;
 * the archive ends with the entry "TRAILER!!!".
 */
import { IngotError } from '../errors.js';

export const NEWC_MAGIC = '070701';
export const TRAILER = 'TRAILER!!!';
export const S_IFMT = 0o170000;
export const S_IFDIR = 0o040000, S_IFREG = 0o100000, S_IFLNK = 0o120000, S_IFCHR = 0o020000, S_IFBLK = 0o060000;

export interface NewcEntry {
  /** Path without a leading slash ("." for the root). */
  name: string;
  /** File type and permission bits (st_mode). */
  mode: number;
  uid?: number;
  gid?: number;
  nlink?: number;
  mtime?: number;
  rdevMajor?: number;
  rdevMinor?: number;
}

export class CpioError extends IngotError {
  constructor(message: string, name: string) {
    super('CPIO', message, { file: name });
  }
}

const hex8 = (n: number) => {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError(`cpio field out of range: ${n}`);
  return n.toString(16).padStart(8, '0');
};
const pad4 = (n: number) => (4 - (n % 4)) % 4;

/** Writes entries to `sink` in order; inode numbers are assigned sequentially (deterministic). */
export class NewcWriter {
  private ino = 0;
  private finished = false;
  constructor(private readonly sink: (chunk: Uint8Array) => void) {}

  /** Add one entry; `data` is the file's bytes or, for a symlink, its target. */
  add(e: NewcEntry, data: Uint8Array = new Uint8Array(0)): void {
    if (this.finished) throw new CpioError('archive already finished', e.name);
    if (e.name.startsWith('/') || e.name === '' || e.name.includes('\0')) throw new CpioError('bad member name', e.name);
    const type = e.mode & S_IFMT;
    if (data.length && type !== S_IFREG && type !== S_IFLNK) throw new CpioError('only files and symlinks carry data', e.name);
    this.emit(e, data, ++this.ino);
  }

  finish(): void {
    if (this.finished) return;
    this.emit({ name: TRAILER, mode: 0, nlink: 1 }, new Uint8Array(0), 0);
    this.finished = true;
  }

  private emit(e: NewcEntry, data: Uint8Array, ino: number): void {
    const name = Buffer.from(`${e.name}\0`, 'utf8');
    const header = NEWC_MAGIC + [
      ino, e.mode, e.uid ?? 0, e.gid ?? 0, e.nlink ?? ((e.mode & S_IFMT) === S_IFDIR ? 2 : 1), e.mtime ?? 0, data.length,
      0, 0, e.rdevMajor ?? 0, e.rdevMinor ?? 0, name.length, 0,
    ].map(hex8).join('');
    const head = Buffer.alloc(110 + name.length + pad4(110 + name.length));
    head.write(header, 0, 'latin1');
    name.copy(head, 110);
    this.sink(head);
    if (data.length) {
      this.sink(data);
      const p = pad4(data.length);
      if (p) this.sink(new Uint8Array(p));
    }
  }
}
