/**
 * VMDK (VMware "Virtual Disk Format 1.1"): hosted sparse extents
 * (SparseExtentHeader, grain directory, grain tables, grains), the
 * streamOptimized variant (deflate-compressed grains behind grain markers,
 * metadata markers, footer and end-of-stream marker), and descriptor files
 * with FLAT / SPARSE / ZERO extents (monolithicFlat, twoGbMaxExtent*).
 *
 * The writer produces monolithicSparse (grain tables preallocated after the
 * grain directory, as VMware lays them out) or streamOptimized (grains in
 * ascending order, each grain table written after its grains, the grain
 * directory and footer at the end). Deterministic: the CID comes from a seed.
 */
import { createHash } from 'node:crypto';
import { basename, dirname, resolve as resolvePath } from 'node:path';
import { Struct } from '../src/binary/struct.js';
import type { ByteSource, Range } from '../src/disk/target.js';
import { deflateZlib, inflateZlib } from './codec.js';
import { ImageFormatError, ImageOptionError } from './errors.js';
import { clip, dataRuns, orderedParallel, pooledDataRuns, withOutput } from './io.js';
import { FileSource, type FileWindow } from '../src/disk/file.js';
import { RawSource } from './raw.js';

import { SPARSE_MAGIC } from './magic.js';

export { SPARSE_MAGIC };

/** Spec "Header" of a hosted sparse extent (SparseExtentHeader, 512 bytes). */
export const SparseExtentHeader = new Struct('SparseExtentHeader', 512, {
  magicNumber: { offset: 0, type: 'u32le' },
  version: { offset: 4, type: 'u32le' },
  flags: { offset: 8, type: 'u32le' },
  capacity: { offset: 12, type: 'u64le' },
  grainSize: { offset: 20, type: 'u64le' },
  descriptorOffset: { offset: 28, type: 'u64le' },
  descriptorSize: { offset: 36, type: 'u64le' },
  numGTEsPerGT: { offset: 44, type: 'u32le' },
  rgdOffset: { offset: 48, type: 'u64le' },
  gdOffset: { offset: 56, type: 'u64le' },
  overHead: { offset: 64, type: 'u64le' },
  uncleanShutdown: { offset: 72, type: 'u8' },
  singleEndLineChar: { offset: 73, type: 'u8' },
  nonEndLineChar: { offset: 74, type: 'u8' },
  doubleEndLineChar1: { offset: 75, type: 'u8' },
  doubleEndLineChar2: { offset: 76, type: 'u8' },
  compressAlgorithm: { offset: 77, type: 'u16le' },
});

const FLAG_VALID_NEWLINE = 1 << 0;
const FLAG_ZERO_GRAIN = 1 << 2;
const FLAG_COMPRESSED = 1 << 16;
const FLAG_MARKERS = 1 << 17;
const COMPRESSION_DEFLATE = 1;
const GD_AT_END = 0xffffffffffffffffn;
const MARKER_EOS = 0, MARKER_GT = 1, MARKER_GD = 2, MARKER_FOOTER = 3;
const GTE_ZEROED = 1;
const SECTOR = 512;
/** qemu's vmdk limits: at most 512 GTEs per GT, grains of at most 2^21 sectors; a GD of at most 32 MiB. */
const MAX_GTES = 512;
const MAX_GRAIN_SECTORS = 0x200000;
const MAX_GD_BYTES = 32 * 1024 * 1024;
const MAX_DESCRIPTOR = 1024 * 1024;

/** One hosted sparse extent file (monolithicSparse, streamOptimized, or one piece of a split disk). */
export class VmdkSparseExtent implements ByteSource {
  private readonly gtCache = new Map<number, Buffer>();
  private readonly gtBytes: number;
  private readonly grainBytes: number;
  private lastGrain: { sector: number; data: Buffer } | null = null;

  private constructor(
    readonly file: FileSource,
    private readonly h: ReturnType<typeof SparseExtentHeader.decode>,
    private readonly gd: Uint32Array,
    readonly size: number,
    readonly descriptor: string | null,
  ) {
    this.grainBytes = Number(h.grainSize) * SECTOR;
    this.gtBytes = h.numGTEsPerGT * 4;
  }

  get compressed(): boolean { return (this.h.flags & FLAG_COMPRESSED) !== 0; }

  static async open(path: string, window?: FileWindow): Promise<VmdkSparseExtent> {
    const file = await FileSource.open(path, window);
    try { return await VmdkSparseExtent.parse(file); } catch (e) { await file.close(); throw e; }
  }

  private static async parse(file: FileSource): Promise<VmdkSparseExtent> {
    const ctx = { file: file.path };
    let h = SparseExtentHeader.decode(await file.readExact(0, 512, 'sparse extent header'), 0, { file: file.path });
    if (h.magicNumber !== SPARSE_MAGIC) throw new ImageFormatError('VMDK_BAD_MAGIC', 'not a VMDK sparse extent', { ...ctx, offset: 0, field: 'magicNumber' });
    if (h.version < 1 || h.version > 3) throw new ImageFormatError('VMDK_VERSION', `unsupported sparse extent version ${h.version}`, { ...ctx, offset: 4, field: 'version' });
    if (h.gdOffset === GD_AT_END) {
      // streamOptimized: the footer (a copy of the header with the real gdOffset) sits before the end-of-stream marker.
      const at = file.size - 1024;
      if (at < 1024) throw new ImageFormatError('VMDK_FOOTER', 'grain directory is at the end but the file has no footer', { ...ctx, offset: 56, field: 'gdOffset' });
      const marker = await file.readExact(at - 512, 16, 'footer marker');
      if (marker.readUInt32LE(8) !== 0 || marker.readUInt32LE(12) !== MARKER_FOOTER) {
        throw new ImageFormatError('VMDK_FOOTER', 'no footer marker before the end-of-stream marker', { ...ctx, offset: at - 512 });
      }
      h = SparseExtentHeader.decode(await file.readExact(at, 512, 'footer'), 0, { file: file.path, base: at });
      if (h.magicNumber !== SPARSE_MAGIC || h.gdOffset === GD_AT_END) throw new ImageFormatError('VMDK_FOOTER', 'bad footer', { ...ctx, offset: at });
    }
    const grain = Number(h.grainSize);
    if (grain < 1 || grain > MAX_GRAIN_SECTORS || (grain & (grain - 1)) !== 0) {
      throw new ImageFormatError('VMDK_GRAIN_SIZE', `invalid grain size ${h.grainSize} sectors`, { ...ctx, offset: 20, field: 'grainSize' });
    }
    if (h.numGTEsPerGT < 1 || h.numGTEsPerGT > MAX_GTES) {
      throw new ImageFormatError('VMDK_GT_SIZE', `numGTEsPerGT ${h.numGTEsPerGT} outside 1..${MAX_GTES}`, { ...ctx, offset: 44, field: 'numGTEsPerGT' });
    }
    if ((h.flags & FLAG_COMPRESSED) && h.compressAlgorithm !== COMPRESSION_DEFLATE) {
      throw new ImageFormatError('VMDK_COMPRESSION', `unknown compressAlgorithm ${h.compressAlgorithm}`, { ...ctx, offset: 77, field: 'compressAlgorithm' });
    }
    const capacity = h.capacity;
    if (capacity > BigInt(Number.MAX_SAFE_INTEGER) / 512n) throw new ImageFormatError('VMDK_CAPACITY', `capacity ${capacity} too large`, { ...ctx, offset: 12, field: 'capacity' });
    const size = Number(capacity) * SECTOR;
    const gdEntries = Math.ceil(Number(capacity) / (grain * h.numGTEsPerGT));
    if (gdEntries * 4 > MAX_GD_BYTES) throw new ImageFormatError('VMDK_GD_SIZE', `grain directory of ${gdEntries} entries too large`, { ...ctx, offset: 12, field: 'capacity' });
    const gdOff = Number(h.gdOffset) * SECTOR;
    if (gdEntries > 0 && (!Number.isSafeInteger(gdOff) || gdOff + gdEntries * 4 > file.size)) {
      throw new ImageFormatError('VMDK_GD_OUT_OF_RANGE', `grain directory at sector ${h.gdOffset} lies outside the file`, { ...ctx, offset: 56, field: 'gdOffset' });
    }
    const gdRaw = gdEntries > 0 ? await file.readExact(gdOff, gdEntries * 4, 'grain directory') : Buffer.alloc(0);
    const gd = new Uint32Array(gdEntries);
    for (let i = 0; i < gdEntries; i++) gd[i] = gdRaw.readUInt32LE(i * 4);
    let descriptor: string | null = null;
    const dOff = Number(h.descriptorOffset) * SECTOR, dLen = Number(h.descriptorSize) * SECTOR;
    if (dOff > 0 && dLen > 0 && dLen <= MAX_DESCRIPTOR && dOff + dLen <= file.size) {
      const d = await file.readExact(dOff, dLen, 'embedded descriptor');
      const nul = d.indexOf(0);
      descriptor = d.toString('latin1', 0, nul < 0 ? d.length : nul);
    }
    return new VmdkSparseExtent(file, h, gd, size, descriptor);
  }

  private async gt(index: number): Promise<Buffer | null> {
    const sector = this.gd[index]!;
    if (sector === 0) return null;
    const cached = this.gtCache.get(sector);
    if (cached) return cached;
    const off = sector * SECTOR;
    if (off + this.gtBytes > this.file.size) {
      throw new ImageFormatError('VMDK_GT_OUT_OF_RANGE', `grain table ${index} at sector ${sector} lies outside the file`, {
        file: this.file.path, offset: Number(this.h.gdOffset) * SECTOR + index * 4, field: 'grain directory entry',
      });
    }
    const t = await this.file.readExact(off, this.gtBytes, 'grain table');
    if (this.gtCache.size >= 256) this.gtCache.delete(this.gtCache.keys().next().value!);
    this.gtCache.set(sector, t);
    return t;
  }

  /** Grain table entry for grain `g`: 0 unallocated, GTE_ZEROED, or the grain's sector. */
  private async gte(g: number): Promise<number> {
    const t = await this.gt(Math.floor(g / this.h.numGTEsPerGT));
    if (!t) return 0;
    return t.readUInt32LE((g % this.h.numGTEsPerGT) * 4);
  }

  async read(buf: Uint8Array, position: number): Promise<number> {
    const n = clip(buf, position, this.size);
    const gb = this.grainBytes;
    let done = 0;
    while (done < n) {
      const p = position + done;
      const g = Math.floor(p / gb);
      const within = p - g * gb;
      const len = Math.min(gb - within, n - done);
      const e = await this.gte(g);
      const out = buf.subarray(done, done + len);
      if (e === 0 || (e === GTE_ZEROED && (this.h.flags & FLAG_ZERO_GRAIN))) out.fill(0);
      else if (this.compressed) out.set((await this.grain(g, e)).subarray(within, within + len));
      else {
        const off = e * SECTOR;
        if (off >= this.file.size) throw new ImageFormatError('VMDK_GRAIN_OUT_OF_RANGE', `grain ${g} at sector ${e} lies outside the file`, { file: this.file.path, offset: off });
        await this.file.readPadded(out, off + within, len);
      }
      done += len;
    }
    return n;
  }

  private async grain(g: number, sector: number): Promise<Buffer> {
    if (this.lastGrain?.sector === sector) return this.lastGrain.data;
    const off = sector * SECTOR;
    const ctx = { file: this.file.path, offset: off };
    if (off >= this.file.size) throw new ImageFormatError('VMDK_GRAIN_OUT_OF_RANGE', `grain ${g} at sector ${sector} lies outside the file`, ctx);
    let data: Buffer;
    if (this.h.flags & FLAG_MARKERS) {
      const m = await this.file.readExact(off, 12, 'grain marker');
      const len = m.readUInt32LE(8);
      if (len === 0 || len > 2 * this.grainBytes + 1024) throw new ImageFormatError('VMDK_GRAIN_MARKER', `grain marker of ${len} bytes`, ctx);
      data = await this.file.readExact(off + 12, len, 'compressed grain');
    } else {
      data = await this.file.readExact(off, Math.min(2 * this.grainBytes, this.file.size - off), 'compressed grain');
    }
    const out = inflateZlib(data, this.grainBytes);
    if (!out || out.length !== this.grainBytes) throw new ImageFormatError('VMDK_BAD_GRAIN', `compressed grain ${g} does not inflate to ${this.grainBytes} bytes`, ctx);
    this.lastGrain = { sector, data: out };
    return out;
  }

  async *allocated(): AsyncIterable<Range> {
    const gb = this.grainBytes;
    let cur: Range | null = null;
    for (let i = 0; i < this.gd.length; i++) {
      const t = await this.gt(i);
      if (!t) continue;
      for (let j = 0; j < this.h.numGTEsPerGT; j++) {
        const e = t.readUInt32LE(j * 4);
        if (e === 0 || (e === GTE_ZEROED && (this.h.flags & FLAG_ZERO_GRAIN))) continue;
        const off = (i * this.h.numGTEsPerGT + j) * gb;
        if (off >= this.size) break;
        const len = Math.min(gb, this.size - off);
        if (cur && cur.offset + cur.length === off) { cur.length += len; continue; }
        if (cur) yield cur;
        cur = { offset: off, length: len };
      }
    }
    if (cur) yield cur;
  }

  close(): Promise<void> { return this.file.close(); }
}

/** A descriptor's extent line (spec "Extent Descriptions"). */
export interface ExtentLine { access: string; sectors: number; type: string; file: string | null; offset: number }

export interface VmdkDescriptor { createType: string | null; parentCID: string | null; extents: ExtentLine[] }

export function parseDescriptor(text: string, path: string): VmdkDescriptor {
  const d: VmdkDescriptor = { createType: null, parentCID: null, extents: [] };
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const kv = /^([A-Za-z0-9_.]+)\s*=\s*"?([^"]*)"?$/.exec(line);
    if (kv) {
      if (kv[1] === 'createType') d.createType = kv[2]!;
      if (kv[1] === 'parentCID') d.parentCID = kv[2]!;
      return;
    }
    const ex = /^(RW|RDONLY|NOACCESS)\s+(\d+)\s+(\w+)(?:\s+"([^"]*)"(?:\s+(\d+))?)?/.exec(line);
    if (ex) {
      d.extents.push({ access: ex[1]!, sectors: Number(ex[2]), type: ex[3]!.toUpperCase(), file: ex[4] ?? null, offset: Number(ex[5] ?? 0) });
      return;
    }
    if (!/^ddb\./.test(line)) throw new ImageFormatError('VMDK_DESCRIPTOR', `unparsable descriptor line ${JSON.stringify(line.slice(0, 80))}`, { file: path, line: i + 1 });
  });
  return d;
}

interface Piece { start: number; size: number; source: ByteSource | null }

/** A VMDK disk: one sparse extent with an embedded descriptor, or a descriptor file naming extents. */
export class VmdkImage implements ByteSource {
  readonly format = 'vmdk';
  private constructor(readonly path: string, readonly size: number, readonly createType: string | null, private readonly pieces: Piece[]) {}

  static async open(path: string, window?: FileWindow): Promise<VmdkImage> {
    const file = await FileSource.open(path, window);
    const head = await file.readExact(0, Math.min(512, file.size), 'header');
    if (head.length >= 4 && head.readUInt32LE(0) === SPARSE_MAGIC) {
      await file.close();
      const ext = await VmdkSparseExtent.open(path, window);
      try {
        const d = ext.descriptor ? parseDescriptor(ext.descriptor, path) : null;
        if (d?.parentCID && d.parentCID.toLowerCase() !== 'ffffffff') {
          throw new ImageFormatError('VMDK_DIFFERENCING', 'VMDK with a parent (delta disk) is not supported', { file: path, field: 'parentCID' });
        }
        return new VmdkImage(path, ext.size, d?.createType ?? null, [{ start: 0, size: ext.size, source: ext }]);
      } catch (e) { await ext.close(); throw e; }
    }
    // A descriptor file: text, bounded.
    if (window) { await file.close(); throw new ImageFormatError('VMDK_DESCRIPTOR', 'a VMDK descriptor file inside a container cannot name its extents', { file: file.path }); }
    if (file.size > MAX_DESCRIPTOR) { await file.close(); throw new ImageFormatError('VMDK_DESCRIPTOR', 'descriptor file too large', { file: path }); }
    const rawText = await file.readExact(0, file.size, 'descriptor');
    await file.close();
    const nul = rawText.indexOf(0); // qemu pads descriptor files with NULs
    const text = rawText.toString('latin1', 0, nul < 0 ? rawText.length : nul);
    const d = parseDescriptor(text, path);
    if (d.parentCID && d.parentCID.toLowerCase() !== 'ffffffff') {
      throw new ImageFormatError('VMDK_DIFFERENCING', 'VMDK with a parent (delta disk) is not supported', { file: path, field: 'parentCID' });
    }
    if (d.extents.length === 0) throw new ImageFormatError('VMDK_DESCRIPTOR', 'descriptor names no extents', { file: path });
    const pieces: Piece[] = [];
    let start = 0;
    try {
      for (const ex of d.extents) {
        const size = ex.sectors * SECTOR;
        let source: ByteSource | null = null;
        if (ex.type === 'FLAT' || ex.type === 'VMFS') {
          source = RawSource.fromFile(await FileSource.open(resolvePath(dirname(path), ex.file ?? '')), { offset: ex.offset * SECTOR, size });
        } else if (ex.type === 'SPARSE' || ex.type === 'VMFSSPARSE') {
          source = await VmdkSparseExtent.open(resolvePath(dirname(path), ex.file ?? ''));
        } else if (ex.type !== 'ZERO') {
          throw new ImageFormatError('VMDK_EXTENT', `unsupported extent type ${ex.type}`, { file: path });
        }
        pieces.push({ start, size, source });
        start += size;
      }
    } catch (e) {
      for (const p of pieces) await p.source?.close();
      if (e instanceof ImageFormatError) throw e;
      throw new ImageFormatError('VMDK_EXTENT', `cannot open extent: ${(e as Error).message}`, { file: path }, { cause: e });
    }
    return new VmdkImage(path, start, d.createType, pieces);
  }

  async read(buf: Uint8Array, position: number): Promise<number> {
    const n = clip(buf, position, this.size);
    for (const p of this.pieces) {
      const s = Math.max(position, p.start), e = Math.min(position + n, p.start + p.size);
      if (e <= s) continue;
      const out = buf.subarray(s - position, e - position);
      if (!p.source) { out.fill(0); continue; }
      const k = Math.max(0, Math.min(out.length, p.source.size - (s - p.start)));
      if (k > 0) await p.source.read(out.subarray(0, k), s - p.start);
      out.fill(0, k);
    }
    return n;
  }

  async *allocated(): AsyncIterable<Range> {
    for (const p of this.pieces) {
      if (!p.source) continue;
      for await (const r of p.source.allocated()) {
        const len = Math.min(r.length, p.size - r.offset);
        if (len > 0) yield { offset: p.start + r.offset, length: len };
      }
    }
  }

  async close(): Promise<void> { for (const p of this.pieces) await p.source?.close(); }
}

export interface VmdkWriteOptions {
  subformat?: 'monolithicSparse' | 'streamOptimized';
  /** File name recorded in the descriptor's extent line (the final name, not a temp name). */
  name?: string;
  /** Seed for the descriptor CID. */
  seed?: string;
  adapterType?: 'ide' | 'lsilogic' | 'buslogic' | 'legacyESX';
}

const GRAIN_SECTORS = 128; // 64 KiB grains, VMware's default
const GTES = 512;

function descriptorText(createType: string, sectors: number, name: string, seed: string, adapter: string): string {
  const cid = createHash('sha256').update(`ingot-vmdk:${seed}:${sectors}`).digest().readUInt32BE(0).toString(16).padStart(8, '0');
  const cyl = Math.min(65535, Math.floor(sectors / (16 * 63)));
  return [
    '# Disk DescriptorFile', 'version=1', `CID=${cid}`, 'parentCID=ffffffff', `createType="${createType}"`, '',
    '# Extent description', `RW ${sectors} SPARSE "${name}"`, '',
    '# The Disk Data Base', '#DDB', '',
    'ddb.virtualHWVersion = "4"', `ddb.geometry.cylinders = "${cyl}"`, 'ddb.geometry.heads = "16"',
    'ddb.geometry.sectors = "63"', `ddb.adapterType = "${adapter}"`, '',
  ].join('\n');
}

function marker(val: number, size: number, type: number): Buffer {
  const m = Buffer.alloc(SECTOR);
  m.writeBigUInt64LE(BigInt(val), 0);
  m.writeUInt32LE(size, 8);
  m.writeUInt32LE(type, 12);
  return m;
}

/** Write `source` as a VMDK at `path`. */
export async function writeVmdk(source: ByteSource, path: string, opts: VmdkWriteOptions = {}): Promise<void> {
  const stream = opts.subformat === 'streamOptimized';
  if (source.size % SECTOR !== 0) throw new ImageOptionError('VMDK_SIZE', `VMDK capacity is counted in sectors; ${source.size} is not a multiple of 512`, { field: 'virtual size' });
  const sectors = source.size / SECTOR;
  const gb = GRAIN_SECTORS * SECTOR;
  const grains = Math.ceil(sectors / GRAIN_SECTORS);
  const gdEntries = Math.ceil(grains / GTES);
  const gtSectors = (GTES * 4) / SECTOR;
  const gdSectors = Math.max(1, Math.ceil((gdEntries * 4) / SECTOR));
  const desc = Buffer.from(descriptorText(stream ? 'streamOptimized' : 'monolithicSparse', sectors, opts.name ?? basename(path), opts.seed ?? '', opts.adapterType ?? 'ide'), 'latin1');
  const descSectors = Math.max(20, Math.ceil(desc.length / SECTOR));
  const header = (gdOffset: bigint, overHead: number): Buffer => {
    const b = SparseExtentHeader.encode({
      magicNumber: SPARSE_MAGIC, version: stream ? 3 : 1,
      flags: FLAG_VALID_NEWLINE | (stream ? FLAG_COMPRESSED | FLAG_MARKERS : 0),
      capacity: BigInt(sectors), grainSize: BigInt(GRAIN_SECTORS), descriptorOffset: 1n, descriptorSize: BigInt(descSectors),
      numGTEsPerGT: GTES, rgdOffset: 0n, gdOffset, overHead: BigInt(overHead), uncleanShutdown: 0,
      singleEndLineChar: 0x0a, nonEndLineChar: 0x20, doubleEndLineChar1: 0x0d, doubleEndLineChar2: 0x0a,
      compressAlgorithm: stream ? COMPRESSION_DEFLATE : 0,
    });
    return Buffer.from(b.buffer, b.byteOffset, b.length);
  };

  await withOutput(path, async (out) => {
    await out.write(desc, SECTOR);
    if (!stream) {
      const gdSector = 1 + descSectors;
      const gtStart = gdSector + gdSectors;
      const overHead = Math.ceil((gtStart + gdEntries * gtSectors) / GRAIN_SECTORS) * GRAIN_SECTORS;
      const gd = Buffer.alloc(gdSectors * SECTOR);
      for (let i = 0; i < gdEntries; i++) gd.writeUInt32LE(gtStart + i * gtSectors, i * 4);
      let next = overHead;
      let gtIndex = -1;
      let gt = Buffer.alloc(GTES * 4);
      const flushGt = async () => { if (gtIndex >= 0) await out.write(gt, (gtStart + gtIndex * gtSectors) * SECTOR); };
      for await (const run of pooledDataRuns(source, gb)) {
        for (let i = 0; i < run.length; i += gb) {
          const g = (run.offset + i) / gb;
          const gi = Math.floor(g / GTES);
          if (gi !== gtIndex) { await flushGt(); gtIndex = gi; gt = Buffer.alloc(GTES * 4); }
          gt.writeUInt32LE(next, (g % GTES) * 4);
          const data = run.data!.subarray(i, Math.min(run.length, i + gb));
          await out.write(data, next * SECTOR, run.owner);
          next += GRAIN_SECTORS;
        }
      }
      await flushGt();
      await out.write(gd, gdSector * SECTOR);
      await out.write(header(BigInt(gdSector), overHead), 0);
      await out.finish(Math.max(next, overHead) * SECTOR);
      return;
    }

    // streamOptimized (spec "The Stream-Optimized Compressed Sparse Extent").
    const overHead = Math.ceil((1 + descSectors) / GRAIN_SECTORS) * GRAIN_SECTORS;
    await out.write(header(GD_AT_END, overHead), 0);
    const gd = Buffer.alloc(gdSectors * SECTOR);
    let next = overHead;
    let gtIndex = -1;
    let gt = Buffer.alloc(GTES * 4);
    const flushGt = async () => {
      if (gtIndex < 0) return;
      await out.write(marker(gtSectors, 0, MARKER_GT), next * SECTOR);
      await out.write(gt, (next + 1) * SECTOR);
      gd.writeUInt32LE(next + 1, gtIndex * 4);
      next += 1 + gtSectors;
    };
    async function* grainsOf(): AsyncIterable<{ g: number; data: Buffer }> {
      for await (const run of dataRuns(source, gb)) {
        for (let i = 0; i < run.length; i += gb) {
          let data = run.data!.subarray(i, Math.min(run.length, i + gb));
          if (data.length < gb) { const full = Buffer.alloc(gb); data.copy(full); data = full; }
          yield { g: (run.offset + i) / gb, data };
        }
      }
    }
    const packed = orderedParallel(grainsOf(), async (x) => ({ g: x.g, z: await deflateZlib(x.data) }), 8);
    for await (const { g, z } of packed) {
      const gi = Math.floor(g / GTES);
      if (gi !== gtIndex) { await flushGt(); gtIndex = gi; gt = Buffer.alloc(GTES * 4); }
      gt.writeUInt32LE(next, (g % GTES) * 4);
      const m = Buffer.alloc(12);
      m.writeBigUInt64LE(BigInt(g * GRAIN_SECTORS), 0);
      m.writeUInt32LE(z.length, 8);
      await out.write(m, next * SECTOR);
      await out.write(z, next * SECTOR + 12);
      const total = 12 + z.length;
      const padded = Math.ceil(total / SECTOR) * SECTOR;
      if (padded > total) await out.write(Buffer.alloc(padded - total), next * SECTOR + total);
      next += padded / SECTOR;
    }
    await flushGt();
    // Grain tables that hold no grain stay absent (GD entry 0 reads as zeros).
    await out.write(marker(gdSectors, 0, MARKER_GD), next * SECTOR);
    await out.write(gd, (next + 1) * SECTOR);
    const gdSector = next + 1;
    next += 1 + gdSectors;
    await out.write(marker(1, 0, MARKER_FOOTER), next * SECTOR);
    await out.write(header(BigInt(gdSector), overHead), (next + 1) * SECTOR);
    await out.write(marker(0, 0, MARKER_EOS), (next + 2) * SECTOR);
    await out.finish((next + 3) * SECTOR);
  }, { source });
}
