/**
 * VHD (Microsoft "Virtual Hard Disk Image Format Specification" v1.0):
 * fixed (data + footer) and dynamic (footer copy, dynamic disk header, Block
 * Allocation Table, blocks of sector bitmap + data, footer) disks.
 *
 * Virtual size: Virtual PC derives it from the CHS geometry, Hyper-V and
 * most later tools from current_size. Like qemu's vpc driver (so our
 * conversions agree with qemu-img byte for byte), the reader trusts
 * current_size for the creators known to mean it ("win ", "qem2", "d2v ",
 * "CTXS", "tap\0") and for maximal geometry, and CHS otherwise. The writer
 * records creator "qem2" — the code qemu-img itself writes for
 * current_size-exact disks (`-o force_size`), the Azure-recommended flow — so
 * every reader sees the exact size. Differencing disks are refused.
 *
 * The writer is deterministic: timestamp from SOURCE_DATE_EPOCH (0 when
 * unset), UUID derived from a seed and the disk's size.
 */
import { createHash } from 'node:crypto';
import { Struct } from '../src/binary/struct.js';
import type { ByteSource, Range } from '../src/disk/target.js';
import { ImageFormatError, ImageOptionError } from './errors.js';
import { clip, pooledDataRuns, sourceDateEpoch, withOutput } from './io.js';
import { FileSource, type FileWindow } from '../src/disk/file.js';

/** Spec "Hard Disk Footer Format". */
export const HardDiskFooter = new Struct('HardDiskFooter', 512, {
  cookie: { offset: 0, type: { ascii: 8 } },
  features: { offset: 8, type: 'u32be' },
  file_format_version: { offset: 12, type: 'u32be' },
  data_offset: { offset: 16, type: 'u64be' },
  time_stamp: { offset: 24, type: 'u32be' },
  creator_application: { offset: 28, type: { ascii: 4 } },
  creator_version: { offset: 32, type: 'u32be' },
  creator_host_os: { offset: 36, type: { ascii: 4 } },
  original_size: { offset: 40, type: 'u64be' },
  current_size: { offset: 48, type: 'u64be' },
  cylinders: { offset: 56, type: 'u16be' },
  heads: { offset: 58, type: 'u8' },
  sectors_per_track: { offset: 59, type: 'u8' },
  disk_type: { offset: 60, type: 'u32be' },
  checksum: { offset: 64, type: 'u32be' },
  unique_id: { offset: 68, type: { bytes: 16 } },
  saved_state: { offset: 84, type: 'u8' },
});

/** Spec "Dynamic Disk Header Format". */
export const DynamicDiskHeader = new Struct('DynamicDiskHeader', 1024, {
  cookie: { offset: 0, type: { ascii: 8 } },
  data_offset: { offset: 8, type: 'u64be' },
  table_offset: { offset: 16, type: 'u64be' },
  header_version: { offset: 24, type: 'u32be' },
  max_table_entries: { offset: 28, type: 'u32be' },
  block_size: { offset: 32, type: 'u32be' },
  checksum: { offset: 36, type: 'u32be' },
  parent_unique_id: { offset: 40, type: { bytes: 16 } },
  parent_time_stamp: { offset: 56, type: 'u32be' },
});

export const DISK_TYPE_FIXED = 2;
export const DISK_TYPE_DYNAMIC = 3;
export const DISK_TYPE_DIFFERENCING = 4;
const FOOTER_COOKIE = 'conectix';
const DYNAMIC_COOKIE = 'cxsparse';
const UNUSED_BAT = 0xffffffff;
/** Seconds between the Unix epoch and the VHD epoch (2000-01-01T00:00:00Z). */
const VHD_EPOCH = 946684800;
const DEFAULT_BLOCK = 2 * 1024 * 1024;
/** Page size the data of each block is aligned to in the output file. */
const PAGE = 4096;
const MAX_BAT_ENTRIES = 0x40000000 / 4; // BAT of at most 1 GiB... bounded further by the file size below
const MAX_CHS_SECTORS = 65535 * 16 * 255;
/** Creator applications whose current_size is authoritative (ascii fields decode without trailing NULs). */
const CURRENT_SIZE_CREATORS = ['win ', 'qem2', 'd2v ', 'CTXS', 'tap'];

/** One's complement of the byte sum with the checksum field counted as zero (spec, "Checksum"). */
export function vhdChecksum(b: Uint8Array, checksumOffset: number): number {
  let s = 0;
  for (let i = 0; i < b.length; i++) if (i < checksumOffset || i >= checksumOffset + 4) s += b[i]!;
  return (~s) >>> 0;
}

/** CHS geometry from the spec's appendix "CHS Calculation". */
export function vhdGeometry(size: number): { cylinders: number; heads: number; sectors: number } {
  let total = Math.floor(size / 512);
  if (total > MAX_CHS_SECTORS) total = MAX_CHS_SECTORS;
  let spt: number, heads: number, cth: number;
  if (total >= 65535 * 16 * 63) {
    spt = 255; heads = 16; cth = Math.floor(total / spt);
  } else {
    spt = 17; cth = Math.floor(total / spt);
    heads = Math.max(4, Math.floor((cth + 1023) / 1024));
    if (cth >= heads * 1024 || heads > 16) { spt = 31; heads = 16; cth = Math.floor(total / spt); }
    if (cth >= heads * 1024) { spt = 63; heads = 16; cth = Math.floor(total / spt); }
  }
  return { cylinders: Math.floor(cth / heads), heads, sectors: spt };
}

export class VhdImage implements ByteSource {
  readonly format = 'vhd';
  private constructor(
    readonly file: FileSource,
    readonly size: number,
    readonly diskType: number,
    private readonly bat: Uint32Array | null,
    readonly blockSize: number,
    private readonly bitmapBytes: number,
  ) {}

  get path(): string { return this.file.path; }
  get subformat(): string { return this.diskType === DISK_TYPE_FIXED ? 'fixed' : 'dynamic'; }

  static async open(path: string, window?: FileWindow): Promise<VhdImage> {
    const file = await FileSource.open(path, window);
    try { return await VhdImage.parse(file); } catch (e) { await file.close(); throw e; }
  }

  private static async parse(file: FileSource): Promise<VhdImage> {
    const ctx = { file: file.path };
    if (file.size < 512) throw new ImageFormatError('VHD_TRUNCATED', 'file too short for a VHD footer', { ...ctx, offset: 0 });
    // The footer is the last sector; dynamic disks also keep a copy at offset 0.
    let at = file.size - 512;
    let raw = await file.readExact(at, 512, 'VHD footer');
    if (raw.toString('latin1', 0, 8) !== FOOTER_COOKIE) {
      at = 0;
      raw = await file.readExact(0, 512, 'VHD footer copy');
      if (raw.toString('latin1', 0, 8) !== FOOTER_COOKIE) throw new ImageFormatError('VHD_BAD_COOKIE', 'no "conectix" footer', { ...ctx, offset: file.size - 512, field: 'cookie' });
    }
    const f = HardDiskFooter.decode(raw, 0, { file: file.path, base: at });
    const sum = vhdChecksum(raw, 64);
    if (sum !== f.checksum) {
      throw new ImageFormatError('VHD_FOOTER_CHECKSUM', 'footer checksum mismatch', {
        ...ctx, offset: at + 64, field: 'checksum', expected: `0x${sum.toString(16)}`, actual: `0x${f.checksum.toString(16)}`,
      });
    }
    let size = Number(f.current_size);
    const chs = f.cylinders * f.heads * f.sectors_per_track;
    const byGeometry = !CURRENT_SIZE_CREATORS.includes(f.creator_application) && chs !== MAX_CHS_SECTORS;
    if (byGeometry) size = chs * 512;
    if (f.disk_type === DISK_TYPE_FIXED) {
      if (size > file.size - 512) {
        throw new ImageFormatError('VHD_TRUNCATED', `fixed disk of ${size} bytes in a ${file.size}-byte file`, { ...ctx, offset: file.size - 512, field: 'current_size' });
      }
      return new VhdImage(file, size, DISK_TYPE_FIXED, null, 0, 0);
    }
    if (f.disk_type === DISK_TYPE_DIFFERENCING) {
      throw new ImageFormatError('VHD_DIFFERENCING', 'differencing VHDs are not supported', { ...ctx, offset: at + 60, field: 'disk_type' });
    }
    if (f.disk_type !== DISK_TYPE_DYNAMIC) {
      throw new ImageFormatError('VHD_DISK_TYPE', `unknown disk type ${f.disk_type}`, { ...ctx, offset: at + 60, field: 'disk_type' });
    }
    const dhOff = Number(f.data_offset);
    if (!Number.isSafeInteger(dhOff) || dhOff + 1024 > file.size) {
      throw new ImageFormatError('VHD_DYNAMIC_HEADER', `dynamic disk header at ${f.data_offset} lies outside the file`, { ...ctx, offset: at + 16, field: 'data_offset' });
    }
    const dhRaw = await file.readExact(dhOff, 1024, 'dynamic disk header');
    const dh = DynamicDiskHeader.decode(dhRaw, 0, { file: file.path, base: dhOff });
    if (dh.cookie !== DYNAMIC_COOKIE) throw new ImageFormatError('VHD_DYNAMIC_HEADER', 'no "cxsparse" dynamic disk header', { ...ctx, offset: dhOff, field: 'cookie' });
    const dsum = vhdChecksum(dhRaw, 36);
    if (dsum !== dh.checksum) {
      throw new ImageFormatError('VHD_HEADER_CHECKSUM', 'dynamic disk header checksum mismatch', {
        ...ctx, offset: dhOff + 36, field: 'checksum', expected: `0x${dsum.toString(16)}`, actual: `0x${dh.checksum.toString(16)}`,
      });
    }
    const bs = dh.block_size;
    if (bs < 512 || bs % 512 !== 0 || (bs & (bs - 1)) !== 0 || bs > 256 * 1024 * 1024) {
      throw new ImageFormatError('VHD_BLOCK_SIZE', `bad block size ${bs}`, { ...ctx, offset: dhOff + 32, field: 'block_size' });
    }
    const n = dh.max_table_entries;
    const tOff = Number(dh.table_offset);
    if (n > MAX_BAT_ENTRIES || !Number.isSafeInteger(tOff) || tOff + n * 4 > file.size) {
      throw new ImageFormatError('VHD_BAT', `Block Allocation Table of ${n} entries at ${dh.table_offset} lies outside the file`, { ...ctx, offset: dhOff + 28, field: 'max_table_entries' });
    }
    if (n * bs < size) {
      throw new ImageFormatError('VHD_BAT', `${n} blocks of ${bs} bytes cannot hold ${size} bytes`, { ...ctx, offset: dhOff + 28, field: 'max_table_entries' });
    }
    const batRaw = await file.readExact(tOff, n * 4, 'Block Allocation Table');
    const bat = new Uint32Array(n);
    for (let i = 0; i < n; i++) bat[i] = batRaw.readUInt32BE(i * 4);
    const bitmapBytes = Math.ceil(bs / 512 / 8 / 512) * 512;
    return new VhdImage(file, size, DISK_TYPE_DYNAMIC, bat, bs, bitmapBytes);
  }

  private blockData(block: number): number | null {
    const e = this.bat![block]!;
    if (e === UNUSED_BAT) return null;
    const start = e * 512 + this.bitmapBytes;
    if (start >= this.file.size) {
      throw new ImageFormatError('VHD_BLOCK_OUT_OF_RANGE', `block ${block} at sector ${e} lies outside the file`, { file: this.path, offset: e * 512 });
    }
    return start;
  }

  async read(buf: Uint8Array, position: number): Promise<number> {
    const n = clip(buf, position, this.size);
    if (this.diskType === DISK_TYPE_FIXED) {
      if (n > 0) await this.file.readPadded(buf.subarray(0, n), position, n);
      return n;
    }
    let done = 0;
    while (done < n) {
      const p = position + done;
      const b = Math.floor(p / this.blockSize);
      const within = p - b * this.blockSize;
      const len = Math.min(this.blockSize - within, n - done);
      const start = this.blockData(b);
      // qemu's vpc driver reads allocated blocks whole and ignores the sector bitmap; so do we.
      if (start === null) buf.fill(0, done, done + len);
      else await this.file.readPadded(buf.subarray(done, done + len), start + within, len);
      done += len;
    }
    return n;
  }

  async *allocated(): AsyncIterable<Range> {
    if (this.diskType === DISK_TYPE_FIXED) { if (this.size) yield { offset: 0, length: this.size }; return; }
    let cur: Range | null = null;
    for (let b = 0; b < this.bat!.length; b++) {
      const off = b * this.blockSize;
      if (off >= this.size) break;
      if (this.bat![b] === UNUSED_BAT) continue;
      const len = Math.min(this.blockSize, this.size - off);
      if (cur && cur.offset + cur.length === off) { cur.length += len; continue; }
      if (cur) yield cur;
      cur = { offset: off, length: len };
    }
    if (cur) yield cur;
  }

  close(): Promise<void> { return this.file.close(); }
}

export interface VhdWriteOptions {
  /** fixed (Azure, Hyper-V import) or dynamic (default). */
  subformat?: 'fixed' | 'dynamic';
  /** Azure's rule: fixed, virtual size a whole number of MiB. Forces fixed; a size that breaks the rule is an error. */
  azure?: boolean;
  /** Seed for the disk UUID (default: the disk size), so output is reproducible. */
  seed?: string;
  /** The footer's time stamp, in Unix seconds (default SOURCE_DATE_EPOCH, else 0). */
  epoch?: number;
}

function buildFooter(size: number, diskType: number, dataOffset: bigint, seed: string, epoch: number): Buffer {
  const g = vhdGeometry(size);
  const uuid = createHash('sha256').update(`ingot-vhd:${seed}:${size}:${diskType}`).digest().subarray(0, 16);
  uuid[6] = (uuid[6]! & 0x0f) | 0x40; // RFC 4122 version 4 layout, variant 1
  uuid[8] = (uuid[8]! & 0x3f) | 0x80;
  const ts = Math.max(0, epoch - VHD_EPOCH) >>> 0;
  const raw = HardDiskFooter.encode({
    cookie: FOOTER_COOKIE, features: 2, file_format_version: 0x00010000, data_offset: dataOffset,
    time_stamp: ts, creator_application: 'qem2', creator_version: 0x00010000, creator_host_os: 'Wi2k',
    original_size: BigInt(size), current_size: BigInt(size),
    cylinders: g.cylinders, heads: g.heads, sectors_per_track: g.sectors, disk_type: diskType,
    checksum: 0, unique_id: uuid, saved_state: 0,
  });
  HardDiskFooter.encode({ checksum: vhdChecksum(raw, 64) }, raw);
  return Buffer.from(raw.buffer, raw.byteOffset, raw.length);
}

/** Write `source` as a VHD at `path`. */
export async function writeVhd(source: ByteSource, path: string, opts: VhdWriteOptions = {}): Promise<void> {
  const size = source.size;
  const fixed = opts.azure || opts.subformat === 'fixed';
  if (opts.azure && size % (1024 * 1024) !== 0) {
    throw new ImageOptionError('VHD_AZURE_SIZE', `Azure needs a virtual size that is a whole number of MiB; ${size} is not (make the disk ${Math.ceil(size / 1048576)} MiB)`, { field: 'virtual size' });
  }
  if (size % 512 !== 0) throw new ImageOptionError('VHD_SIZE', `VHD virtual size must be a multiple of 512 bytes; ${size} is not`, { field: 'virtual size' });
  const seed = opts.seed ?? '';
  const epoch = opts.epoch ?? sourceDateEpoch();
  await withOutput(path, async (out) => {
    if (fixed) {
      for await (const run of pooledDataRuns(source, 64 * 1024)) if (run.data) await out.write(run.data, run.offset, run.owner);
      await out.write(buildFooter(size, DISK_TYPE_FIXED, 0xffffffffffffffffn, seed, epoch), size);
      await out.finish(size + 512);
      return;
    }
    const bs = DEFAULT_BLOCK;
    const entries = Math.ceil(size / bs);
    const batOff = 512 + 1024;
    const batBytes = Math.ceil((entries * 4) / 512) * 512;
    const bat = Buffer.alloc(batBytes, 0xff);
    const bitmapBytes = Math.ceil(bs / 512 / 8 / 512) * 512;
    const bitmap = Buffer.alloc(bitmapBytes, 0xff); // every sector of an allocated block is present (as qemu writes them)
    let next = batOff + batBytes;
    let current = -1, currentStart = 0;
    for await (const run of pooledDataRuns(source, 64 * 1024)) {
      for (let i = 0; i < run.length;) {
        const p = run.offset + i;
        const b = Math.floor(p / bs);
        if (b !== current) {
          current = b;
          // A block may start at any sector (the BAT holds its sector offset, VHD spec "Block
          // Allocation Table"): start it so its data after the sector bitmap is page-aligned, and
          // every data write covers whole pages of the output (a 512-byte shift made each 1 MiB
          // write start and end in a partial page). The gap before it stays a hole.
          next = Math.ceil((next + bitmapBytes) / PAGE) * PAGE - bitmapBytes;
          currentStart = next;
          bat.writeUInt32BE(next / 512, b * 4);
          await out.write(bitmap, next);
          next += bitmapBytes + bs;
        }
        const len = Math.min((b + 1) * bs - p, run.length - i);
        await out.write(run.data!.subarray(i, i + len), currentStart + bitmapBytes + (p - b * bs), run.owner);
        i += len;
      }
    }
    const footer = buildFooter(size, DISK_TYPE_DYNAMIC, 512n, seed, epoch);
    const dh = DynamicDiskHeader.encode({
      cookie: DYNAMIC_COOKIE, data_offset: 0xffffffffffffffffn, table_offset: BigInt(batOff),
      header_version: 0x00010000, max_table_entries: entries, block_size: bs, checksum: 0,
    });
    DynamicDiskHeader.encode({ checksum: vhdChecksum(dh, 36) }, dh);
    await out.write(footer, 0);
    await out.write(dh, 512);
    await out.write(bat, batOff);
    await out.write(footer, next);
    await out.finish(next + 512);
  }, { source });
}
