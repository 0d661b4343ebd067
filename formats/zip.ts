/**
 * Disk images delivered inside a .zip (read with yauzl, streamed). The disk
 * is the entry with a disk-image extension (the largest if several); a zip
 * without one is a typed error. A stored entry is read in place (random
 * access, any inner format). A deflated entry is decoded forward: a raw disk
 * is read straight from the stream; another inner format (qcow2, vhd, vmdk
 * need random access) is first spooled, sparse, to a temporary file.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import type yauzl from 'yauzl';
import type { ByteSource } from '../src/disk/target.js';
import { ImageFormatError } from './errors.js';
import { FileSource, type FileWindow } from '../src/disk/file.js';
import { StreamImage } from './compressed.js';
import { writeRaw } from './raw.js';
import { QCOW_MAGIC, SPARSE_MAGIC } from './magic.js';

type Inner = 'raw' | 'qcow2' | 'vhd' | 'vmdk';
const IMAGE_EXT = /\.(raw|img|bin|iso|qcow2|qcow|vhd|vpc|vmdk)$/i;
const ZIP_STORED = 0;

function innerFromHead(head: Buffer, name: string): Inner {
  if (head.length >= 4 && head.readUInt32BE(0) === QCOW_MAGIC) return 'qcow2';
  if (head.length >= 4 && head.readUInt32LE(0) === SPARSE_MAGIC) return 'vmdk';
  if (head.toString('latin1', 0, 8) === 'conectix' || /\.(vhd|vpc)$/i.test(name)) return 'vhd';
  return 'raw';
}

export async function openZipImage<T extends ByteSource>(
  path: string,
  openInner: (path: string, format: Inner, window?: FileWindow) => Promise<T>,
): Promise<{ source: ByteSource; member: string; innerFormat: string }> {
  let zip: yauzl.ZipFile;
  const { default: yz } = await import('yauzl');
  try {
    zip = await yz.openPromise(path, { lazyEntries: true, autoClose: false });
  } catch (e) {
    throw new ImageFormatError('ZIP_CORRUPT', `not a readable zip: ${(e as Error).message}`, { file: path }, { cause: e });
  }
  let keep = false;
  try {
    const entries = await new Promise<yauzl.Entry[]>((res, rej) => {
      const all: yauzl.Entry[] = [];
      zip.on('entry', (e: yauzl.Entry) => { all.push(e); if (all.length > 100_000) rej(new ImageFormatError('ZIP_TOO_MANY', 'too many zip entries', { file: path })); else zip.readEntry(); });
      zip.on('end', () => res(all));
      zip.on('error', (e: Error) => rej(new ImageFormatError('ZIP_CORRUPT', `zip directory is corrupt: ${e.message}`, { file: path }, { cause: e })));
      zip.readEntry();
    });
    const disks = entries.filter((e) => !e.fileName.endsWith('/') && IMAGE_EXT.test(e.fileName));
    if (disks.length === 0) {
      throw new ImageFormatError('ZIP_NO_IMAGE', `no disk image in the zip (entries: ${entries.slice(0, 5).map((e) => e.fileName).join(', ') || 'none'})`, { file: path });
    }
    const entry = disks.reduce((a, b) => (b.uncompressedSize > a.uncompressedSize ? b : a));
    if (entry.isEncrypted()) throw new ImageFormatError('ZIP_ENCRYPTED', `entry ${entry.fileName} is encrypted`, { file: path });
    if (entry.compressionMethod === ZIP_STORED) {
      // Local file header: 30 fixed bytes, then name and extra field (APPNOTE 4.3.7).
      const f = await FileSource.open(path);
      let dataAt: number;
      try {
        const lh = await f.readExact(entry.relativeOffsetOfLocalHeader, 30, 'zip local header');
        if (lh.readUInt32LE(0) !== 0x04034b50) throw new ImageFormatError('ZIP_CORRUPT', 'bad local header signature', { file: path, offset: entry.relativeOffsetOfLocalHeader });
        dataAt = entry.relativeOffsetOfLocalHeader + 30 + lh.readUInt16LE(26) + lh.readUInt16LE(28);
        const head = Buffer.alloc(Math.min(512, entry.uncompressedSize));
        await f.readPadded(head, dataAt);
        const window = { offset: dataAt, size: entry.uncompressedSize, label: entry.fileName };
        const fmt = innerFromHead(head, entry.fileName);
        return { source: await openInner(path, fmt, window), member: entry.fileName, innerFormat: fmt };
      } finally {
        await f.close();
      }
    }
    const factory = () => {
      const out = new PassThrough({ highWaterMark: 1 << 20 });
      zip.openReadStream(entry, (err, rs) => {
        if (err) { out.destroy(err); return; }
        rs.on('error', (e) => out.destroy(e));
        rs.pipe(out);
      });
      return out;
    };
    const stream = new StreamImage(`${path}[${entry.fileName}]`, entry.uncompressedSize, factory);
    const head = Buffer.alloc(Math.min(512, entry.uncompressedSize));
    await stream.read(head, 0);
    const fmt = innerFromHead(head, entry.fileName);
    if (fmt === 'raw') {
      keep = true;
      const closeZip = () => zip.close();
      const source: ByteSource = {
        size: stream.size,
        read: (b, p) => stream.read(b, p),
        allocated: () => stream.allocated(),
        close: async () => { await stream.close(); closeZip(); },
      };
      return { source, member: entry.fileName, innerFormat: 'raw' };
    }
    const dir = await mkdtemp(join(tmpdir(), 'ingot-zip-'));
    const spool = join(dir, 'disk');
    try {
      await writeRaw(stream, spool);
      await stream.close();
      const inner = await openInner(spool, fmt);
      const close = inner.close.bind(inner);
      inner.close = async () => { await close(); await rm(dir, { recursive: true, force: true }); };
      return { source: inner, member: entry.fileName, innerFormat: fmt };
    } catch (e) {
      await rm(dir, { recursive: true, force: true });
      throw e;
    }
  } finally {
    if (!keep) zip.close();
  }
}
