/**
 * The ext4 writer: serializes a StagingTree into a filesystem occupying a
 * BlockTarget (a sparse file or a partition window), without mke2fs.
 *
 * Layout (Documentation/filesystems/ext4/overview.rst): block groups with
 * sparse_super backups; flex_bg packs each 16 groups' bitmaps and inode
 * tables into the first group of the flex group; inodes are numbered in a
 * depth-first walk so a directory's children sit together; data blocks
 * are allocated in the same order, each file in one run when possible.
 * Only blocks holding data are written: unused inode-table blocks stay
 * holes and the group descriptors say so (ITABLE_ZEROED, itable_unused).
 */
import { createHash, randomBytes } from 'node:crypto';
import type { BlockTarget } from '../../disk/target.js';
import type { Inode as TreeInode, Timespec } from '../../tree/tree.js';
import type { StagingTree } from '../../tree/tree.js';
import {
  bitmapCsum, extentBlockCsum, fsCsumSeed, groupDescCsum16, groupDescCsum32c, inodeCsumSeed, put32,
  setInodeCsum, superblockCsum, xattrBlockCsum,
} from './csum.js';
import { DataWriter } from './datawriter.js';
import { encodeDirectory, type DirOptions } from './dir.js';
import { dataRanges, InodePlan } from './plan.js';
import { settersOf } from './setters.js';
import { Ext4Error } from './errors.js';
import { buildExtentTree, extentTreeBlocks, toExtents, type ExtentRec } from './extents.js';
import { defaultJournalBlocks, journalSuperblock } from './journal.js';
import { BlockAllocator, Geometry, hasSuper } from './layout.js';
import {
  COMPAT_DIR_INDEX, COMPAT_EXT_ATTR, COMPAT_HAS_JOURNAL, COMPAT_RESIZE_INODE, EXT4_RESIZE_INO, DX_HASH_HALF_MD4, DX_HASH_LEGACY, DX_HASH_TEA,
  EXT2_FLAGS_SIGNED_HASH, EXT4_BG_INODE_UNINIT, EXT4_BG_INODE_ZEROED, EXT4_EXTENTS_FL, EXT4_GOOD_OLD_FIRST_INO,
  EXT4_GOOD_OLD_INODE_SIZE, EXT4_INDEX_FL, EXT4_JOURNAL_INO, EXT4_ROOT_INO, EXT4_SUPER_MAGIC,
  EXTRA_ISIZE, GroupDescriptor32, INODE_I_BLOCK,
  GroupDescriptor64, INCOMPAT_64BIT, INCOMPAT_EXTENTS, INCOMPAT_FILETYPE, INCOMPAT_FLEX_BG, Inode as InodeStruct,
  RO_COMPAT_DIR_NLINK, RO_COMPAT_EXTRA_ISIZE, RO_COMPAT_GDT_CSUM, RO_COMPAT_HUGE_FILE, RO_COMPAT_LARGE_FILE,
  RO_COMPAT_METADATA_CSUM, RO_COMPAT_SPARSE_SUPER, S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFREG, S_IFSOCK,
  SUPERBLOCK_OFFSET, Superblock,
} from './structs.js';
import { encodeIbodyXattrs, encodeXattrBlock, type XattrItem } from './xattr.js';

export interface Ext4Options {
  /** Filesystem size in bytes, or 'auto' (contents + headroom). Default: the whole target. */
  size?: number | 'auto';
  /** For 'auto': extra fraction of the content size left free (default 0.1). */
  headroom?: number;
  /** For 'auto': extra free bytes on top of the headroom (default 16 MiB). */
  extraBytes?: number;
  /** For 'auto': round the size up to a multiple of this (default 1 MiB). */
  align?: number;
  blockSize?: 1024 | 2048 | 4096;
  /** 256 (default), 512 or 1024. */
  inodeSize?: number;
  /** Bytes per inode when the count is derived from the size (default 16384). */
  inodeRatio?: number;
  /** Exact minimum inode count (rounded up to fill the inode tables). */
  inodeCount?: number;
  label?: string;
  /** Filesystem UUID (canonical text); default: derived from `seed`, else random. */
  uuid?: string;
  /** Seed for the UUID and directory hash seed: same seed and inputs → byte-identical image. */
  seed?: string;
  /** Blocks reserved for root, in percent (default 5). */
  reservedPercent?: number;
  /** Internal jbd2 journal (default true). */
  journal?: boolean;
  /** Journal size in blocks (default: as mke2fs picks for the size). */
  journalBlocks?: number;
  /** metadata_csum (default true); false uses the older uninit_bg crc16 descriptors. */
  metadataCsum?: boolean;
  /** resize_inode: reserved descriptor blocks so a mounted filesystem can grow 1024x (default true). */
  resizeInode?: boolean;
  /** 64bit feature: 64-byte descriptors, more than 2^32 blocks (default false). */
  bit64?: boolean;
  hashVersion?: 'half_md4' | 'tea' | 'legacy';
  /** Clamp every timestamp to this (seconds), as reproducible builds ask. */
  sourceDateEpoch?: number;
  /** Filesystem creation time in seconds (default SOURCE_DATE_EPOCH, else now). */
  timestamp?: number;
  /** Paths of files that must be stored in one run of blocks; their placement is reported. */
  contiguous?: string[];
  /** Concurrent file reads while writing (default 16). */
  concurrency?: number;
}

export interface FilePlacement {
  /** Physical extents (filesystem block numbers). */
  extents: { lblk: number; pblk: number; len: number }[];
  /** Byte offset of the first data block from the start of the filesystem. */
  byteOffset: number;
  size: number;
}

export interface Ext4Result {
  uuid: string;
  blockSize: number;
  blocksCount: number;
  freeBlocks: number;
  inodesCount: number;
  freeInodes: number;
  /** Size of the filesystem in bytes. */
  sizeBytes: number;
  /** Placement of each `contiguous` file by path. */
  files: Record<string, FilePlacement>;
}

export interface Ext4SizePlan {
  /** Bytes the filesystem will have (auto) or needs at least (fixed size check). */
  bytes: number;
  blocks: number;
  inodes: number;
  /** Data blocks the contents need (files, directories, symlinks, xattr blocks, extent trees). */
  dataBlocks: number;
}

const IFMT: Record<TreeInode['type'], number> = {
  file: S_IFREG, dir: S_IFDIR, chardev: S_IFCHR, blockdev: S_IFBLK, fifo: S_IFIFO, socket: S_IFSOCK, symlink: S_IFLNK,
};

interface Resolved {
  blockSize: number; inodeSize: number; csum: boolean; bit64: boolean; journal: boolean; hashVersion: number;
  hashSeed: Uint8Array; uuid: Uint8Array; time: number; sde: number | undefined;
}

function resolve(o: Ext4Options): Resolved {
  const blockSize = o.blockSize ?? 4096;
  if (![1024, 2048, 4096].includes(blockSize)) throw new Ext4Error('EXT4_BAD_OPTION', `block size ${blockSize} is not 1024, 2048 or 4096`);
  const inodeSize = o.inodeSize ?? 256;
  if (![256, 512, 1024].includes(inodeSize) || inodeSize > blockSize) {
    throw new Ext4Error('EXT4_BAD_OPTION', `inode size ${inodeSize} is not 256, 512 or 1024 (and at most the block size)`);
  }
  const seeded = (tag: string) => o.seed !== undefined ? createHash('sha256').update(`ingot-ext4:${tag}:${o.seed}`).digest().subarray(0, 16) : randomBytes(16);
  let uuid: Uint8Array;
  if (o.uuid !== undefined) {
    const hex = o.uuid.replace(/-/g, '');
    if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw new Ext4Error('EXT4_BAD_OPTION', `not a UUID: ${o.uuid}`);
    uuid = Buffer.from(hex, 'hex');
  } else {
    uuid = Buffer.from(seeded('uuid'));
    uuid[6] = (uuid[6]! & 0x0f) | 0x40; // RFC 4122 version 4 layout
    uuid[8] = (uuid[8]! & 0x3f) | 0x80;
  }
  const hv = o.hashVersion ?? 'half_md4';
  const sde = o.sourceDateEpoch;
  return {
    blockSize, inodeSize, csum: o.metadataCsum ?? true, bit64: o.bit64 ?? false, journal: o.journal ?? true,
    hashVersion: hv === 'tea' ? DX_HASH_TEA : hv === 'legacy' ? DX_HASH_LEGACY : DX_HASH_HALF_MD4,
    hashSeed: seeded('hash'), uuid, time: o.timestamp ?? sde ?? Math.floor(Date.now() / 1000), sde,
  };
}

function uuidText(u: Uint8Array): string {
  const h = Buffer.from(u).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function seedWords(b: Uint8Array): Uint32Array {
  const dv = new DataView(b.buffer, b.byteOffset, 16);
  return Uint32Array.from([0, 1, 2, 3], (i) => dv.getUint32(i * 4, true));
}

const EXT_MAX = 32768;
/**
 * Bytes per data window. Small enough that a window read from the source files is still in the CPU
 * caches when the kernel copies it into the image: measured on the 2-core builder, 2 MiB windows cut
 * the wall time of a 74k-file tree by a quarter against 8 MiB ones (the copy into fresh page-cache
 * pages is the largest kernel cost of the whole run).
 */
const DATA_WINDOW = 2 << 20;
/** Inode field writers for the per-inode path. */
const I = settersOf(InodeStruct);

/** Data blocks the inodes need beyond the metadata (an estimate that assumes contiguous placement). */
function dataBlocksNeeded(plan: InodePlan, B: number): number {
  let n = 0;
  const xkeys = new Set<string>();
  for (let ino = EXT4_ROOT_INO; ino <= plan.lastIno; ino++) {
    const inode = plan.inodes[ino];
    if (!inode) continue;
    if (inode.type === 'dir') {
      const blocks = plan.dirBlocks[ino]!;
      n += blocks + extentTreeBlocks(Math.ceil(blocks / EXT_MAX), B);
    } else if (inode.type === 'file') {
      let extents = 0;
      for (const r of dataRanges(inode.content!, B)) { n += r.count; extents += Math.ceil(r.count / EXT_MAX); }
      n += extentTreeBlocks(extents, B);
    } else if (inode.type === 'symlink' && Buffer.byteLength(inode.target!, 'utf8') >= 60) {
      n += 1;
    }
  }
  for (const key of plan.xattrBlockKey.values()) if (!xkeys.has(key)) { xkeys.add(key); n += 1; }
  return n;
}

function inodesWanted(o: Ext4Options, bytes: number, used: number): number {
  if (o.inodeCount !== undefined) {
    if (o.inodeCount < used) throw new Ext4Error('EXT4_TOO_MANY_INODES', `the tree needs ${used} inodes, more than the ${o.inodeCount} asked for`);
    return o.inodeCount;
  }
  return Math.max(Math.floor(bytes / (o.inodeRatio ?? 16384)), used);
}

function geometryFor(o: Ext4Options, r: Resolved, bytes: number, used: number): Geometry {
  const blocks = Math.floor(bytes / r.blockSize);
  if (!r.bit64 && blocks > 0xffffffff) throw new Ext4Error('EXT4_TOO_LARGE', 'more than 2^32 blocks needs the 64bit feature');
  return new Geometry({
    blockSize: r.blockSize, blocksCount: blocks, inodeSize: r.inodeSize, inodesWanted: inodesWanted(o, bytes, used), desc64: r.bit64,
    flexSize: 16, reserveGdt: o.resizeInode ?? true,
  });
}

function journalBlocksFor(o: Ext4Options, r: Resolved, blocks: number): number {
  if (!r.journal) return 0;
  return o.journalBlocks ?? defaultJournalBlocks(blocks);
}

/** Whether `bytes` holds the contents: free blocks after metadata and journal cover the data (with 0.5% slack). */
function fits(o: Ext4Options, r: Resolved, bytes: number, used: number, data: number): boolean {
  try {
    const g = geometryFor(o, r, bytes, used);
    const avail = g.blocksCount - g.metadataBlocks() - journalBlocksFor(o, r, g.blocksCount);
    return avail >= data + Math.ceil(data * 0.005) + 16;
  } catch (e) {
    if (e instanceof Ext4Error && (e.code === 'EXT4_TOO_SMALL' || e.code === 'EXT4_TOO_MANY_INODES')) return false;
    throw e;
  }
}

/** Smallest size (a multiple of `align`) at which `data` blocks fit. */
function minimumBytes(o: Ext4Options, r: Resolved, used: number, data: number, extra: number, align: number): number {
  let lo = align;
  let hi = align;
  while (!fits(o, r, hi, used, data + extra)) {
    lo = hi;
    hi *= 2;
    if (hi > 2 ** 52) throw new Ext4Error('EXT4_TOO_LARGE', 'contents too large for ext4');
  }
  while (hi - lo > align) {
    const mid = Math.floor((lo + hi) / 2 / align) * align;
    if (mid <= lo) break;
    if (fits(o, r, mid, used, data + extra)) hi = mid; else lo = mid;
  }
  return hi;
}

/** Plan the size of a filesystem for `tree` (auto size), or check a fixed size against it. */
export function planExt4Size(tree: StagingTree, options: Ext4Options = {}): Ext4SizePlan {
  return prepareExt4(tree, { ...options, seed: options.seed ?? '' }).plan(options.size);
}

/** A tree walked once for both sizing and writing (the walk is the costly part of planning). */
export interface PreparedExt4 {
  /** The size plan for `size` ('auto' by default), as planExt4Size gives it. */
  plan(size?: number | 'auto'): Ext4SizePlan;
  /** Write to `target`; `size` defaults to the options' size, else the target's. */
  write(target: BlockTarget, size?: number | 'auto'): Promise<Ext4Result>;
}

export function prepareExt4(tree: StagingTree, options: Ext4Options = {}): PreparedExt4 {
  const r = resolve(options);
  const plan = new InodePlan(tree, dirOptionsOf(r), r.inodeSize, r.time);
  let data: number | undefined;
  const sizing = (): Sizing => ({ lastIno: plan.lastIno, data: (data ??= dataBlocksNeeded(plan, r.blockSize)) });
  return {
    plan: (size = options.size ?? 'auto') => sizeFor({ ...options, size }, r, sizing()),
    write: (target, size) => writePlanned(target, { ...options, size: size ?? options.size }, r, plan, sizing()),
  };
}

/** What sizing needs of a plan: the last inode number and the data blocks. */
interface Sizing { lastIno: number; data: number }

function sizeFor(o: Ext4Options, r: Resolved, { lastIno, data }: Sizing): Ext4SizePlan {
  const B = r.blockSize;
  const align = o.align ?? 1 << 20;
  if (o.size === 'auto' || o.size === undefined) {
    const extra = Math.ceil((data * (o.headroom ?? 0.1)) + (o.extraBytes ?? 16 << 20) / B);
    const usedWithHeadroom = Math.ceil(lastIno * (1 + (o.headroom ?? 0.1))) + 64;
    const bytes = minimumBytes(o, r, usedWithHeadroom, data, extra, align);
    const g = geometryFor(o, r, bytes, usedWithHeadroom);
    return { bytes, blocks: g.blocksCount, inodes: g.inodesCount, dataBlocks: data };
  }
  const bytes = o.size;
  if (!fits(o, r, bytes, lastIno, data)) {
    const need = minimumBytes(o, r, lastIno, data, 0, align);
    throw new Ext4Error('EXT4_NO_SPACE', `the tree needs a filesystem of at least ${need} bytes (${Math.ceil(need / 2 ** 20)} MiB); ${bytes} bytes were given`, {
      expected: `>= ${need} bytes`, actual: `${bytes} bytes`,
    });
  }
  const g = geometryFor(o, r, bytes, lastIno);
  return { bytes, blocks: g.blocksCount, inodes: g.inodesCount, dataBlocks: data };
}

function dirOptionsOf(r: Resolved): DirOptions {
  return { blockSize: r.blockSize, csum: r.csum, htree: true, hashVersion: r.hashVersion, hashSeed: seedWords(r.hashSeed) };
}

function clampTime(t: Timespec, sde: number | undefined): Timespec {
  if (sde !== undefined && t.sec > sde) return { sec: sde, nsec: 0 };
  return t;
}

/** ext4 timestamps: 32 low bits of seconds, plus 2 epoch bits and nanoseconds<<2 in the _extra field. */
function encodeTime(t: Timespec): [number, number] {
  const sec = Math.trunc(t.sec);
  const lo = sec >>> 0;
  const lo32 = lo | 0;
  const epoch = ((sec - lo32) / 2 ** 32) & 3;
  return [lo, (((t.nsec >>> 0) << 2) | epoch) >>> 0];
}

/** Write `tree` as an ext4 filesystem into `target` (from byte 0; wrap a partition in a SubTarget). */
export async function writeExt4(tree: StagingTree, target: BlockTarget, options: Ext4Options = {}): Promise<Ext4Result> {
  return prepareExt4(tree, options).write(target);
}

async function writePlanned(target: BlockTarget, options: Ext4Options, r: Resolved, inodes: InodePlan, sizing: Sizing): Promise<Ext4Result> {
  const B = r.blockSize;
  const dirOpts = inodes.dirOpts;
  const lastIno = inodes.lastIno;
  const plan = sizeFor({ ...options, size: options.size ?? target.size }, r, sizing);
  if (plan.bytes > target.size) {
    throw new Ext4Error('EXT4_NO_SPACE', `the filesystem needs ${plan.bytes} bytes but the target has ${target.size}`);
  }
  // Files that must be one run of blocks, by inode number (resolved before anything is written).
  const wantContiguous = new Map<number, string>();
  for (const p of options.contiguous ?? []) {
    const path = '/' + p.split('/').filter(Boolean).join('/');
    const inode = inodes.tree.lookup(path, { follow: false });
    const ino = inode && inode.type === 'file' ? inodes.inoOfInode(inode) : undefined;
    if (ino === undefined) throw new Ext4Error('EXT4_NOT_FOUND', 'contiguous file requested but not a regular file in the tree', { file: path });
    wantContiguous.set(ino, path);
  }
  const headroomInodes = options.size === 'auto' ? Math.ceil(lastIno * (1 + (options.headroom ?? 0.1))) + 64 : lastIno;
  const geo = geometryFor(options, r, plan.bytes, headroomInodes);
  if (lastIno > geo.inodesCount) throw new Ext4Error('EXT4_TOO_MANY_INODES', `${lastIno} inodes needed, ${geo.inodesCount} available`);
  const fsSeed = fsCsumSeed(r.uuid);
  const alloc = new BlockAllocator(geo.blocksCount);
  const G = geo.groupCount;

  // Superblock and descriptor copies, then each flex group's bitmaps and inode tables.
  if (geo.firstDataBlock) alloc.mark(0, geo.firstDataBlock);
  for (let g = 0; g < G; g++) if (hasSuper(g)) alloc.mark(geo.groupFirstBlock(g), geo.superOverhead(g));
  const takeAfter = (from: number, count: number): number => {
    let s = from;
    for (;;) {
      while (s < geo.blocksCount && alloc.isUsed(s)) s++;
      let e = s;
      while (e < geo.blocksCount && e - s < count && !alloc.isUsed(e)) e++;
      if (e - s === count) { alloc.mark(s, count); return s; }
      if (e >= geo.blocksCount) throw new Ext4Error('EXT4_TOO_SMALL', 'no room for the group metadata; make the filesystem larger');
      s = e;
    }
  };
  const blockBitmapAt = new Array<number>(G);
  const inodeBitmapAt = new Array<number>(G);
  const itableAt = new Array<number>(G);
  for (let f = 0; f * geo.flexSize < G; f++) {
    const g0 = f * geo.flexSize;
    const n = Math.min(geo.flexSize, G - g0);
    const start = geo.groupFirstBlock(g0) + geo.superOverhead(g0);
    let cur = start;
    for (let k = 0; k < n; k++) cur = (blockBitmapAt[g0 + k] = takeAfter(cur, 1)) + 1;
    for (let k = 0; k < n; k++) cur = (inodeBitmapAt[g0 + k] = takeAfter(cur, 1)) + 1;
    for (let k = 0; k < n; k++) cur = (itableAt[g0 + k] = takeAfter(cur, geo.itableBlocks)) + geo.itableBlocks;
  }
  alloc.scanFree(0);

  const writer = new DataWriter(target, B, DATA_WINDOW, options.concurrency ?? 16);
  const time = r.time;

  // Journal (inode 8): contiguous blocks, only its superblock written.
  const jBlocks = journalBlocksFor(options, r, geo.blocksCount);
  let journalRuns: { start: number; count: number }[] = [];
  if (jBlocks > 0) {
    journalRuns = alloc.alloc(jBlocks);
    await target.write(journalSuperblock(B, jBlocks, r.uuid), journalRuns[0]!.start * B);
  }

  // Inode tables, filled group by group in inode order.
  const isz = r.inodeSize;
  let itGroup = -1;
  const itBuf = new Uint8Array(geo.itableBlocks * B);
  let itHigh = 0;
  const flushItable = async () => {
    if (itGroup < 0 || itHigh === 0) return;
    const bytes = Math.ceil((itHigh * isz) / B) * B;
    await target.write(itBuf.subarray(0, bytes), itableAt[itGroup]! * B);
  };
  const putInode = async (ino: number, raw: Uint8Array) => {
    const g = Math.floor((ino - 1) / geo.inodesPerGroup);
    if (g !== itGroup) {
      await flushItable();
      itBuf.fill(0, 0, itHigh * isz);
      itGroup = g;
      itHigh = 0;
    }
    const idx = (ino - 1) % geo.inodesPerGroup;
    if (r.csum) setInodeCsum(fsSeed, ino, raw);
    itBuf.set(raw, idx * isz);
    itHigh = Math.max(itHigh, idx + 1);
  };

  const usedDirs = new Uint32Array(G);
  const fsTime = { sec: time, nsec: 0 };
  // One inode is built at a time, then copied into its table: a scratch buffer serves them all.
  const scratch = new Uint8Array(isz);
  const baseInode = (mode: number, t: { a: Timespec; m: Timespec; c: Timespec }) => {
    const raw = scratch.fill(0);
    const [a, ax] = encodeTime(clampTime(t.a, r.sde));
    const [m, mx] = encodeTime(clampTime(t.m, r.sde));
    const [c, cx] = encodeTime(clampTime(t.c, r.sde));
    I.i_mode(raw, 0, mode);
    I.i_atime(raw, 0, a); I.i_atime_extra(raw, 0, ax);
    I.i_mtime(raw, 0, m); I.i_mtime_extra(raw, 0, mx);
    I.i_ctime(raw, 0, c); I.i_ctime_extra(raw, 0, cx);
    I.i_crtime(raw, 0, c); I.i_crtime_extra(raw, 0, cx);
    I.i_extra_isize(raw, 0, EXTRA_ISIZE);
    return raw;
  };
  const setBlocks = (raw: Uint8Array, fsBlocks: number) => {
    const sectors = fsBlocks * (B / 512);
    if (sectors >= 2 ** 48) throw new Ext4Error('EXT4_FILE_TOO_LARGE', 'file uses more than 2^48 sectors');
    I.i_blocks_lo(raw, 0, sectors >>> 0);
    I.i_blocks_high(raw, 0, Math.floor(sectors / 2 ** 32));
  };
  const mapExtents = async (ino: number, raw: Uint8Array, extents: ExtentRec[], flags: number): Promise<number> => {
    const tb = extentTreeBlocks(extents.length, B);
    const treeBlocks: number[] = [];
    for (const run of alloc.alloc(tb)) for (let k = 0; k < run.count; k++) treeBlocks.push(run.start + k);
    const tree = buildExtentTree(extents, treeBlocks, B);
    const seed = inodeCsumSeed(fsSeed, ino, 0);
    for (const blk of tree.blocks) {
      if (r.csum) put32(blk.data, blk.tailOffset, extentBlockCsum(seed, blk.data, blk.tailOffset));
      await writer.bytes(blk.pblk * B, blk.data);
    }
    raw.set(tree.iBlock, INODE_I_BLOCK);
    I.i_flags(raw, 0, flags | EXT4_EXTENTS_FL);
    return tb;
  };

  /**
   * Inode 7 (resize_inode, ext4 docs "Resize inode"; e2fsprogs res_gdt.c): a double-indirect block whose
   * entries are the primary reserved descriptor blocks; each of those, read as an indirect block, lists
   * the same reserved block in every backup group.
   */
  const resizeInode = async (): Promise<Uint8Array> => {
    const rsv = geo.reservedGdtBlocks;
    const apb = B / 4;
    const [dindRun] = alloc.alloc(1);
    const dind = new Uint8Array(B);
    const backups: number[] = [];
    for (let g = 1; g < G; g++) if (hasSuper(g)) backups.push(g);
    const primary0 = geo.firstDataBlock + 1 + geo.gdtBlocks;
    for (let k = 0; k < rsv; k++) {
      const blk = primary0 + k;
      put32(dind, ((geo.gdtBlocks + k) % apb) * 4, blk);
      const list = new Uint8Array(B);
      backups.forEach((g, i) => put32(list, i * 4, blk + g * geo.blocksPerGroup));
      await target.write(list, blk * B);
    }
    await target.write(dind, dindRun!.start * B);
    const raw = baseInode(S_IFREG | 0o600, { a: fsTime, m: fsTime, c: fsTime });
    const bytes = (apb * apb + apb + 12) * B;
    InodeStruct.encode({ i_links_count: 1, i_size_lo: bytes >>> 0, i_size_high: Math.floor(bytes / 2 ** 32) }, raw);
    put32(raw, 0x28 + 13 * 4, dindRun!.start);
    setBlocks(raw, 1 + rsv * (1 + backups.length));
    return raw;
  };

  // Reserved inodes 1..10 (only 2 and 8 are used): zeroed with a valid checksum, as mke2fs leaves them.
  for (let ino = 1; ino < EXT4_GOOD_OLD_FIRST_INO; ino++) {
    if (ino === EXT4_ROOT_INO) continue;
    let raw: Uint8Array;
    if (ino === EXT4_JOURNAL_INO && jBlocks > 0) {
      raw = baseInode(S_IFREG | 0o600, { a: fsTime, m: fsTime, c: fsTime });
      InodeStruct.encode({ i_links_count: 1, i_size_lo: (jBlocks * B) >>> 0, i_size_high: Math.floor((jBlocks * B) / 2 ** 32) }, raw);
      const ext = toExtents(journalRuns.map((x, k) => ({ lblk: journalRuns.slice(0, k).reduce((s, y) => s + y.count, 0), len: x.count, pblk: x.start })));
      const tb = await mapExtents(ino, raw, ext, 0);
      setBlocks(raw, jBlocks + tb);
    } else if (ino === EXT4_RESIZE_INO && geo.reservedGdtBlocks > 0) {
      raw = await resizeInode();
    } else {
      raw = new Uint8Array(isz);
      InodeStruct.encode({ i_extra_isize: EXTRA_ISIZE }, raw);
      if (ino === 1) {
        const [t] = encodeTime(fsTime);
        InodeStruct.encode({ i_atime: t, i_ctime: t, i_mtime: t }, raw);
      }
    }
    await putInode(ino, raw);
  }

  // Shared external xattr blocks, written at the end with their final reference counts.
  const xblocks = new Map<string, { pblk: number; refs: number; items: XattrItem[] }>();
  const xblocksAll: { pblk: number; refs: number; items: XattrItem[] }[] = [];
  const placements: Record<string, FilePlacement> = {};

  for (let ino = EXT4_ROOT_INO; ino <= lastIno; ino++) {
    const t = inodes.inodes[ino];
    if (!t) continue;
    const what = () => inodes.pathOf(ino);
    const raw = baseInode(IFMT[t.type] | (t.mode & 0o7777), { a: t.atime, m: t.mtime, c: t.ctime });
    I.i_uid(raw, 0, t.uid); I.i_uid_high(raw, 0, t.uid >>> 16);
    I.i_gid(raw, 0, t.gid); I.i_gid_high(raw, 0, t.gid >>> 16);
    const names = inodes.names[ino]!;
    let blocks = 0;
    if (t.type === 'dir') {
      const plan = inodes.directory(ino);
      const seed = inodeCsumSeed(fsSeed, ino, 0);
      const content = encodeDirectory(plan, ino, inodes.parent[ino]!, dirOpts, seed);
      const runs = alloc.alloc(plan.blocks);
      const ext: ExtentRec[] = [];
      let l = 0;
      for (const run of runs) {
        ext.push({ lblk: l, len: run.count, pblk: run.start });
        for (let k = 0; k < run.count; k++) await writer.bytes((run.start + k) * B, content[l + k]!);
        l += run.count;
      }
      blocks = plan.blocks + await mapExtents(ino, raw, toExtents(ext), plan.htree ? EXT4_INDEX_FL : 0);
      const links = 2 + inodes.subdirs[ino]!;
      I.i_size_lo(raw, 0, plan.blocks * B);
      I.i_links_count(raw, 0, links > 65000 ? 1 : links);
      usedDirs[Math.floor((ino - 1) / geo.inodesPerGroup)]!++;
    } else if (t.type === 'file') {
      const c = t.content!;
      const contiguous = wantContiguous.get(ino);
      const data = dataRanges(c, B);
      const ranges = contiguous !== undefined && data.length ? [{ lblk: 0, count: Math.ceil(c.size / B) }] : data;
      const ext: ExtentRec[] = [];
      for (const rg of ranges) {
        let runs: { start: number; count: number }[];
        if (contiguous !== undefined) {
          const s = alloc.allocContiguous(rg.count);
          if (s === undefined) throw new Ext4Error('EXT4_NOT_CONTIGUOUS', `no free run of ${rg.count} blocks for a contiguous file`, { file: contiguous });
          runs = [{ start: s, count: rg.count }];
        } else {
          runs = alloc.alloc(rg.count);
        }
        let l = rg.lblk;
        for (const run of runs) {
          ext.push({ lblk: l, len: run.count, pblk: run.start });
          const from = l * B;
          const n = Math.min(run.count * B, c.size - from);
          await writer.content(run.start * B, c, from, n, what);
          l += run.count;
          blocks += run.count;
        }
      }
      const extents = toExtents(ext);
      blocks += await mapExtents(ino, raw, extents, 0);
      I.i_size_lo(raw, 0, c.size >>> 0);
      I.i_size_high(raw, 0, Math.floor(c.size / 2 ** 32));
      I.i_links_count(raw, 0, names);
      if (contiguous !== undefined) {
        placements[contiguous] = {
          extents: extents.map((e) => ({ lblk: e.lblk, pblk: e.pblk, len: e.len })),
          byteOffset: extents.length ? extents[0]!.pblk * B : 0, size: c.size,
        };
      }
    } else if (t.type === 'symlink') {
      const target = Buffer.from(t.target!, 'utf8');
      I.i_size_lo(raw, 0, target.length);
      I.i_links_count(raw, 0, names);
      if (target.length < 60) {
        raw.set(target, 0x28);
      } else {
        const [run] = alloc.alloc(1);
        const blk = new Uint8Array(B);
        blk.set(target);
        await writer.bytes(run!.start * B, blk);
        blocks = 1 + await mapExtents(ino, raw, [{ lblk: 0, len: 1, pblk: run!.start }], 0);
      }
    } else if (t.type === 'chardev' || t.type === 'blockdev') {
      const { major, minor } = t.rdev ?? { major: 0, minor: 0 };
      const dv = new DataView(raw.buffer, 0x28, 60);
      // Old 16-bit encoding in i_block[0] when it fits, else the new 32-bit one in i_block[1] (as Linux).
      if (major < 256 && minor < 256) dv.setUint32(0, (major << 8) | minor, true);
      else dv.setUint32(4, ((minor & 0xff) | (major << 8) | ((minor & ~0xff) << 12)) >>> 0, true);
      I.i_links_count(raw, 0, names);
    } else {
      I.i_links_count(raw, 0, names);
    }
    // Extended attributes: in the inode body, the rest in a (shared) block.
    const xattrs = inodes.xattrs(ino);
    if (xattrs.ibody.length) encodeIbodyXattrs(xattrs.ibody, raw.subarray(EXT4_GOOD_OLD_INODE_SIZE + EXTRA_ISIZE));
    if (xattrs.key) {
      let xb = xblocks.get(xattrs.key);
      if (!xb || xb.refs >= 1024) {
        // EXT4_XATTR_REFCOUNT_MAX: past 1024 sharers the kernel starts a new block.
        const [run] = alloc.alloc(1);
        xb = { pblk: run!.start, refs: 0, items: xattrs.block };
        xblocks.set(xattrs.key, xb);
        xblocksAll.push(xb);
      }
      xb.refs++;
      I.i_file_acl_lo(raw, 0, xb.pblk >>> 0);
      I.i_file_acl_high(raw, 0, Math.floor(xb.pblk / 2 ** 32));
      blocks += 1;
    }
    setBlocks(raw, blocks);
    await putInode(ino, raw);
  }
  await writer.flush();
  await flushItable();
  for (const xb of xblocksAll) {
    const blk = encodeXattrBlock(xb.items, B, xb.refs);
    if (r.csum) put32(blk, 16, xattrBlockCsum(fsSeed, xb.pblk, blk));
    await target.write(blk, xb.pblk * B);
  }

  // Bitmaps and group descriptors.
  const descSize = geo.descSize;
  const gdt = new Uint8Array(geo.gdtBlocks * B);
  let freeBlocksTotal = 0;
  const ipg = geo.inodesPerGroup;
  const bitmap = new Uint8Array(B);
  for (let g = 0; g < G; g++) {
    bitmap.fill(0);
    const first = geo.groupFirstBlock(g);
    const nb = geo.groupBlocks(g);
    let usedCount = 0;
    if (first % 8 === 0) {
      bitmap.set(alloc.used.subarray(first / 8, first / 8 + Math.ceil(nb / 8)));
      if (nb % 8) bitmap[Math.floor(nb / 8)]! &= (1 << (nb % 8)) - 1;
    } else {
      for (let i = 0; i < nb; i++) if (alloc.isUsed(first + i)) bitmap[i >>> 3]! |= 1 << (i & 7);
    }
    for (let i = 0; i < Math.ceil(nb / 8); i++) usedCount += popcount8(bitmap[i]!);
    for (let i = nb; i < 8 * B; i++) bitmap[i >>> 3]! |= 1 << (i & 7);
    const freeBlocks = nb - usedCount;
    freeBlocksTotal += freeBlocks;
    await target.write(bitmap, blockBitmapAt[g]! * B);
    const bbCsum = bitmapCsum(fsSeed, bitmap, geo.blocksPerGroup / 8);

    bitmap.fill(0);
    const usedInodes = Math.max(0, Math.min(ipg, lastIno - g * ipg));
    for (let i = 0; i < usedInodes; i++) bitmap[i >>> 3]! |= 1 << (i & 7);
    for (let i = ipg; i < 8 * B; i++) bitmap[i >>> 3]! |= 1 << (i & 7);
    await target.write(bitmap, inodeBitmapAt[g]! * B);
    const ibCsum = bitmapCsum(fsSeed, bitmap, ipg / 8);

    const d = new Uint8Array(descSize);
    const hi = (v: number) => Math.floor(v / 2 ** 32);
    const fields = {
      bg_block_bitmap_lo: blockBitmapAt[g]! >>> 0, bg_inode_bitmap_lo: inodeBitmapAt[g]! >>> 0, bg_inode_table_lo: itableAt[g]! >>> 0,
      bg_free_blocks_count_lo: freeBlocks & 0xffff, bg_free_inodes_count_lo: (ipg - usedInodes) & 0xffff,
      bg_used_dirs_count_lo: usedDirs[g]! & 0xffff,
      bg_flags: EXT4_BG_INODE_ZEROED | (usedInodes === 0 ? EXT4_BG_INODE_UNINIT : 0),
      bg_block_bitmap_csum_lo: r.csum ? bbCsum & 0xffff : 0, bg_inode_bitmap_csum_lo: r.csum ? ibCsum & 0xffff : 0,
      bg_itable_unused_lo: (ipg - usedInodes) & 0xffff,
    };
    if (descSize === 64) {
      GroupDescriptor64.encode({
        ...fields, bg_block_bitmap_hi: hi(blockBitmapAt[g]!), bg_inode_bitmap_hi: hi(inodeBitmapAt[g]!), bg_inode_table_hi: hi(itableAt[g]!),
        bg_free_blocks_count_hi: freeBlocks >>> 16, bg_free_inodes_count_hi: (ipg - usedInodes) >>> 16, bg_used_dirs_count_hi: usedDirs[g]! >>> 16,
        bg_itable_unused_hi: (ipg - usedInodes) >>> 16,
        bg_block_bitmap_csum_hi: r.csum ? bbCsum >>> 16 : 0, bg_inode_bitmap_csum_hi: r.csum ? ibCsum >>> 16 : 0,
      }, d);
    } else {
      GroupDescriptor32.encode(fields, d);
    }
    const csum = r.csum ? groupDescCsum32c(fsSeed, g, d) : groupDescCsum16(r.uuid, g, d);
    GroupDescriptor32.encode({ bg_checksum: csum }, d);
    gdt.set(d, g * descSize);
  }

  // Superblock (primary at byte 1024, backups at the start of groups with hasSuper).
  const freeInodes = geo.inodesCount - lastIno;
  const label = Buffer.from(options.label ?? '', 'utf8');
  if (label.length > 16) throw new Ext4Error('EXT4_BAD_OPTION', `label longer than 16 bytes: ${options.label}`);
  const jnl = new Uint8Array(68);
  if (jBlocks > 0) {
    const inode8 = itableAt[0]! * B + (EXT4_JOURNAL_INO - 1) * isz;
    const buf = new Uint8Array(isz);
    await target.read(buf, inode8);
    jnl.set(buf.subarray(0x28, 0x28 + 60));
    put32(jnl, 60, Math.floor((jBlocks * B) / 2 ** 32));
    put32(jnl, 64, (jBlocks * B) >>> 0);
  }
  const rBlocks = Math.floor((geo.blocksCount * (options.reservedPercent ?? 5)) / 100);
  const sbFields = {
    s_inodes_count: geo.inodesCount, s_blocks_count_lo: geo.blocksCount >>> 0, s_blocks_count_hi: Math.floor(geo.blocksCount / 2 ** 32),
    s_r_blocks_count_lo: rBlocks >>> 0, s_r_blocks_count_hi: Math.floor(rBlocks / 2 ** 32),
    s_free_blocks_count_lo: freeBlocksTotal >>> 0, s_free_blocks_count_hi: Math.floor(freeBlocksTotal / 2 ** 32),
    s_free_inodes_count: freeInodes, s_first_data_block: geo.firstDataBlock,
    s_log_block_size: Math.log2(B) - 10, s_log_cluster_size: Math.log2(B) - 10,
    s_blocks_per_group: geo.blocksPerGroup, s_clusters_per_group: geo.blocksPerGroup, s_inodes_per_group: ipg,
    s_mtime: 0, s_wtime: time >>> 0, s_mnt_count: 0, s_max_mnt_count: 0xffff, s_magic: EXT4_SUPER_MAGIC, s_state: 1, s_errors: 1,
    s_minor_rev_level: 0, s_lastcheck: time >>> 0, s_checkinterval: 0, s_creator_os: 0, s_rev_level: 1,
    s_def_resuid: 0, s_def_resgid: 0, s_first_ino: EXT4_GOOD_OLD_FIRST_INO, s_inode_size: isz,
    s_feature_compat: COMPAT_EXT_ATTR | COMPAT_DIR_INDEX | (jBlocks > 0 ? COMPAT_HAS_JOURNAL : 0) | (geo.reservedGdtBlocks ? COMPAT_RESIZE_INODE : 0),
    s_reserved_gdt_blocks: geo.reservedGdtBlocks,
    s_feature_incompat: INCOMPAT_FILETYPE | INCOMPAT_EXTENTS | INCOMPAT_FLEX_BG | (r.bit64 ? INCOMPAT_64BIT : 0),
    s_feature_ro_compat: RO_COMPAT_SPARSE_SUPER | RO_COMPAT_LARGE_FILE | RO_COMPAT_HUGE_FILE | RO_COMPAT_DIR_NLINK |
      RO_COMPAT_EXTRA_ISIZE | (r.csum ? RO_COMPAT_METADATA_CSUM : RO_COMPAT_GDT_CSUM),
    s_uuid: r.uuid, s_volume_name: label, s_journal_inum: jBlocks > 0 ? EXT4_JOURNAL_INO : 0,
    s_hash_seed: r.hashSeed, s_def_hash_version: r.hashVersion, s_jnl_backup_type: jBlocks > 0 ? 1 : 0,
    s_desc_size: r.bit64 ? 64 : 0, s_default_mount_opts: 0x000c, s_mkfs_time: time >>> 0, s_jnl_blocks: jnl,
    s_min_extra_isize: EXTRA_ISIZE, s_want_extra_isize: EXTRA_ISIZE, s_flags: EXT2_FLAGS_SIGNED_HASH,
    s_log_groups_per_flex: Math.log2(geo.flexSize), s_checksum_type: r.csum ? 1 : 0,
  };
  for (let g = 0; g < G; g++) {
    if (!hasSuper(g)) continue;
    const sb = Superblock.encode({ ...sbFields, s_block_group_nr: g });
    if (r.csum) put32(sb, 0x3fc, superblockCsum(sb));
    const at = g === 0 ? SUPERBLOCK_OFFSET : geo.groupFirstBlock(g) * B;
    await target.write(sb, at);
    await target.write(gdt, (geo.groupFirstBlock(g) + 1) * B);
  }
  await target.flush();
  return {
    uuid: uuidText(r.uuid), blockSize: B, blocksCount: geo.blocksCount, freeBlocks: freeBlocksTotal,
    inodesCount: geo.inodesCount, freeInodes, sizeBytes: geo.blocksCount * B, files: placements,
  };
}

function popcount8(v: number): number {
  v = v - ((v >>> 1) & 0x55);
  v = (v & 0x33) + ((v >>> 2) & 0x33);
  return (v + (v >>> 4)) & 0x0f;
}
