/**
 * qcow2 (version 2 and 3) reader and version-3 writer, from qemu's
 * docs/interop/qcow2.rst. Names follow that document: QcowHeader, L1/L2
 * tables, refcount table/blocks, compressed cluster descriptors, snapshot
 * table.
 *
 * Reader: follows backing chains (loops and missing files are typed errors),
 * reads deflate and zstd compressed clusters, lists internal snapshots. Every
 * table offset is checked against the file before it is read.
 *
 * Writer: one pass over the source's data in ascending order. Layout:
 * header cluster, L1 table, then data clusters with each L2 table reserved
 * just before the first cluster it maps, then the refcount table and blocks
 * at the end (every cluster's refcount is known by then). Deterministic: no
 * timestamps, placement depends only on the input.
 */
import { dirname, resolve as resolvePath } from 'node:path';
import { realpath } from 'node:fs/promises';
import { Struct } from '../src/binary/struct.js';
import type { ByteSource, Range } from '../src/disk/target.js';
import { IntervalSet } from '../src/util/intervals.js';
import { compressCluster, decompressCluster, type ClusterCodec } from './codec.js';
import { BackingChainError, ImageFormatError, ImageOptionError } from './errors.js';
import { clip, dataRuns, diffRuns, orderedParallel, pooledDataRuns, withOutput, type DataRun } from './io.js';
import { FileSource, type FileWindow } from '../src/disk/file.js';

import { QCOW_MAGIC } from './magic.js';

export { QCOW_MAGIC };

/** qcow2.rst "Header": fields up to compression_type (version 3, header_length 112). */
export const QcowHeader = new Struct('QcowHeader', 112, {
  magic: { offset: 0, type: 'u32be' },
  version: { offset: 4, type: 'u32be' },
  backing_file_offset: { offset: 8, type: 'u64be' },
  backing_file_size: { offset: 16, type: 'u32be' },
  cluster_bits: { offset: 20, type: 'u32be' },
  size: { offset: 24, type: 'u64be' },
  crypt_method: { offset: 32, type: 'u32be' },
  l1_size: { offset: 36, type: 'u32be' },
  l1_table_offset: { offset: 40, type: 'u64be' },
  refcount_table_offset: { offset: 48, type: 'u64be' },
  refcount_table_clusters: { offset: 56, type: 'u32be' },
  nb_snapshots: { offset: 60, type: 'u32be' },
  snapshots_offset: { offset: 64, type: 'u64be' },
  incompatible_features: { offset: 72, type: 'u64be' },
  compatible_features: { offset: 80, type: 'u64be' },
  autoclear_features: { offset: 88, type: 'u64be' },
  refcount_order: { offset: 96, type: 'u32be' },
  header_length: { offset: 100, type: 'u32be' },
  compression_type: { offset: 104, type: 'u8' },
});

/** qcow2.rst "Snapshot table entry" fixed part. */
export const QcowSnapshotHeader = new Struct('QcowSnapshotHeader', 40, {
  l1_table_offset: { offset: 0, type: 'u64be' },
  l1_size: { offset: 8, type: 'u32be' },
  id_str_size: { offset: 12, type: 'u16be' },
  name_size: { offset: 14, type: 'u16be' },
  date_sec: { offset: 16, type: 'u32be' },
  date_nsec: { offset: 20, type: 'u32be' },
  vm_clock_nsec: { offset: 24, type: 'u64be' },
  vm_state_size: { offset: 32, type: 'u32be' },
  extra_data_size: { offset: 36, type: 'u32be' },
});

const V2_HEADER_LENGTH = 72;
const INCOMPAT_DIRTY = 1n << 0n;
const INCOMPAT_CORRUPT = 1n << 1n;
const INCOMPAT_DATA_FILE = 1n << 2n;
const INCOMPAT_COMPRESSION = 1n << 3n;
const INCOMPAT_EXTL2 = 1n << 4n;
const EXT_END = 0x00000000;
const EXT_BACKING_FORMAT = 0xe2792aca;
const EXT_DATA_FILE = 0x44415441;
const OFLAG_COPIED = 1n << 63n;
const OFLAG_COMPRESSED = 1n << 62n;
const OFLAG_ZERO = 1n;
const OFFSET_MASK = 0x00fffffffffffe00n;
/** qemu's limits (QCOW_MAX_L1_SIZE, QCOW_MAX_REFTABLE_SIZE, QCOW_MAX_SNAPSHOTS): bound memory on hostile headers. */
const MAX_L1_BYTES = 32 * 1024 * 1024;
const MAX_REFTABLE_BYTES = 8 * 1024 * 1024;
const MAX_SNAPSHOTS = 65536;
const MAX_BACKING_NAME = 1023;
const MAX_CHAIN = 64;

export interface QcowSnapshot { id: string; name: string; dateSec: number; vmStateSize: number; virtualSize: number | null }

/** Opens a backing file; supplied by formats/index.ts (any format may back a qcow2). */
export type BackingOpener = (path: string, format: string | undefined, chain: string[]) => Promise<ByteSource & { format: string }>;

type Entry = { kind: 'unallocated' } | { kind: 'zero' } | { kind: 'data'; host: number } | { kind: 'compressed'; host: number; length: number };

export class Qcow2Image implements ByteSource {
  readonly format = 'qcow2';
  readonly clusterSize: number;
  readonly size: number;
  private readonly l2Entries: number;
  private readonly l2Cache = new Map<number, Buffer>();
  private readonly l2CacheMax: number;
  private lastCompressed: { host: number; data: Buffer } | null = null;

  private constructor(
    readonly file: FileSource,
    private readonly h: ReturnType<typeof QcowHeader.decode>,
    private readonly l1: Buffer,
    readonly codec: ClusterCodec,
    readonly backingFile: string | null,
    readonly backingFormat: string | null,
    readonly backing: (ByteSource & { format: string }) | null,
    readonly snapshots: QcowSnapshot[],
  ) {
    this.clusterSize = 2 ** h.cluster_bits;
    this.size = Number(h.size);
    this.l2Entries = this.clusterSize / 8;
    this.l2CacheMax = Math.max(4, Math.floor((16 << 20) / this.clusterSize));
  }

  get path(): string { return this.file.path; }
  get version(): number { return this.h.version; }
  get dirty(): boolean { return (this.h.incompatible_features & INCOMPAT_DIRTY) !== 0n; }

  static async open(path: string, openBacking: BackingOpener, chain: string[] = [], window?: FileWindow): Promise<Qcow2Image> {
    const file = await FileSource.open(path, window);
    try {
      return await Qcow2Image.parse(file, openBacking, chain);
    } catch (e) {
      await file.close();
      throw e;
    }
  }

  private static async parse(file: FileSource, openBacking: BackingOpener, chain: string[]): Promise<Qcow2Image> {
    const ctx = { file: file.path };
    const err = (code: string, msg: string, offset?: number | bigint, field?: string) =>
      new ImageFormatError(code, msg, { ...ctx, offset, field });
    const head = await file.readExact(0, Math.min(file.size, 512), 'qcow2 header');
    if (head.length < V2_HEADER_LENGTH) throw err('QCOW2_TRUNCATED', 'file too short for a qcow2 header', 0);
    const padded = Buffer.alloc(QcowHeader.size);
    head.copy(padded, 0, 0, Math.min(head.length, QcowHeader.size));
    const h = QcowHeader.decode(padded, 0, ctx);
    if (h.magic !== QCOW_MAGIC) throw err('QCOW2_BAD_MAGIC', 'not a qcow2 image', 0, 'magic');
    if (h.version !== 2 && h.version !== 3) throw err('QCOW2_VERSION', `unsupported qcow2 version ${h.version}`, 4, 'version');
    if (h.version === 2) {
      h.incompatible_features = 0n; h.compatible_features = 0n; h.autoclear_features = 0n;
      h.refcount_order = 4; h.header_length = V2_HEADER_LENGTH; h.compression_type = 0;
    } else if (h.header_length < 104 || h.header_length > head.length) {
      throw err('QCOW2_HEADER_LENGTH', `bad header_length ${h.header_length}`, 100, 'header_length');
    } else if (h.header_length <= 104) {
      h.compression_type = 0;
    }
    if (h.cluster_bits < 9 || h.cluster_bits > 21) throw err('QCOW2_CLUSTER_BITS', `cluster_bits ${h.cluster_bits} outside 9..21`, 20, 'cluster_bits');
    const cs = 2 ** h.cluster_bits;
    if (h.crypt_method !== 0) throw err('QCOW2_ENCRYPTED', 'encrypted qcow2 images are not supported', 32, 'crypt_method');
    if (h.refcount_order > 6) throw err('QCOW2_REFCOUNT_ORDER', `refcount_order ${h.refcount_order} exceeds 6`, 96, 'refcount_order');
    const inc = h.incompatible_features;
    if (inc & INCOMPAT_DATA_FILE) throw err('QCOW2_DATA_FILE', 'images with an external data file are not supported', 72, 'incompatible_features');
    if (inc & INCOMPAT_EXTL2) throw err('QCOW2_EXTENDED_L2', 'extended L2 entries (subclusters) are not supported', 72, 'incompatible_features');
    const known = INCOMPAT_DIRTY | INCOMPAT_CORRUPT | INCOMPAT_COMPRESSION;
    if (inc & ~known) throw err('QCOW2_INCOMPATIBLE', `unknown incompatible feature bits 0x${(inc & ~known).toString(16)}`, 72, 'incompatible_features');
    let codec: ClusterCodec = 'deflate';
    if (inc & INCOMPAT_COMPRESSION) {
      if (h.compression_type === 1) codec = 'zstd';
      else if (h.compression_type !== 0) throw err('QCOW2_COMPRESSION_TYPE', `unknown compression_type ${h.compression_type}`, 104, 'compression_type');
    } else if (h.compression_type !== 0) {
      throw err('QCOW2_COMPRESSION_TYPE', 'compression_type set without the incompatible feature bit', 104, 'compression_type');
    }
    const size = h.size;
    if (size > BigInt(Number.MAX_SAFE_INTEGER)) throw err('QCOW2_SIZE', `virtual size ${size} too large`, 24, 'size');

    // L1 table: must cover the virtual size and lie inside the file.
    const l2Entries = cs / 8;
    const need = Math.ceil(Math.ceil(Number(size) / cs) / l2Entries);
    if (h.l1_size < need) throw err('QCOW2_L1_SIZE', `L1 table of ${h.l1_size} entries cannot map ${size} bytes`, 36, 'l1_size');
    if (h.l1_size * 8 > MAX_L1_BYTES) throw err('QCOW2_L1_SIZE', `L1 table of ${h.l1_size} entries too large`, 36, 'l1_size');
    const l1Off = h.l1_table_offset;
    if (h.l1_size > 0 && (l1Off % BigInt(cs) !== 0n || l1Off + BigInt(h.l1_size * 8) > BigInt(file.size))) {
      throw err('QCOW2_L1_OUT_OF_RANGE', `L1 table at ${l1Off} (${h.l1_size} entries) lies outside the file or is unaligned`, 40, 'l1_table_offset');
    }
    const l1 = h.l1_size > 0 ? await file.readExact(Number(l1Off), h.l1_size * 8, 'L1 table') : Buffer.alloc(0);

    // Refcount table: only validated (the reader never needs refcounts).
    const rtBytes = h.refcount_table_clusters * cs;
    if (rtBytes > MAX_REFTABLE_BYTES || h.refcount_table_clusters === 0) {
      throw err('QCOW2_REFCOUNT_TABLE', `refcount table of ${h.refcount_table_clusters} clusters is out of bounds`, 56, 'refcount_table_clusters');
    }
    const rtOff = h.refcount_table_offset;
    if (rtOff % BigInt(cs) !== 0n || rtOff + BigInt(rtBytes) > BigInt(file.size)) {
      throw err('QCOW2_REFCOUNT_TABLE', `refcount table at ${rtOff} lies outside the file or is unaligned`, 48, 'refcount_table_offset');
    }

    // Header extensions (qcow2.rst "Header extensions"), within the first cluster.
    let backingFormat: string | null = null;
    const extLimit = Math.min(cs, file.size);
    let p = h.version === 3 ? h.header_length : V2_HEADER_LENGTH;
    const extArea = await file.readExact(0, extLimit, 'header extensions');
    for (let guard = 0; p + 8 <= extLimit && guard < 1024; guard++) {
      const type = extArea.readUInt32BE(p);
      const len = extArea.readUInt32BE(p + 4);
      if (type === EXT_END) break;
      if (p + 8 + len > extLimit) throw err('QCOW2_EXTENSION', `header extension 0x${type.toString(16)} runs past the first cluster`, p, 'header extension');
      if (type === EXT_BACKING_FORMAT) backingFormat = extArea.toString('latin1', p + 8, p + 8 + len);
      if (type === EXT_DATA_FILE) throw err('QCOW2_DATA_FILE', 'images with an external data file are not supported', p, 'header extension');
      p += 8 + Math.ceil(len / 8) * 8;
    }

    // Backing file name.
    let backingFile: string | null = null;
    let backing: (ByteSource & { format: string }) | null = null;
    if (h.backing_file_offset !== 0n) {
      const bo = h.backing_file_offset;
      if (h.backing_file_size > MAX_BACKING_NAME || bo + BigInt(h.backing_file_size) > BigInt(extLimit)) {
        throw err('QCOW2_BACKING_NAME', 'backing file name lies outside the first cluster or is too long', 8, 'backing_file_offset');
      }
      backingFile = extArea.toString('utf8', Number(bo), Number(bo) + h.backing_file_size);
    }

    // Snapshot table (listed only).
    const snapshots: QcowSnapshot[] = [];
    if (h.nb_snapshots > 0) {
      if (h.nb_snapshots > MAX_SNAPSHOTS) throw err('QCOW2_SNAPSHOTS', `${h.nb_snapshots} snapshots exceed the limit`, 60, 'nb_snapshots');
      let so = Number(h.snapshots_offset);
      if (so % cs !== 0 || so >= file.size) throw err('QCOW2_SNAPSHOTS', `snapshot table at ${so} lies outside the file`, 64, 'snapshots_offset');
      for (let i = 0; i < h.nb_snapshots; i++) {
        const sh = QcowSnapshotHeader.decode(await file.readExact(so, QcowSnapshotHeader.size, 'snapshot entry'), 0, { file: file.path, base: so });
        const varLen = sh.extra_data_size + sh.id_str_size + sh.name_size;
        const rest = await file.readExact(so + 40, varLen, 'snapshot entry');
        const extra = rest.subarray(0, sh.extra_data_size);
        const id = rest.toString('utf8', sh.extra_data_size, sh.extra_data_size + sh.id_str_size);
        const name = rest.toString('utf8', sh.extra_data_size + sh.id_str_size, varLen);
        const virtualSize = extra.length >= 16 ? Number(extra.readBigUInt64BE(8)) : null;
        snapshots.push({ id, name, dateSec: sh.date_sec, vmStateSize: sh.vm_state_size, virtualSize });
        so += Math.ceil((40 + varLen) / 8) * 8;
      }
    }

    if (backingFile !== null) {
      const target = resolvePath(dirname(file.path), backingFile);
      const me = await realpath(file.path).catch(() => file.path);
      const seen = [...chain, me];
      let real: string;
      try {
        real = await realpath(target);
      } catch (e) {
        throw new BackingChainError('QCOW2_BACKING_MISSING', `backing file ${JSON.stringify(backingFile)} not found`, {
          file: file.path, offset: h.backing_file_offset, field: 'backing_file',
        }, { cause: e });
      }
      if (seen.includes(real)) {
        throw new BackingChainError('QCOW2_BACKING_LOOP', `backing chain loops back to ${real}`, { file: file.path, offset: h.backing_file_offset, field: 'backing_file' });
      }
      if (seen.length >= MAX_CHAIN) {
        throw new BackingChainError('QCOW2_BACKING_DEPTH', `backing chain deeper than ${MAX_CHAIN}`, { file: file.path, offset: h.backing_file_offset });
      }
      backing = await openBacking(real, backingFormat ?? undefined, seen);
    }
    return new Qcow2Image(file, h, l1, codec, backingFile, backingFormat, backing, snapshots);
  }

  private async l2Table(l1Index: number): Promise<Buffer | null> {
    const l1e = this.l1.readBigUInt64BE(l1Index * 8);
    const off = Number(l1e & OFFSET_MASK);
    if (off === 0) return null;
    const cached = this.l2Cache.get(off);
    if (cached) return cached;
    if (off % this.clusterSize !== 0 || off + this.clusterSize > this.file.size) {
      throw new ImageFormatError('QCOW2_L2_OUT_OF_RANGE', `L2 table ${l1Index} at ${off} lies outside the file or is unaligned`, {
        file: this.path, offset: Number(this.h.l1_table_offset) + l1Index * 8, field: 'L1 entry',
      });
    }
    const t = await this.file.readExact(off, this.clusterSize, 'L2 table');
    if (this.l2Cache.size >= this.l2CacheMax) this.l2Cache.delete(this.l2Cache.keys().next().value!);
    this.l2Cache.set(off, t);
    return t;
  }

  private async entry(cluster: number): Promise<Entry> {
    const l1i = Math.floor(cluster / this.l2Entries);
    if (l1i >= this.h.l1_size) return { kind: 'unallocated' };
    const t = await this.l2Table(l1i);
    if (!t) return { kind: 'unallocated' };
    const e = t.readBigUInt64BE((cluster % this.l2Entries) * 8);
    if (e & OFLAG_COMPRESSED) {
      const x = BigInt(62 - (this.h.cluster_bits - 8));
      const host = Number(e & ((1n << x) - 1n));
      const sectors = Number((e >> x) & ((1n << BigInt(this.h.cluster_bits - 8)) - 1n)) + 1;
      const length = sectors * 512 - (host & 511);
      if (host >= this.file.size) {
        throw new ImageFormatError('QCOW2_CLUSTER_OUT_OF_RANGE', `compressed cluster ${cluster} at ${host} lies outside the file`, { file: this.path, offset: host });
      }
      return { kind: 'compressed', host, length };
    }
    if (this.h.version === 3 && (e & OFLAG_ZERO)) return { kind: 'zero' };
    const host = Number(e & OFFSET_MASK);
    if (host === 0) return { kind: 'unallocated' };
    if (host % this.clusterSize !== 0 || host >= this.file.size) {
      throw new ImageFormatError('QCOW2_CLUSTER_OUT_OF_RANGE', `data cluster ${cluster} at ${host} lies outside the file or is unaligned`, { file: this.path, offset: host });
    }
    return { kind: 'data', host };
  }

  async read(buf: Uint8Array, position: number): Promise<number> {
    const n = clip(buf, position, this.size);
    const cs = this.clusterSize;
    let done = 0;
    while (done < n) {
      const p = position + done;
      const c = Math.floor(p / cs);
      const within = p - c * cs;
      let len = Math.min(cs - within, n - done);
      const e = await this.entry(c);
      const out = buf.subarray(done, done + len);
      if (e.kind === 'data') {
        // Coalesce host-contiguous clusters into one read.
        let next = c + 1;
        while (done + len < n) {
          const e2 = await this.entry(next);
          if (e2.kind !== 'data' || e2.host !== e.host + (next - c) * cs) break;
          len += Math.min(cs, n - done - len);
          next++;
        }
        await this.file.readPadded(buf.subarray(done, done + len), e.host + within, len);
      } else if (e.kind === 'compressed') {
        const data = await this.decompressed(c, e.host, e.length);
        out.set(data.subarray(within, within + len));
      } else if (e.kind === 'unallocated' && this.backing) {
        const bn = Math.max(0, Math.min(len, this.backing.size - p));
        if (bn > 0) await this.backing.read(out.subarray(0, bn), p);
        out.fill(0, bn);
      } else {
        out.fill(0);
      }
      done += len;
    }
    return n;
  }

  private async decompressed(cluster: number, host: number, length: number): Promise<Buffer> {
    if (this.lastCompressed?.host === host) return this.lastCompressed.data;
    const avail = Math.min(length, this.file.size - host);
    const raw = await this.file.readExact(host, avail, 'compressed cluster');
    const out = Buffer.allocUnsafe(this.clusterSize);
    if (!decompressCluster(this.codec, raw, out)) {
      throw new ImageFormatError('QCOW2_BAD_COMPRESSED', `compressed cluster ${cluster} does not decompress (${this.codec})`, { file: this.path, offset: host });
    }
    this.lastCompressed = { host, data: out };
    return out;
  }

  /** Own allocated ranges (data and compressed clusters), not including the backing chain. */
  async *ownAllocated(): AsyncIterable<Range> {
    const cs = this.clusterSize;
    let cur: Range | null = null;
    for (let l1i = 0; l1i < this.h.l1_size; l1i++) {
      const t = await this.l2Table(l1i);
      if (!t) continue;
      for (let j = 0; j < this.l2Entries; j++) {
        const c = l1i * this.l2Entries + j;
        if (c * cs >= this.size) break;
        const e = t.readBigUInt64BE(j * 8);
        const isData = (e & OFLAG_COMPRESSED) !== 0n || ((e & OFFSET_MASK) !== 0n && !(this.h.version === 3 && (e & OFLAG_ZERO)));
        if (!isData) continue;
        const off = c * cs;
        const len = Math.min(cs, this.size - off);
        if (cur && cur.offset + cur.length === off) { cur.length += len; continue; }
        if (cur) yield cur;
        cur = { offset: off, length: len };
      }
    }
    if (cur) yield cur;
  }

  async *allocated(): AsyncIterable<Range> {
    if (!this.backing) { yield* this.ownAllocated(); return; }
    const set = new IntervalSet();
    for await (const r of this.ownAllocated()) set.add(r.offset, r.length);
    for await (const r of this.backing.allocated()) {
      const e = Math.min(r.offset + r.length, this.size);
      if (e > r.offset) set.add(r.offset, e - r.offset);
    }
    yield* set.ranges();
  }

  async close(): Promise<void> {
    await this.file.close();
    if (this.backing) await this.backing.close();
  }
}

export interface Qcow2WriteOptions {
  /** Cluster size in bytes, a power of two from 512 to 2 MiB (default 64 KiB). */
  clusterSize?: number;
  /** Store clusters compressed (each only when it shrinks). */
  compress?: boolean;
  /** qcow2 compression_type: deflate (zlib, type 0, default) or zstd (type 1). */
  compressionType?: ClusterCodec;
  /**
   * Write an overlay: `path` is recorded in the header as given, `source` is
   * the opened backing image. Only clusters that differ from it are stored.
   */
  backing?: { path: string; format: string; source: ByteSource };
}

/** Write `source` as a qcow2 v3 image at `path`. */
export async function writeQcow2(source: ByteSource, path: string, opts: Qcow2WriteOptions = {}): Promise<void> {
  const cs = opts.clusterSize ?? 65536;
  if (!Number.isInteger(cs) || cs < 512 || cs > 2 * 1024 * 1024 || (cs & (cs - 1)) !== 0) {
    throw new ImageOptionError('QCOW2_CLUSTER_SIZE', `cluster size ${cs} must be a power of two from 512 to 2097152`, { field: 'cluster-size' });
  }
  const bits = Math.log2(cs);
  const codec = opts.compressionType ?? 'deflate';
  const size = source.size;
  const l2Entries = cs / 8;
  const l1Size = Math.ceil(Math.ceil(size / cs) / l2Entries);
  const l1Clusters = Math.max(1, Math.ceil((l1Size * 8) / cs));
  const l1Off = cs;
  const l1 = Buffer.alloc(l1Clusters * cs);

  const refcounts = new RefcountMap();
  let free = cs + l1Clusters * cs; // next free byte
  refcounts.addRange(0, free, cs);

  const allocCluster = (): number => {
    const at = Math.ceil(free / cs) * cs;
    free = at + cs;
    refcounts.add(at / cs);
    return at;
  };

  await withOutput(path, async (out) => {
    // The L2 table being filled; written out once the stream passes its range.
    const cur: { l2: { index: number; host: number; table: Buffer } | null } = { l2: null };
    const flushL2 = async () => {
      const l2 = cur.l2;
      if (!l2) return;
      await out.write(l2.table, l2.host);
      l1.writeBigUInt64BE(BigInt(l2.host) | OFLAG_COPIED, l2.index * 8);
      cur.l2 = null;
    };
    /** Make sure the L2 table for `cluster` is allocated (before the cluster's data, so tables precede their data). */
    const l2For = async (cluster: number) => {
      const index = Math.floor(cluster / l2Entries);
      if (!cur.l2 || cur.l2.index !== index) {
        await flushL2();
        cur.l2 = { index, host: allocCluster(), table: Buffer.alloc(cs) };
      }
      return cur.l2;
    };
    const setEntry = async (cluster: number, value: bigint) => {
      (await l2For(cluster)).table.writeBigUInt64BE(value, (cluster % l2Entries) * 8);
    };

    const setCurrent = (cluster: number, value: bigint) => {
      cur.l2!.table.writeBigUInt64BE(value, (cluster % l2Entries) * 8);
    };
    const needL2 = (cluster: number) => !cur.l2 || cur.l2.index !== Math.floor(cluster / l2Entries);

    if (!opts.compress) {
      // Uncompressed: whole runs at a time; consecutive clusters get consecutive host clusters, so the
      // output file grows by large sequential writes straight from the read buffers.
      const runs = opts.backing ? diffRuns(source, opts.backing.source, cs) : pooledDataRuns(source, cs);
      for await (const run of runs) {
        for (let i = 0; i < run.length;) {
          const cluster = (run.offset + i) / cs;
          if (needL2(cluster)) await l2For(cluster);
          if (!run.data) { setCurrent(cluster, OFLAG_ZERO); i += cs; continue; }
          // The run's clusters up to the end of this L2 table's range get consecutive host clusters:
          // one write per span instead of one per cluster (fewer pieces to gather and hand over).
          const n = Math.min(Math.ceil((run.length - i) / cs), (Math.floor(cluster / l2Entries) + 1) * l2Entries - cluster);
          const host = Math.ceil(free / cs) * cs;
          free = host + n * cs;
          refcounts.addRange(host, free, cs);
          const piece = run.data.subarray(i, Math.min(run.length, i + n * cs));
          await out.write(piece.length === n * cs ? piece : padTo(piece, n * cs), host, run.owner);
          for (let j = 0; j < n; j++) setCurrent(cluster + j, BigInt(host + j * cs) | OFLAG_COPIED);
          i += n * cs;
        }
      }
    } else {
      const runs = opts.backing ? diffRuns(source, opts.backing.source, cs) : dataRuns(source, cs);
      const prepared = orderedParallel(clustersOf(runs, cs), async (it) => ({ ...it, packed: it.data ? await compressCluster(codec, it.data) : null }), 8);
      for await (const it of prepared) {
        if (!it.data || !it.packed) { await setEntry(it.cluster, OFLAG_ZERO); continue; }
        if (it.packed.length < cs) {
          // qcow2.rst "Compressed Clusters Descriptor": byte offset + count of extra 512-byte sectors.
          await l2For(it.cluster);
          const at = free;
          free += it.packed.length;
          const first = Math.floor(at / 512), last = Math.floor((at + it.packed.length - 1) / 512);
          refcounts.addRange(first * 512, (last + 1) * 512, cs);
          await out.write(it.packed, at);
          const x = BigInt(62 - (bits - 8));
          await setEntry(it.cluster, OFLAG_COMPRESSED | (BigInt(last - first) << x) | BigInt(at));
          continue;
        }
        await l2For(it.cluster);
        const host = allocCluster();
        await out.write(it.data.length === cs ? it.data : padTo(it.data, cs), host);
        await setEntry(it.cluster, BigInt(host) | OFLAG_COPIED);
      }
    }
    await flushL2();

    // Refcount structures at the end: table, then blocks; they count themselves.
    const end = Math.ceil(free / cs);
    const perBlock = (cs * 8) / 16;
    let blocks = 0, tableClusters = 0;
    for (;;) {
      const total = end + tableClusters + blocks;
      const b = Math.ceil(total / perBlock);
      const t = Math.max(1, Math.ceil((b * 8) / cs));
      if (b === blocks && t === tableClusters) break;
      blocks = b; tableClusters = t;
    }
    const tableOff = end * cs;
    const table = Buffer.alloc(tableClusters * cs);
    refcounts.addRange(tableOff, tableOff + (tableClusters + blocks) * cs, cs);
    for (let i = 0; i < blocks; i++) {
      const blockOff = (end + tableClusters + i) * cs;
      table.writeBigUInt64BE(BigInt(blockOff), i * 8);
      const blk = Buffer.alloc(cs);
      for (let j = 0; j < perBlock; j++) {
        const r = refcounts.get(i * perBlock + j);
        if (r > 0xffff) throw new ImageFormatError('QCOW2_REFCOUNT_OVERFLOW', `refcount of cluster ${i * perBlock + j} exceeds 16 bits`, { file: path });
        if (r) blk.writeUInt16BE(r, j * 2);
      }
      await out.write(blk, blockOff);
    }
    await out.write(table, tableOff);
    await out.write(l1, l1Off);
    await out.write(encodeHeader(opts, { bits, size, l1Size, l1Off, tableOff, tableClusters, codec }), 0);
    await out.finish((end + tableClusters + blocks) * cs);
  }, { source });
}

function encodeHeader(opts: Qcow2WriteOptions, f: { bits: number; size: number; l1Size: number; l1Off: number; tableOff: number; tableClusters: number; codec: ClusterCodec }): Buffer {
  const cs = 2 ** f.bits;
  const head = Buffer.alloc(cs);
  const zstd = opts.compress && f.codec === 'zstd';
  let p = QcowHeader.size;
  let backingOffset = 0, backingSize = 0;
  if (opts.backing) {
    const fmt = Buffer.from(opts.backing.format, 'latin1');
    head.writeUInt32BE(EXT_BACKING_FORMAT, p);
    head.writeUInt32BE(fmt.length, p + 4);
    fmt.copy(head, p + 8);
    p += 8 + Math.ceil(fmt.length / 8) * 8;
  }
  p += 8; // end-of-extensions marker (zeros)
  if (opts.backing) {
    const name = Buffer.from(opts.backing.path, 'utf8');
    if (name.length > MAX_BACKING_NAME || p + name.length > cs) {
      throw new ImageOptionError('QCOW2_BACKING_NAME', `backing file name too long for a ${cs}-byte header cluster`, { field: 'backing' });
    }
    name.copy(head, p);
    backingOffset = p; backingSize = name.length;
  }
  QcowHeader.encode({
    magic: QCOW_MAGIC, version: 3,
    backing_file_offset: BigInt(backingOffset), backing_file_size: backingSize,
    cluster_bits: f.bits, size: BigInt(f.size), crypt_method: 0,
    l1_size: f.l1Size, l1_table_offset: BigInt(f.l1Off),
    refcount_table_offset: BigInt(f.tableOff), refcount_table_clusters: f.tableClusters,
    nb_snapshots: 0, snapshots_offset: 0n,
    incompatible_features: zstd ? INCOMPAT_COMPRESSION : 0n, compatible_features: 0n, autoclear_features: 0n,
    refcount_order: 4, header_length: QcowHeader.size, compression_type: zstd ? 1 : 0,
  }, head, 0);
  return head;
}

interface ClusterItem { cluster: number; data: Buffer | null }

async function* clustersOf(runs: AsyncIterable<DataRun>, cs: number): AsyncIterable<ClusterItem> {
  for await (const r of runs) {
    for (let i = 0; i < r.length; i += cs) {
      const cluster = (r.offset + i) / cs;
      yield { cluster, data: r.data ? r.data.subarray(i, Math.min(r.length, i + cs)) : null };
    }
  }
}

function padTo(b: Buffer, n: number): Buffer {
  const o = Buffer.alloc(n);
  b.copy(o);
  return o;
}

/** Per-cluster reference counts, grown on demand (2 bytes... 4 bytes per host cluster). */
class RefcountMap {
  private counts = new Uint32Array(1024);
  add(cluster: number): void {
    if (cluster >= this.counts.length) {
      let n = this.counts.length;
      while (n <= cluster) n *= 2;
      const c = new Uint32Array(n);
      c.set(this.counts);
      this.counts = c;
    }
    this.counts[cluster]!++;
  }
  /** +1 for every cluster touched by bytes [start, end). */
  addRange(start: number, end: number, cs: number): void {
    for (let c = Math.floor(start / cs); c * cs < end; c++) this.add(c);
  }
  get(cluster: number): number { return cluster < this.counts.length ? this.counts[cluster]! : 0; }
}
