/**
 * FAT16/FAT32 writer: serializes a staging subtree (the ESP content) into a
 * block-target window. Clusters are allocated contiguously in walk order, so
 * every chain is a run and the FAT is generated, not searched. Only the
 * boot/FSInfo sectors, the used part of both FATs, directories and file data
 * are written; the rest of the window stays a hole (it must read as zeros:
 * a freshly created sparse target).
 */
import type { BlockTarget } from '../../disk/target.js';
import type { Inode, StagingTree, Timespec } from '../../tree/tree.js';
import { compareBytes } from '../../tree/tree.js';
import { seededU32 } from '../../disk/guid.js';
import { FatError } from './errors.js';
import { chooseGeometry, FAT32_BACKUP_BOOT_SECTOR, FAT32_FSINFO_SECTOR, type FatGeometry, type GeometryOptions } from './geometry.js';
import { longNameChunks, shortNameChecksum, ShortNameAllocator, validateLongName, type ShortName } from './names.js';
import {
  ATTR_ARCHIVE, ATTR_DIRECTORY, ATTR_LONG_NAME, ATTR_VOLUME_ID, BootSector16, BootSector32, BOOT_SIGNATURE, DIR_ENTRY_SIZE, DirEntry,
  EXT_BOOT_SIGNATURE, FsInfo, FSINFO_LEAD_SIG, FSINFO_STRUC_SIG, FSINFO_TRAIL_SIG, LAST_LONG_ENTRY, LongNameEntry, MAX_DIR_ENTRIES,
  MAX_FILE_SIZE, MEDIA_FIXED,
} from './structs.js';
import { toDosTime } from './time.js';

export interface FatWriteOptions extends Omit<GeometryOptions, 'rootEntries'> {
  /** Volume label (≤ 11 characters); absent → "NO NAME" and no label entry. */
  label?: string;
  /** Volume serial number; default derived from `seed` (or the label), never from the clock. */
  serial?: number;
  seed?: string;
  /** BPB hidden sectors: the partition's start LBA (boot code uses it). */
  hiddenSectors?: number;
  /** Timestamps later than this (SOURCE_DATE_EPOCH, seconds) are clamped to it. */
  clampTime?: number;
  /** What to do with symlinks/devices in the subtree, which FAT cannot store (default: skip with a warning). */
  special?: 'skip' | 'error';
}

export interface FatWriteResult {
  geometry: FatGeometry;
  serial: number;
  label?: string;
  files: number;
  directories: number;
  usedClusters: number;
  warnings: string[];
}

interface FileNode { kind: 'file'; name: string; path: string; inode: Inode; short: ShortName; firstCluster: number; clusters: number }
interface DirNode {
  kind: 'dir'; name: string; path: string; inode: Inode; short: ShortName; children: Node[]; entries: number;
  firstCluster: number; clusters: number; parent?: DirNode;
}
type Node = FileNode | DirNode;

const OEM_NAME = 'MSWIN4.1';
const NO_NAME = 'NO NAME    ';
const LABEL_RE = /^[^\x00-\x1f"*+,./:;<=>?[\\\]|\x7f-\uffff]{1,11}$/;
/** int 18h (boot failure: BIOS tries the next device), then halt forever. */
const NOT_BOOTABLE = Uint8Array.of(0xcd, 0x18, 0xf4, 0xeb, 0xfd);
const IO_CHUNK = 1024 * 1024;

function resolveRoot(src: StagingTree | { tree: StagingTree; path?: string } | Inode): Inode {
  if ('type' in src) return src;
  const tree = 'tree' in src ? src.tree : src;
  const path = 'tree' in src ? src.path ?? '/' : '/';
  const node = tree.lookup(path);
  if (!node) throw new FatError('FAT_NO_SOURCE', 'subtree not found', { file: path });
  if (node.type !== 'dir') throw new FatError('FAT_NO_SOURCE', 'subtree is not a directory', { file: path });
  return node;
}

/** Names, aliases and entry counts of the whole subtree (independent of geometry). */
function buildModel(root: Inode, opts: FatWriteOptions, warnings: string[]): DirNode {
  const rootNode: DirNode = {
    kind: 'dir', name: '', path: '/', inode: root, short: { bytes: new Uint8Array(11), ntRes: 0, needsLfn: false },
    children: [], entries: opts.label ? 1 : 0, firstCluster: 0, clusters: 0,
  };
  const stack: DirNode[] = [rootNode];
  const seenDirs = new Set<number>();
  while (stack.length) {
    const dir = stack.pop()!;
    if (seenDirs.has(dir.inode.id)) throw new FatError('FAT_DIR_CYCLE', 'directory reachable twice', { file: dir.path });
    seenDirs.add(dir.inode.id);
    const names = [...dir.inode.entries!.keys()].sort(compareBytes);
    const folded = new Map<string, string>();
    const alloc = new ShortNameAllocator();
    const kept: { name: string; inode: Inode; path: string }[] = [];
    for (const name of names) {
      const inode = dir.inode.entries!.get(name)!;
      const path = dir.path === '/' ? `/${name}` : `${dir.path}/${name}`;
      if (inode.type !== 'file' && inode.type !== 'dir') {
        if (opts.special === 'error') throw new FatError('FAT_UNSUPPORTED_TYPE', `FAT cannot store a ${inode.type}`, { file: path });
        warnings.push(`${path}: ${inode.type} skipped (FAT cannot store it)`);
        continue;
      }
      validateLongName(name, path);
      // FAT names compare case-insensitively: two names differing only in case cannot coexist.
      const f = name.toUpperCase();
      if (folded.has(f)) throw new FatError('FAT_NAME_CLASH', `${JSON.stringify(name)} and ${JSON.stringify(folded.get(f))} differ only in case`, { file: path });
      folded.set(f, name);
      if (inode.type === 'file' && inode.content!.size > MAX_FILE_SIZE) {
        throw new FatError('FAT_FILE_TOO_LARGE', `${inode.content!.size} bytes exceed FAT's 4 GiB - 1 file size limit`, { file: path });
      }
      kept.push({ name, inode, path });
    }
    // Names that are valid 8.3 keep their alias first; the others get generated ones.
    const shorts = new Map<string, ShortName>();
    for (const k of kept) { const s = alloc.tryExact(k.name); if (s) shorts.set(k.name, s); }
    for (const k of kept) if (!shorts.has(k.name)) shorts.set(k.name, alloc.alias(k.name, k.path));
    for (const k of kept) {
      const short = shorts.get(k.name)!;
      dir.entries += 1 + (short.needsLfn ? longNameChunks(k.name).length : 0);
      if (k.inode.type === 'dir') {
        const child: DirNode = { kind: 'dir', name: k.name, path: k.path, inode: k.inode, short, children: [], entries: 2, firstCluster: 0, clusters: 0, parent: dir };
        dir.children.push(child);
        stack.push(child);
      } else {
        dir.children.push({ kind: 'file', name: k.name, path: k.path, inode: k.inode, short, firstCluster: 0, clusters: 0 });
      }
    }
    if (dir.entries > MAX_DIR_ENTRIES) throw new FatError('FAT_DIR_TOO_LARGE', `${dir.entries} directory entries exceed ${MAX_DIR_ENTRIES}`, { file: dir.path });
  }
  return rootNode;
}

function* walkDirs(d: DirNode): IterableIterator<DirNode> {
  yield d;
  for (const c of d.children) if (c.kind === 'dir') yield* walkDirs(c);
}

/** Assign contiguous cluster runs in depth-first order; returns the next free cluster. */
function allocate(root: DirNode, g: FatGeometry): number {
  const cs = g.bytesPerSector * g.sectorsPerCluster;
  let next = 2;
  const visit = (d: DirNode) => {
    if (d !== root || g.fatType === 32) {
      d.clusters = Math.max(1, Math.ceil((d.entries * DIR_ENTRY_SIZE) / cs));
      d.firstCluster = next;
      next += d.clusters;
    }
    for (const c of d.children) {
      if (c.kind === 'file') {
        c.clusters = Math.ceil(c.inode.content!.size / cs);
        c.firstCluster = c.clusters ? next : 0;
        next += c.clusters;
      } else visit(c);
    }
  };
  visit(root);
  return next;
}

function clustersNeeded(root: DirNode, cs: number, fat32: boolean): number {
  let n = 0;
  for (const d of walkDirs(root)) {
    if (d !== root || fat32) n += Math.max(1, Math.ceil((d.entries * DIR_ENTRY_SIZE) / cs));
    for (const c of d.children) if (c.kind === 'file') n += Math.ceil(c.inode.content!.size / cs);
  }
  return n;
}

function rootEntriesFor(root: DirNode, bps: number): number {
  const per = bps / DIR_ENTRY_SIZE;
  return Math.max(512, Math.ceil(root.entries / per) * per);
}

function clamp(t: Timespec, limit?: number): Timespec {
  return limit !== undefined && t.sec > limit ? { sec: limit, nsec: 0 } : t;
}

function encodeEntry(buf: Uint8Array, at: number, name11: Uint8Array, attr: number, ntRes: number, inode: Inode, cluster: number, size: number, clampTo?: number): void {
  const m = toDosTime(clamp(inode.mtime, clampTo));
  const c = toDosTime(clamp(inode.ctime, clampTo));
  const a = toDosTime(clamp(inode.atime, clampTo));
  DirEntry.encode({
    name: name11, attr, ntRes, crtTimeTenth: c.tenths, crtTime: c.time, crtDate: c.date, lstAccDate: a.date,
    fstClusHi: cluster >>> 16, wrtTime: m.time, wrtDate: m.date, fstClusLo: cluster & 0xffff, fileSize: size,
  }, buf, at);
}

/** The bytes of one directory: dot entries, label, then each child's long-name entries and short entry. */
function encodeDirectory(d: DirNode, bytes: number, isRoot: boolean, label: string | undefined, opts: FatWriteOptions): Uint8Array {
  const buf = new Uint8Array(bytes);
  let at = 0;
  const put = (f: (o: number) => void) => { f(at); at += DIR_ENTRY_SIZE; };
  if (isRoot && label) {
    put((o) => encodeEntry(buf, o, Buffer.from(label.padEnd(11, ' '), 'latin1'), ATTR_VOLUME_ID, 0, d.inode, 0, 0, opts.clampTime));
  }
  if (!isRoot) {
    // ".." of a first-level directory points at cluster 0, meaning the root (fatgen103 §6.7).
    const parentCluster = d.parent && d.parent.parent ? d.parent.firstCluster : 0;
    put((o) => encodeEntry(buf, o, Buffer.from('.          ', 'latin1'), ATTR_DIRECTORY, 0, d.inode, d.firstCluster, 0, opts.clampTime));
    put((o) => encodeEntry(buf, o, Buffer.from('..         ', 'latin1'), ATTR_DIRECTORY, 0, d.parent!.inode, parentCluster, 0, opts.clampTime));
  }
  for (const c of d.children) {
    if (c.short.needsLfn) {
      const chunks = longNameChunks(c.name);
      const sum = shortNameChecksum(c.short.bytes);
      for (let i = chunks.length; i >= 1; i--) {
        const ch = Buffer.alloc(26);
        chunks[i - 1]!.forEach((u, k) => ch.writeUInt16LE(u, k * 2));
        put((o) => LongNameEntry.encode({
          ord: i | (i === chunks.length ? LAST_LONG_ENTRY : 0), name1: ch.subarray(0, 10), attr: ATTR_LONG_NAME, type: 0, chksum: sum,
          name2: ch.subarray(10, 22), fstClusLo: 0, name3: ch.subarray(22, 26),
        }, buf, o));
      }
    }
    const isDir = c.kind === 'dir';
    put((o) => encodeEntry(buf, o, c.short.bytes, isDir ? ATTR_DIRECTORY : ATTR_ARCHIVE, c.short.ntRes, c.inode, c.firstCluster, isDir ? 0 : c.inode.content!.size, opts.clampTime));
  }
  return buf;
}

function validateLabel(label: string | undefined): string | undefined {
  if (label === undefined || label === '') return undefined;
  if (!LABEL_RE.test(label) || label.trim() === '') {
    throw new FatError('FAT_BAD_LABEL', `invalid volume label ${JSON.stringify(label)}`, { expected: '1–11 printable ASCII characters, none of "*+,./:;<=>?[\\]|' });
  }
  return label;
}

function encodeBootSector(g: FatGeometry, serial: number, label: string | undefined, opts: FatWriteOptions): Uint8Array {
  const fat32 = g.fatType === 32;
  const common = {
    jmpBoot: Uint8Array.of(0xeb, fat32 ? 0x58 : 0x3c, 0x90),
    oemName: Buffer.from(OEM_NAME, 'latin1'),
    bytsPerSec: g.bytesPerSector, secPerClus: g.sectorsPerCluster, rsvdSecCnt: g.reservedSectors, numFats: g.numFats,
    rootEntCnt: g.rootEntries, totSec16: !fat32 && g.totalSectors < 0x10000 ? g.totalSectors : 0, media: MEDIA_FIXED,
    fatSz16: fat32 ? 0 : g.fatSectors, secPerTrk: 63, numHeads: 255, hiddSec: opts.hiddenSectors ?? 0,
    totSec32: !fat32 && g.totalSectors < 0x10000 ? 0 : g.totalSectors, signature: BOOT_SIGNATURE,
    drvNum: 0x80, bootSig: EXT_BOOT_SIGNATURE, volId: serial, volLab: Buffer.from((label ?? NO_NAME).padEnd(11, ' '), 'latin1'),
    bootCode: NOT_BOOTABLE,
  };
  if (!fat32) return BootSector16.encode({ ...common, filSysType: Buffer.from('FAT16   ', 'latin1') });
  return BootSector32.encode({
    ...common, fatSz32: g.fatSectors, extFlags: 0, fsVer: 0, rootClus: 2, fsInfo: FAT32_FSINFO_SECTOR, bkBootSec: FAT32_BACKUP_BOOT_SECTOR,
    filSysType: Buffer.from('FAT32   ', 'latin1'),
  });
}

/** The FAT entries for clusters 0..next-1: media/clean markers, then one run per allocated chain. */
function encodeFat(root: DirNode, g: FatGeometry, next: number): Uint8Array {
  const fat32 = g.fatType === 32;
  const w = fat32 ? 4 : 2;
  const buf = new Uint8Array(next * w);
  const dv = new DataView(buf.buffer);
  const set = (i: number, v: number) => (fat32 ? dv.setUint32(i * 4, v, true) : dv.setUint16(i * 2, v, true));
  const eoc = fat32 ? 0x0fffffff : 0xffff;
  set(0, fat32 ? 0x0fffff00 | MEDIA_FIXED : 0xff00 | MEDIA_FIXED);
  set(1, eoc);
  const run = (first: number, n: number) => {
    for (let i = 0; i < n; i++) set(first + i, i === n - 1 ? eoc : first + i + 1);
  };
  for (const d of walkDirs(root)) {
    if (d.clusters) run(d.firstCluster, d.clusters);
    for (const c of d.children) if (c.kind === 'file' && c.clusters) run(c.firstCluster, c.clusters);
  }
  return buf;
}

function isZero(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

/**
 * Copy a file's data ranges to its cluster run. Reading the next chunk
 * overlaps writing the current one (two buffers), since both are I/O.
 */
async function writeFileData(target: BlockTarget, f: FileNode, base: number, bufs: [Uint8Array, Uint8Array]): Promise<void> {
  const content = f.inode.content!;
  const ranges = content.dataRanges ? content.dataRanges() : [{ offset: 0, length: content.size }];
  const chunks: { pos: number; n: number }[] = [];
  for (const r of ranges) for (let pos = r.offset; pos < r.offset + r.length; pos += bufs[0].length) chunks.push({ pos, n: Math.min(bufs[0].length, r.offset + r.length - pos) });
  const load = async (i: number): Promise<Uint8Array> => {
    const { pos, n } = chunks[i]!;
    const chunk = bufs[i & 1]!.subarray(0, n);
    const got = await content.read(chunk, pos);
    if (got !== n) throw new FatError('FAT_SHORT_READ', `content ended at ${pos + got}, size says ${content.size}`, { file: f.path });
    return chunk;
  };
  let next = chunks.length ? load(0) : undefined;
  for (let i = 0; i < chunks.length; i++) {
    const chunk = await next!;
    next = i + 1 < chunks.length ? load(i + 1) : undefined;
    // All-zero blocks stay holes in the fresh target.
    try {
      if (!isZero(chunk)) await target.write(chunk, base + chunks[i]!.pos);
    } catch (e) {
      await next?.catch(() => undefined);
      throw e;
    }
  }
}

/**
 * Write a FAT filesystem holding the subtree into the whole of `target`.
 * Deterministic: same tree, options and seed → the same bytes.
 */
export async function writeFat(
  target: BlockTarget, source: StagingTree | { tree: StagingTree; path?: string } | Inode, opts: FatWriteOptions = {},
): Promise<FatWriteResult> {
  const warnings: string[] = [];
  const label = validateLabel(opts.label);
  const root = buildModel(resolveRoot(source), { ...opts, label }, warnings);
  const bps = opts.sectorSize ?? 512;
  const g = chooseGeometry(target.size, { ...opts, rootEntries: rootEntriesFor(root, bps) });
  if (g.fatType !== 32 && root.entries > g.rootEntries) throw new FatError('FAT_DIR_TOO_LARGE', `root directory needs ${root.entries} entries`, { file: '/' });
  const cs = g.bytesPerSector * g.sectorsPerCluster;
  const next = allocate(root, g);
  const used = next - 2;
  if (used > g.clusterCount) {
    throw new FatError('FAT_NO_SPACE', `content needs ${used} clusters of ${cs} bytes, the ${target.size}-byte volume has ${g.clusterCount}`, {
      expected: `≥ ${minimalFatSize(source, opts)} bytes`, actual: String(target.size),
    });
  }
  const serial = (opts.serial ?? seededU32(opts.seed ?? `label:${label ?? ''}`, 'fat-serial')) >>> 0;
  const boot = encodeBootSector(g, serial, label, opts);
  const sector = (n: number) => n * g.bytesPerSector;
  await target.write(boot, 0);
  if (g.fatType === 32) {
    const info = FsInfo.encode({ leadSig: FSINFO_LEAD_SIG, strucSig: FSINFO_STRUC_SIG, freeCount: g.clusterCount - used, nxtFree: next, trailSig: FSINFO_TRAIL_SIG });
    await target.write(info, sector(FAT32_FSINFO_SECTOR));
    await target.write(boot, sector(FAT32_BACKUP_BOOT_SECTOR));
    await target.write(info, sector(FAT32_BACKUP_BOOT_SECTOR + 1));
  }
  const fat = encodeFat(root, g, next);
  for (let i = 0; i < g.numFats; i++) await target.write(fat, sector(g.reservedSectors + i * g.fatSectors));
  const dataStart = sector(g.firstDataSector);
  const clusterOffset = (c: number) => dataStart + (c - 2) * cs;
  let files = 0, dirs = 0;
  const io: [Uint8Array, Uint8Array] = [new Uint8Array(IO_CHUNK), new Uint8Array(IO_CHUNK)];
  for (const d of walkDirs(root)) {
    dirs++;
    const isRoot = d === root;
    if (isRoot && g.fatType !== 32) {
      await target.write(encodeDirectory(d, g.rootDirSectors * g.bytesPerSector, true, label, opts), sector(g.reservedSectors + g.numFats * g.fatSectors));
    } else {
      await target.write(encodeDirectory(d, d.clusters * cs, isRoot, label, opts), clusterOffset(d.firstCluster));
    }
    for (const c of d.children) {
      if (c.kind !== 'file') continue;
      files++;
      if (c.clusters) await writeFileData(target, c, clusterOffset(c.firstCluster), io);
    }
  }
  return { geometry: g, serial, label, files, directories: dirs - 1, usedClusters: used, warnings };
}

/**
 * The smallest volume size (a multiple of 1 MiB) that holds the subtree with
 * the given options; the builder adds its own free-space margin.
 */
export function minimalFatSize(source: StagingTree | { tree: StagingTree; path?: string } | Inode, opts: FatWriteOptions = {}): number {
  const root = buildModel(resolveRoot(source), { ...opts, label: validateLabel(opts.label) }, []);
  const bps = opts.sectorSize ?? 512;
  const MiB = 1024 * 1024;
  let size = MiB;
  for (let i = 0; i < 10000; i++) {
    try {
      const g = chooseGeometry(size, { ...opts, rootEntries: rootEntriesFor(root, bps) });
      const need = clustersNeeded(root, g.bytesPerSector * g.sectorsPerCluster, g.fatType === 32);
      if (need <= g.clusterCount && (g.fatType === 32 || root.entries <= g.rootEntries)) return size;
      const grow = (need - g.clusterCount) * g.bytesPerSector * g.sectorsPerCluster;
      size = Math.ceil(Math.max(size + MiB, size + grow) / MiB) * MiB;
    } catch (e) {
      if (!(e instanceof FatError) || e.code !== 'FAT_GEOMETRY') throw e;
      size += size < 64 * MiB ? MiB : Math.ceil(size / 16 / MiB) * MiB;
    }
  }
  throw new FatError('FAT_GEOMETRY', 'no volume size found for this content');
}
