/**
 * FAT12/16/32 reader for `ls`/`cat`: boot-sector validation, on-demand FAT
 * access with a bounded cache, directory parsing with VFAT long names
 * (checksum-verified, as Linux and mtools do), and cluster-chain walking
 * that is bounded by the file size or the volume's cluster count, so a
 * corrupt chain is a typed error, never a hang.
 */
import type { ByteSource } from '../../disk/target.js';
import { FatError } from './errors.js';
import { FAT16_MIN_CLUSTERS, FAT32_MIN_CLUSTERS, type FatType } from './geometry.js';
import { shortNameChecksum, shortNameToString } from './names.js';
import {
  ATTR_DIRECTORY, ATTR_LONG_NAME, ATTR_VOLUME_ID, BootSector16, BootSector32, BOOT_SIGNATURE, DELETED_ENTRY, DIR_ENTRY_SIZE, DirEntry,
  LAST_LONG_ENTRY, LongNameEntry, MAX_DIR_ENTRIES,
} from './structs.js';
import { fromDosTime } from './time.js';

export interface FatDirEntry {
  /** Long name when present and valid, else the 8.3 name. */
  name: string;
  shortName: string;
  isDirectory: boolean;
  size: number;
  firstCluster: number;
  attributes: number;
  mtime?: Date;
  ctime?: Date;
  /** Byte offset of the short entry in the volume (for error reports). */
  offset: number;
}

export interface FatVolumeInfo {
  fatType: FatType;
  bytesPerSector: number;
  clusterSize: number;
  clusterCount: number;
  /** Volume serial as `XXXX-XXXX` (how blkid prints it). */
  uuid: string;
  serial: number;
  /** Label from the root directory's volume entry (what fatlabel and mtools print). */
  label?: string;
  /** Label field of the boot sector (BS_VolLab), unless "NO NAME". */
  bootSectorLabel?: string;
}

const FAT_CACHE_BLOCK = 4096;
const FAT_CACHE_MAX_BLOCKS = 1024;
const READ_CHUNK = 1024 * 1024;

export class FatFilesystem {
  private readonly fatCache = new Map<number, Uint8Array>();
  private labelFromRoot?: string;

  private constructor(
    private readonly src: ByteSource,
    private readonly file: string | undefined,
    readonly fatType: FatType,
    readonly bytesPerSector: number,
    readonly clusterSize: number,
    readonly clusterCount: number,
    private readonly fatOffset: number,
    private readonly rootDirOffset: number,
    private readonly rootDirEntries: number,
    private readonly rootCluster: number,
    private readonly dataOffset: number,
    readonly serial: number,
    private readonly bootLabel: string | undefined,
  ) {}

  /** Parse and validate the boot sector. */
  static async open(src: ByteSource, opts: { file?: string } = {}): Promise<FatFilesystem> {
    const file = opts.file;
    const err = (msg: string, field: string, offset: number, expected?: string, actual?: string) =>
      new FatError('FAT_BAD_BOOT_SECTOR', msg, { file, offset, field, expected, actual });
    if (src.size < 512) throw err('volume smaller than one sector', 'size', 0);
    const bs = new Uint8Array(512);
    await src.read(bs, 0);
    const b16 = BootSector16.decode(bs);
    const bps = b16.bytsPerSec;
    if (![512, 1024, 2048, 4096].includes(bps)) throw err('bad bytes per sector', 'BPB_BytsPerSec', 11, '512/1024/2048/4096', String(bps));
    const spc = b16.secPerClus;
    if (spc === 0 || (spc & (spc - 1)) !== 0) throw err('bad sectors per cluster', 'BPB_SecPerClus', 13, 'a power of two', String(spc));
    if (b16.rsvdSecCnt === 0) throw err('no reserved sectors', 'BPB_RsvdSecCnt', 14, '≥ 1', '0');
    if (b16.numFats === 0) throw err('no FATs', 'BPB_NumFATs', 16, '≥ 1', '0');
    const b32 = BootSector32.decode(bs);
    const fatSectors = b16.fatSz16 || b32.fatSz32;
    if (fatSectors === 0) throw err('FAT size is zero', 'BPB_FATSz16', 22);
    const totalSectors = b16.totSec16 || b16.totSec32;
    const rootDirSectors = Math.ceil((b16.rootEntCnt * DIR_ENTRY_SIZE) / bps);
    const firstData = b16.rsvdSecCnt + b16.numFats * fatSectors + rootDirSectors;
    if (totalSectors <= firstData) throw err('no data region: total sectors end before it', 'BPB_TotSec', 19, `> ${firstData}`, String(totalSectors));
    if (totalSectors * bps > src.size) {
      throw new FatError('FAT_TRUNCATED', `filesystem claims ${totalSectors * bps} bytes, its container has ${src.size}`, { file, offset: 19, field: 'BPB_TotSec' });
    }
    const clusterCount = Math.floor((totalSectors - firstData) / spc);
    // fatgen103 §3.5 decides the type by cluster count alone; Linux, mtools and fsck.fat take
    // BPB_FATSz16 = 0 to mean FAT32 whatever the count (mkfs.fat -F 32 makes such small volumes).
    const byCount: FatType = clusterCount < FAT16_MIN_CLUSTERS ? 12 : clusterCount < FAT32_MIN_CLUSTERS ? 16 : 32;
    const fatType: FatType = b16.fatSz16 === 0 ? 32 : byCount;
    if (byCount === 32 && fatType !== 32) throw err('FAT32 cluster count with a FAT16 FAT size', 'BPB_FATSz16', 22);
    if (fatType !== 32 && b16.rootEntCnt === 0) throw err('FAT12/16 volume without root directory entries', 'BPB_RootEntCnt', 17);
    // The FAT must have an entry for every cluster.
    const fatBits = fatType === 12 ? 12 : fatType === 16 ? 16 : 32;
    if (fatSectors * bps * 8 < (clusterCount + 2) * fatBits) {
      throw err('FAT too small for the cluster count', 'BPB_FATSz', 22, `≥ ${Math.ceil(((clusterCount + 2) * fatBits) / 8 / bps)} sectors`, String(fatSectors));
    }
    // Linux uses the active FAT named by BPB_ExtFlags when mirroring is off (fatgen103 §3.3).
    const activeFat = fatType === 32 && b32.extFlags & 0x80 ? b32.extFlags & 0x0f : 0;
    if (activeFat >= b16.numFats) throw err('active FAT out of range', 'BPB_ExtFlags', 40);
    const isExt = (fatType === 32 ? b32.bootSig : b16.bootSig) === 0x29;
    const rawLabel = isExt ? Buffer.from(fatType === 32 ? b32.volLab : b16.volLab).toString('latin1').replace(/ +$/, '') : '';
    const serial = isExt ? (fatType === 32 ? b32.volId : b16.volId) : 0;
    const rootCluster = fatType === 32 ? b32.rootClus : 0;
    if (fatType === 32 && (rootCluster < 2 || rootCluster >= clusterCount + 2)) throw err('root cluster out of range', 'BPB_RootClus', 44, `2..${clusterCount + 1}`, String(rootCluster));
    const fs = new FatFilesystem(
      src, file, fatType, bps, spc * bps, clusterCount, (b16.rsvdSecCnt + activeFat * fatSectors) * bps,
      (b16.rsvdSecCnt + b16.numFats * fatSectors) * bps, b16.rootEntCnt, rootCluster, firstData * bps, serial,
      rawLabel && rawLabel !== 'NO NAME' ? rawLabel : undefined,
    );
    // FAT[0] carries the media byte; mtools and fsck.fat refuse a volume where it does not match.
    const fat0 = await fs.next(0);
    if ((fat0 & 0xff) !== b16.media) {
      throw new FatError('FAT_BAD_FAT', 'first FAT entry does not carry the media byte: the FAT is corrupt', {
        file, offset: fs.fatOffset, field: 'FAT[0]', expected: `0x${b16.media.toString(16)}`, actual: `0x${(fat0 & 0xff).toString(16)}`,
      });
    }
    if (b16.signature !== BOOT_SIGNATURE) fs.warnings.push('boot sector lacks the 0x55AA signature');
    if (byCount !== fatType) fs.warnings.push(`FAT32 by its BPB but ${clusterCount} clusters is FAT${byCount} by count`);
    return fs;
  }

  readonly warnings: string[] = [];

  async info(): Promise<FatVolumeInfo> {
    await this.readdir('/');
    const s = this.serial.toString(16).toUpperCase().padStart(8, '0');
    return {
      fatType: this.fatType, bytesPerSector: this.bytesPerSector, clusterSize: this.clusterSize, clusterCount: this.clusterCount,
      serial: this.serial, uuid: `${s.slice(0, 4)}-${s.slice(4)}`, label: this.labelFromRoot, bootSectorLabel: this.bootLabel,
    };
  }

  /** FAT entry of `cluster`. */
  private async next(cluster: number): Promise<number> {
    const bitOff = this.fatType === 12 ? cluster * 12 : cluster * this.fatType;
    const byteOff = bitOff >> 3;
    const block = Math.floor(byteOff / FAT_CACHE_BLOCK);
    const get = async (blk: number) => {
      let b = this.fatCache.get(blk);
      if (!b) {
        b = new Uint8Array(FAT_CACHE_BLOCK + 4);
        await this.src.read(b, this.fatOffset + blk * FAT_CACHE_BLOCK);
        if (this.fatCache.size >= FAT_CACHE_MAX_BLOCKS) this.fatCache.delete(this.fatCache.keys().next().value!);
        this.fatCache.set(blk, b);
      }
      return b;
    };
    const b = await get(block);
    const o = byteOff - block * FAT_CACHE_BLOCK; // the +4 slack covers entries straddling blocks
    if (this.fatType === 12) {
      const v = b[o]! | (b[o + 1]! << 8);
      return cluster & 1 ? v >> 4 : v & 0xfff;
    }
    if (this.fatType === 16) return b[o]! | (b[o + 1]! << 8);
    return (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) & 0x0fffffff;
  }

  private isEnd(v: number): boolean {
    return this.fatType === 12 ? v >= 0xff8 : this.fatType === 16 ? v >= 0xfff8 : v >= 0x0ffffff8;
  }

  private isBad(v: number): boolean {
    return this.fatType === 12 ? v === 0xff7 : this.fatType === 16 ? v === 0xfff7 : v === 0x0ffffff7;
  }

  /**
   * Clusters of a chain, at most `limit` of them. Out-of-range links, free
   * or bad clusters inside the chain, and loops are FatErrors.
   */
  private async *chain(first: number, limit: number, path: string): AsyncIterableIterator<number> {
    const seen = new Set<number>();
    let c = first;
    for (let n = 0; n < limit; n++) {
      if (c < 2 || c >= this.clusterCount + 2) {
        throw new FatError('FAT_BAD_CHAIN', `cluster ${c} is outside 2..${this.clusterCount + 1}`, { file: this.file, field: path });
      }
      if (seen.has(c)) throw new FatError('FAT_CHAIN_LOOP', `circular cluster chain at cluster ${c}`, { file: this.file, field: path });
      seen.add(c);
      yield c;
      if (n + 1 === limit) return;
      const v = await this.next(c);
      if (this.isEnd(v)) return;
      if (v === 0) throw new FatError('FAT_BAD_CHAIN', `chain reaches free cluster after ${c}`, { file: this.file, field: path });
      if (this.isBad(v)) throw new FatError('FAT_BAD_CHAIN', `chain reaches a bad cluster after ${c}`, { file: this.file, field: path });
      c = v;
    }
  }

  private clusterOffset(c: number): number { return this.dataOffset + (c - 2) * this.clusterSize; }

  /** Raw bytes of a directory (fixed root area or cluster chain), bounded by the 65,536-entry limit. */
  private async dirBytes(cluster: number, path: string): Promise<{ buf: Uint8Array; offsets: number[] }> {
    if (cluster === 0 && this.fatType !== 32) {
      const buf = new Uint8Array(this.rootDirEntries * DIR_ENTRY_SIZE);
      await this.src.read(buf, this.rootDirOffset);
      return { buf, offsets: [this.rootDirOffset] };
    }
    const start = cluster === 0 ? this.rootCluster : cluster;
    const maxClusters = Math.min(this.clusterCount, Math.ceil((MAX_DIR_ENTRIES * DIR_ENTRY_SIZE) / this.clusterSize));
    const parts: Uint8Array[] = [];
    const offsets: number[] = [];
    for await (const c of this.chain(start, maxClusters, path)) {
      const b = new Uint8Array(this.clusterSize);
      await this.src.read(b, this.clusterOffset(c));
      parts.push(b);
      offsets.push(this.clusterOffset(c));
    }
    return { buf: Buffer.concat(parts), offsets };
  }

  private async listCluster(cluster: number, path: string): Promise<FatDirEntry[]> {
    const { buf, offsets } = await this.dirBytes(cluster, path);
    const isRoot = cluster === 0;
    const perChunk = isRoot && this.fatType !== 32 ? buf.length : this.clusterSize;
    const abs = (i: number) => offsets[Math.floor(i / perChunk)]! + (i % perChunk);
    const out: FatDirEntry[] = [];
    let lfn: { count: number; sum: number; parts: string[]; expect: number } | undefined;
    for (let i = 0; i + DIR_ENTRY_SIZE <= buf.length; i += DIR_ENTRY_SIZE) {
      const first = buf[i]!;
      if (first === 0) break;
      if (first === DELETED_ENTRY) { lfn = undefined; continue; }
      const attr = buf[i + 11]!;
      if ((attr & 0x3f) === ATTR_LONG_NAME) {
        const e = LongNameEntry.decode(buf, i);
        const ord = e.ord & 0x1f;
        if (e.ord & LAST_LONG_ENTRY) lfn = { count: ord, sum: e.chksum, parts: [], expect: ord };
        if (!lfn || ord !== lfn.expect || e.chksum !== lfn.sum || ord === 0) { lfn = undefined; continue; }
        lfn.parts[ord - 1] = decodeLfnPart(e.name1, e.name2, e.name3);
        lfn.expect--;
        continue;
      }
      const d = DirEntry.decode(buf, i);
      if (attr & ATTR_VOLUME_ID) {
        if (isRoot && !(attr & ATTR_DIRECTORY)) {
          const raw = Buffer.from(d.name);
          if (raw[0] === 0x05) raw[0] = 0xe5;
          this.labelFromRoot = raw.toString('latin1').replace(/ +$/, '') || undefined;
        }
        lfn = undefined;
        continue;
      }
      const short = shortNameToString(d.name, d.ntRes);
      if (short === '' || short.startsWith('.') && short !== '.' && short !== '..') {
        // An all-blank or period-led 8.3 name is invalid (fatgen103 §6.1); Linux and mtools do not list it.
        this.warnings.push(`invalid short name ${JSON.stringify(Buffer.from(d.name).toString('latin1'))} at offset ${abs(i)} skipped`);
        lfn = undefined;
        continue;
      }
      let name = short;
      if (lfn && lfn.expect === 0 && shortNameChecksum(d.name) === lfn.sum) name = lfn.parts.join('');
      lfn = undefined;
      if (short === '.' || short === '..') continue;
      out.push({
        name, shortName: shortNameToString(d.name), isDirectory: (attr & ATTR_DIRECTORY) !== 0, size: d.fileSize,
        firstCluster: (this.fatType === 32 ? d.fstClusHi << 16 : 0) | d.fstClusLo, attributes: attr,
        mtime: fromDosTime(d.wrtDate, d.wrtTime), ctime: fromDosTime(d.crtDate, d.crtTime, d.crtTimeTenth), offset: abs(i),
      });
    }
    return out;
  }

  /** Entries of the directory at `path` ('/' = root), without '.' and '..'. */
  async readdir(path = '/'): Promise<FatDirEntry[]> {
    if (splitFatPath(path).length === 0) return this.listCluster(0, '/');
    const e = await this.stat(path);
    if (!e.isDirectory) throw new FatError('FAT_NOT_DIR', 'not a directory', { file: this.file, field: path });
    return this.listCluster(e.firstCluster, path);
  }

  /** Look a path up; names match case-insensitively against long and short names, as on FAT. */
  async stat(path: string): Promise<FatDirEntry> {
    const parts = splitFatPath(path);
    if (parts.length === 0) {
      return { name: '/', shortName: '/', isDirectory: true, size: 0, firstCluster: 0, attributes: ATTR_DIRECTORY, offset: this.rootDirOffset };
    }
    let cluster = 0;
    let found: FatDirEntry | undefined;
    let sofar = '';
    for (const p of parts) {
      sofar += `/${p}`;
      if (found && !found.isDirectory) throw new FatError('FAT_NOT_DIR', 'not a directory', { file: this.file, field: sofar });
      const entries = await this.listCluster(cluster, sofar);
      const u = p.toUpperCase();
      found = entries.find((e) => e.name === p) ?? entries.find((e) => e.name.toUpperCase() === u || e.shortName.toUpperCase() === u);
      if (!found) throw new FatError('FAT_NOT_FOUND', 'no such file or directory', { file: this.file, field: sofar });
      cluster = found.firstCluster;
      if (found.isDirectory && cluster === 0) {
        throw new FatError('FAT_BAD_CHAIN', 'directory without a first cluster', { file: this.file, field: sofar, offset: found.offset });
      }
    }
    return found!;
  }

  /** Stream a file's bytes in chunks; the chain must cover the size. */
  async *readStream(path: string | FatDirEntry): AsyncIterableIterator<Uint8Array> {
    const e = typeof path === 'string' ? await this.stat(path) : path;
    const name = typeof path === 'string' ? path : e.name;
    if (e.isDirectory) throw new FatError('FAT_IS_DIR', 'is a directory', { file: this.file, field: name });
    if (e.size === 0) return;
    const need = Math.ceil(e.size / this.clusterSize);
    if (e.firstCluster === 0) throw new FatError('FAT_BAD_CHAIN', `file of ${e.size} bytes has no clusters`, { file: this.file, field: name, offset: e.offset });
    let left = e.size;
    let run: number[] = [];
    const flush = async function* (self: FatFilesystem): AsyncIterableIterator<Uint8Array> {
      // Consecutive clusters are read with one call.
      const n = Math.min(left, run.length * self.clusterSize);
      const buf = new Uint8Array(n);
      await self.src.read(buf, self.clusterOffset(run[0]!));
      left -= n;
      run = [];
      yield buf;
    };
    let got = 0;
    for await (const c of this.chain(e.firstCluster, need, name)) {
      got++;
      if (run.length && (c !== run[run.length - 1]! + 1 || run.length * this.clusterSize >= READ_CHUNK)) yield* flush(this);
      run.push(c);
    }
    if (got < need) {
      throw new FatError('FAT_BAD_CHAIN', `cluster chain of ${got} clusters is shorter than the ${e.size}-byte file`, { file: this.file, field: name, offset: e.offset });
    }
    if (run.length) yield* flush(this);
  }

  /** Whole file in memory (for small files; use readStream for big ones). */
  async readFile(path: string): Promise<Uint8Array> {
    const parts: Uint8Array[] = [];
    for await (const b of this.readStream(path)) parts.push(b);
    return Buffer.concat(parts);
  }

  /** Every entry below `path`, parents first, with full paths. Directory cycles are FatErrors. */
  async *walk(path = '/'): AsyncIterableIterator<{ path: string; entry: FatDirEntry }> {
    const seen = new Set<number>();
    const stack: { path: string; cluster: number }[] = [{ path: '', cluster: path === '/' ? 0 : (await this.stat(path)).firstCluster }];
    while (stack.length) {
      const d = stack.shift()!;
      if (seen.has(d.cluster)) throw new FatError('FAT_DIR_LOOP', 'directory visited twice (cross-linked directories)', { file: this.file, field: d.path || '/' });
      seen.add(d.cluster);
      for (const entry of await this.listCluster(d.cluster, d.path || '/')) {
        const p = `${d.path}/${entry.name}`;
        yield { path: p, entry };
        if (entry.isDirectory) stack.push({ path: p, cluster: entry.firstCluster });
      }
    }
  }
}

function splitFatPath(path: string): string[] {
  return path.split('/').filter((p) => p !== '' && p !== '.');
}

function decodeLfnPart(...parts: Uint8Array[]): string {
  const units = Buffer.concat(parts);
  let s = '';
  for (let i = 0; i + 1 < units.length; i += 2) {
    const u = units.readUInt16LE(i);
    if (u === 0 || u === 0xffff) break;
    s += String.fromCharCode(u);
  }
  return s;
}

/** Open a FAT filesystem on a source (a partition window or a whole image). */
export function openFat(src: ByteSource, opts: { file?: string } = {}): Promise<FatFilesystem> {
  return FatFilesystem.open(src, opts);
}
