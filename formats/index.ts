/**
 * One interface over every container format: `openImage` gives a
 * {@link DiskImage} (a ByteSource: virtual size, positioned reads where holes
 * read as zeros, allocation map), `writeImage` serialises any ByteSource into
 * a format through an atomic temp-file-and-rename, `detectFormat` looks at
 * content first (magic numbers) and the file name second.
 */
import { basename } from 'node:path';
import { realpath } from 'node:fs/promises';
import type { ByteSource, Range } from '../src/disk/target.js';
import { atomicOutput } from '../src/util/atomic.js';
import { dataRuns, type BufferPool, type DataRun, type RunSource } from './io.js';
import { FileSource, type FileWindow } from '../src/disk/file.js';
import { ImageFormatError, ImageOptionError } from './errors.js';
import { RawSource, writeRaw } from './raw.js';
import { QCOW_MAGIC, SPARSE_MAGIC } from './magic.js';
import type { BackingOpener } from './qcow2.js';
import type { CompressedKind } from './compressed.js';
import type { ClusterCodec } from './codec.js';
// The readers and writers of the other formats are imported where they are used: a conversion
// loads only its two formats (the CLI's start-up is part of every conversion's time).

export { ImageFormatError, BackingChainError, ImageOptionError } from './errors.js';

export const FORMATS = ['raw', 'qcow2', 'vhd', 'vmdk', 'ova', 'tar.gz', 'tar.xz', 'raw.xz', 'raw.gz', 'raw.zst', 'zip'] as const;
export type FormatName = (typeof FORMATS)[number];
/** Formats `writeImage` produces (zip is input only). */
export const WRITABLE: readonly FormatName[] = FORMATS.filter((f) => f !== 'zip');

/** An opened disk image of any format. */
export interface DiskImage extends ByteSource {
  readonly format: FormatName;
  readonly path: string;
  /** Format-specific facts for `info` (backing file, cluster size, subformat, snapshots…). */
  readonly details: ImageDetails;
}

export interface ImageDetails {
  backingFile: string | null;
  backingFormat?: string | null;
  subformat?: string | null;
  clusterSize?: number;
  compression?: string;
  snapshots?: { id: string; name: string; dateSec: number; vmStateSize: number; virtualSize: number | null }[];
  /** The member or entry read inside a container (tar, zip, ova). */
  member?: string;
}

const ALIASES: Record<string, FormatName> = {
  raw: 'raw', img: 'raw', qcow2: 'qcow2', vhd: 'vhd', vpc: 'vhd', vmdk: 'vmdk', ova: 'ova',
  'tar.gz': 'tar.gz', tgz: 'tar.gz', gce: 'tar.gz', 'tar.xz': 'tar.xz', txz: 'tar.xz',
  'raw.xz': 'raw.xz', xz: 'raw.xz', 'raw.gz': 'raw.gz', gz: 'raw.gz', 'raw.zst': 'raw.zst', zst: 'raw.zst', zstd: 'raw.zst', zip: 'zip',
};

/** Parse a user-given format name (`-O`), accepting qemu's and common aliases. */
export function parseFormatName(name: string): FormatName {
  const f = ALIASES[name.toLowerCase()];
  if (!f) throw new ImageOptionError('FORMAT_UNKNOWN', `unknown image format ${JSON.stringify(name)} (known: ${FORMATS.join(', ')})`, { field: 'format' });
  return f;
}

/** The format a file name suggests, or null. */
export function formatFromName(path: string): FormatName | null {
  const n = basename(path).toLowerCase();
  const rules: [RegExp, FormatName][] = [
    [/\.(tar\.gz|tgz)$/, 'tar.gz'], [/\.(tar\.xz|txz)$/, 'tar.xz'], [/\.xz$/, 'raw.xz'], [/\.gz$/, 'raw.gz'],
    [/\.(zst|zstd)$/, 'raw.zst'], [/\.(qcow2|qcow|qcow2c)$/, 'qcow2'], [/\.(vhd|vpc)$/, 'vhd'], [/\.vmdk$/, 'vmdk'],
    [/\.ova$/, 'ova'], [/\.zip$/, 'zip'], [/\.(raw|img|bin|iso)$/, 'raw'],
  ];
  for (const [re, f] of rules) if (re.test(n)) return f;
  return null;
}

/**
 * Detect the format of an existing file: by magic number first, then (for
 * gzip/xz/zstd streams, which may hold a tarball or a bare disk) by what the
 * stream starts with, then by extension. Plain data is raw.
 */
export async function detectFormat(path: string): Promise<FormatName> {
  const file = await FileSource.open(path);
  try {
    const head = Buffer.alloc(Math.min(file.size, 1024));
    await file.readPadded(head, 0);
    const byName = formatFromName(path);
    if (head.length >= 4 && head.readUInt32BE(0) === QCOW_MAGIC) return 'qcow2';
    if (head.length >= 4 && head.readUInt32LE(0) === SPARSE_MAGIC) return 'vmdk';
    if (head.toString('latin1', 0, 21) === '# Disk DescriptorFile') return 'vmdk';
    if (head.toString('latin1', 0, 8) === 'vhdxfile') {
      throw new ImageFormatError('VHDX_UNSUPPORTED', 'VHDX images are not supported (convert with qemu-img first)', { file: path, offset: 0 });
    }
    if (head.toString('latin1', 0, 8) === 'conectix') return 'vhd';
    if (file.size >= 512) {
      const tail = Buffer.alloc(8);
      await file.readPadded(tail, file.size - 512);
      if (tail.toString('latin1') === 'conectix') return 'vhd';
    }
    if (head.length >= 4 && head.readUInt32LE(0) === 0x04034b50) return 'zip';
    if (head.length >= 262 && head.toString('latin1', 257, 262) === 'ustar') {
      return 'ova'; // an uncompressed tar: ingot reads tars of a disk as ova-style containers
    }
    const compressed: CompressedKind | null =
      head.length >= 6 && head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])) ? 'xz'
        : head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b ? 'gz'
          : head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528 ? 'zst' : null;
    if (compressed) {
      if (byName === 'tar.gz' || byName === 'tar.xz') return byName;
      return `raw.${compressed}`;
    }
    return 'raw';
  } finally {
    await file.close();
  }
}

export interface OpenOptions {
  /** Skip detection (like qemu-img -f). */
  format?: FormatName;
}

/** A format reader seen through the common interface. */
class OpenedImage implements DiskImage {
  constructor(readonly inner: ByteSource, readonly format: FormatName, readonly path: string, readonly details: ImageDetails) {}
  get size(): number { return this.inner.size; }
  read(buf: Uint8Array, position: number): Promise<number> { return this.inner.read(buf, position); }
  allocated(): AsyncIterable<Range> { return this.inner.allocated(); }
  /** Single-pass data runs when the reader has them (raw files). */
  dataRuns(blockSize: number, pool?: BufferPool): AsyncIterable<DataRun> {
    const r = this.inner as Partial<RunSource>;
    return r.dataRuns ? r.dataRuns.call(this.inner, blockSize, pool) : dataRuns(this.inner, blockSize);
  }
  close(): Promise<void> { return this.inner.close(); }
}

function withDetails(src: ByteSource, format: FormatName, path: string, details: ImageDetails): DiskImage {
  return new OpenedImage(src, format, path, details);
}

const openBacking: BackingOpener = async (path, format, chain) => {
  const fmt = format ? parseFormatName(format) : undefined;
  return openImageChain(path, fmt, chain);
};

async function openImageChain(path: string, format: FormatName | undefined, chain: string[], window?: FileWindow): Promise<DiskImage> {
  const fmt = format ?? (await detectFormat(path));
  switch (fmt) {
    case 'raw': return withDetails(await RawSource.open(path, window), 'raw', path, { backingFile: null });
    case 'qcow2': {
      const { Qcow2Image } = await import('./qcow2.js');
      const q = await Qcow2Image.open(path, openBacking, chain, window);
      return withDetails(q, 'qcow2', path, {
        backingFile: q.backingFile, backingFormat: q.backingFormat, clusterSize: q.clusterSize,
        compression: q.codec === 'zstd' ? 'zstd' : 'zlib', snapshots: q.snapshots, subformat: `v${q.version}`,
      });
    }
    case 'vhd': {
      const { VhdImage } = await import('./vhd.js');
      const v = await VhdImage.open(path, window);
      return withDetails(v, 'vhd', path, { backingFile: null, subformat: v.subformat, ...(v.blockSize ? { clusterSize: v.blockSize } : {}) });
    }
    case 'vmdk': {
      const { VmdkImage } = await import('./vmdk.js');
      const v = await VmdkImage.open(path, window);
      return withDetails(v, 'vmdk', path, { backingFile: null, subformat: v.createType });
    }
    case 'raw.xz': case 'raw.gz': case 'raw.zst': {
      const { openCompressed } = await import('./compressed.js');
      const s = await openCompressed(path, fmt.slice(4) as CompressedKind);
      return withDetails(s, fmt, path, { backingFile: null, compression: fmt.slice(4) });
    }
    case 'tar.gz': case 'tar.xz': case 'ova': {
      const { openTarImage } = await import('./tar.js');
      const t = await openTarImage(path, fmt, (p, f, w) => openImageChain(p, f, chain, w));
      return withDetails(t.source, fmt, path, { backingFile: null, member: t.member, subformat: t.innerFormat });
    }
    case 'zip': {
      const { openZipImage } = await import('./zip.js');
      const z = await openZipImage(path, (p, f, w) => openImageChain(p, f, chain, w));
      return withDetails(z.source, 'zip', path, { backingFile: null, member: z.member, subformat: z.innerFormat });
    }
  }
}

/** Open an image of any supported format for reading. */
export async function openImage(path: string, opts: OpenOptions = {}): Promise<DiskImage> {
  return openImageChain(path, opts.format, []);
}

export interface WriteOptions {
  format: FormatName;
  /** qcow2/vmdk: store compressed (vmdk: streamOptimized). */
  compress?: boolean;
  /** qcow2 compression_type. */
  compressionType?: ClusterCodec;
  /** qcow2 cluster size in bytes. */
  clusterSize?: number;
  /** qcow2 overlay: the backing file path as recorded in the header (relative to the output's directory or absolute). */
  backing?: string;
  /** vhd: fixed or dynamic; vmdk: monolithicSparse or streamOptimized. */
  subformat?: string;
  /** vhd: Azure rules (fixed, size a whole number of MiB). */
  azure?: boolean;
  /** Seed for UUIDs/CIDs (deterministic output). */
  seed?: string;
  /** ova: the appliance name in the OVF descriptor. */
  name?: string;
  /** raw.xz: segments compressed in parallel (≈50 MB each, default 2); tar.xz/zstd: encoder threads. */
  threads?: number;
  /** Time stamps the container records (vhd footer, tar and ova members), in Unix seconds; default SOURCE_DATE_EPOCH, else 0. */
  epoch?: number;
}

/** Write `source` to `path` in `opts.format`, atomically (temp file beside it, renamed on success). */
export async function writeImage(source: ByteSource, path: string, opts: WriteOptions): Promise<void> {
  const fmt = opts.format;
  if (fmt === 'zip') throw new ImageOptionError('FORMAT_READ_ONLY', 'zip is an input format only', { field: 'format' });
  if (opts.epoch !== undefined && !(Number.isSafeInteger(opts.epoch) && opts.epoch >= 0)) {
    throw new ImageOptionError('EPOCH', `epoch must be a whole number of seconds since 1970, not ${String(opts.epoch)}`, { field: 'epoch' });
  }
  await atomicOutput(path, async (tmp) => {
    switch (fmt) {
      case 'raw': return writeRaw(source, tmp);
      case 'qcow2': {
        let backing: { path: string; format: string; source: ByteSource } | undefined;
        let bimg: DiskImage | undefined;
        if (opts.backing) {
          const { resolve, dirname } = await import('node:path');
          const target = resolve(dirname(path), opts.backing);
          bimg = await openImage(target).catch((e: unknown) => {
            throw new ImageOptionError('BACKING_OPEN', `cannot open backing file ${opts.backing}: ${(e as Error).message}`, { file: target }, { cause: e });
          });
          if (bimg.size > source.size) {
            await bimg.close();
            throw new ImageOptionError('BACKING_SIZE', `backing file is larger (${bimg.size}) than the image (${source.size})`, { file: target });
          }
          backing = { path: opts.backing, format: bimg.format === 'vhd' ? 'vpc' : bimg.format, source: bimg };
          if (await sameFile(target, path)) throw new ImageOptionError('BACKING_SELF', 'an image cannot be its own backing file', { file: path });
        }
        try {
          const { writeQcow2 } = await import('./qcow2.js');
          return await writeQcow2(source, tmp, { clusterSize: opts.clusterSize, compress: opts.compress, compressionType: opts.compressionType, backing });
        } finally {
          await bimg?.close();
        }
      }
      case 'vhd': return (await import('./vhd.js')).writeVhd(source, tmp, { subformat: opts.subformat === 'fixed' ? 'fixed' : 'dynamic', azure: opts.azure, seed: opts.seed, epoch: opts.epoch });
      case 'vmdk': return (await import('./vmdk.js')).writeVmdk(source, tmp, {
        subformat: opts.subformat === 'streamOptimized' || opts.compress ? 'streamOptimized' : 'monolithicSparse',
        name: basename(path), seed: opts.seed,
      });
      case 'ova': return (await import('./ova.js')).writeOva(source, tmp, { name: opts.name ?? basename(path).replace(/\.ova$/i, ''), seed: opts.seed, epoch: opts.epoch });
      case 'tar.gz': case 'tar.xz': return (await import('./tar.js')).writeTarball(source, tmp, fmt === 'tar.gz' ? 'gz' : 'xz', { threads: opts.threads, epoch: opts.epoch });
      case 'raw.xz': case 'raw.gz': case 'raw.zst': return (await import('./compressed.js')).writeCompressed(source, tmp, fmt.slice(4) as CompressedKind, { threads: opts.threads });
    }
  });
}

async function sameFile(a: string, b: string): Promise<boolean> {
  try { return (await realpath(a)) === (await realpath(b)); } catch { return false; }
}

/** Sum of the lengths of a source's allocated ranges. */
export async function allocatedBytes(source: ByteSource): Promise<number> {
  let n = 0;
  for await (const r of source.allocated()) n += r.length;
  return n;
}
