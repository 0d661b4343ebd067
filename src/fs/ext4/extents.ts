/**
 * Extent trees (Documentation/filesystems/ext4/dynamic.rst, "Extent Tree"):
 * up to 4 entries live in the inode's i_block; more need leaf blocks and,
 * above 4 leaves, index blocks, each block ending in a crc32c tail.
 */
import { Ext4Error } from './errors.js';
import { settersOf } from './setters.js';
import { EXT4_EXT_MAGIC, EXT_INIT_MAX_LEN, Extent, ExtentHeader, ExtentIndex } from './structs.js';

/** One mapping of `len` logical blocks from `lblk` to physical `pblk`. */
export interface ExtentRec { lblk: number; len: number; pblk: number }

const ROOT_MAX = 4;

export function entriesPerBlock(blockSize: number): number {
  return Math.floor((blockSize - 12) / 12);
}

/** Split contiguous mappings into extents of at most 32768 blocks (longer ones would read as unwritten). */
export function toExtents(runs: Iterable<ExtentRec>): ExtentRec[] {
  const out: ExtentRec[] = [];
  for (const r of runs) {
    for (let o = 0; o < r.len; o += EXT_INIT_MAX_LEN) {
      const len = Math.min(EXT_INIT_MAX_LEN, r.len - o);
      const last = out[out.length - 1];
      if (last && last.lblk + last.len === r.lblk + o && last.pblk + last.len === r.pblk + o && last.len + len <= EXT_INIT_MAX_LEN) {
        last.len += len;
      } else {
        out.push({ lblk: r.lblk + o, len, pblk: r.pblk + o });
      }
    }
  }
  return out;
}

/** Number of tree blocks (leaves and index blocks) an inode with `count` extents needs. */
export function extentTreeBlocks(count: number, blockSize: number): number {
  if (count <= ROOT_MAX) return 0;
  const per = entriesPerBlock(blockSize);
  let total = 0;
  let n = count;
  while (n > ROOT_MAX) {
    n = Math.ceil(n / per);
    total += n;
  }
  return total;
}

export interface ExtentTree {
  /** The 60 bytes of i_block. */
  iBlock: Uint8Array;
  /** Tree blocks to write, without their checksum tail (the caller adds it). */
  blocks: { pblk: number; data: Uint8Array; tailOffset: number }[];
}

const H = settersOf(ExtentHeader);
const E = settersOf(Extent);
const X = settersOf(ExtentIndex);

function header(buf: Uint8Array, at: number, entries: number, max: number, depth: number): void {
  H.eh_magic(buf, at, EXT4_EXT_MAGIC);
  H.eh_entries(buf, at, entries);
  H.eh_max(buf, at, max);
  H.eh_depth(buf, at, depth);
  H.eh_generation(buf, at, 0);
}

function putLeaf(buf: Uint8Array, at: number, e: ExtentRec): void {
  E.ee_block(buf, at, e.lblk);
  E.ee_len(buf, at, e.len);
  E.ee_start_hi(buf, at, Math.floor(e.pblk / 2 ** 32));
  E.ee_start_lo(buf, at, e.pblk >>> 0);
}

function putIndex(buf: Uint8Array, at: number, lblk: number, pblk: number): void {
  X.ei_block(buf, at, lblk);
  X.ei_leaf_lo(buf, at, pblk >>> 0);
  X.ei_leaf_hi(buf, at, Math.floor(pblk / 2 ** 32));
  X.ei_unused(buf, at, 0);
}

/**
 * Build the tree for `extents` (sorted by lblk) using `treeBlocks`
 * (exactly {@link extentTreeBlocks} physical block numbers, leaves first).
 */
export function buildExtentTree(extents: ExtentRec[], treeBlocks: number[], blockSize: number): ExtentTree {
  const iBlock = new Uint8Array(60);
  if (treeBlocks.length !== extentTreeBlocks(extents.length, blockSize)) {
    throw new Error('extent tree: wrong number of tree blocks');
  }
  for (const e of extents) {
    if (e.lblk + e.len > 2 ** 32) throw new Ext4Error('EXT4_FILE_TOO_LARGE', 'file larger than 2^32 blocks');
  }
  if (extents.length <= ROOT_MAX) {
    header(iBlock, 0, extents.length, ROOT_MAX, 0);
    extents.forEach((e, i) => putLeaf(iBlock, 12 + 12 * i, e));
    return { iBlock, blocks: [] };
  }
  const per = entriesPerBlock(blockSize);
  const blocks: ExtentTree['blocks'] = [];
  let next = 0;
  // Level 0: leaves.
  let level: { lblk: number; pblk: number }[] = [];
  for (let i = 0; i < extents.length; i += per) {
    const chunk = extents.slice(i, i + per);
    const data = new Uint8Array(blockSize);
    header(data, 0, chunk.length, per, 0);
    chunk.forEach((e, k) => putLeaf(data, 12 + 12 * k, e));
    const pblk = treeBlocks[next++]!;
    blocks.push({ pblk, data, tailOffset: 12 + 12 * per });
    level.push({ lblk: chunk[0]!.lblk, pblk });
  }
  let depth = 1;
  while (level.length > ROOT_MAX) {
    const up: typeof level = [];
    for (let i = 0; i < level.length; i += per) {
      const chunk = level.slice(i, i + per);
      const data = new Uint8Array(blockSize);
      header(data, 0, chunk.length, per, depth);
      chunk.forEach((c, k) => putIndex(data, 12 + 12 * k, c.lblk, c.pblk));
      const pblk = treeBlocks[next++]!;
      blocks.push({ pblk, data, tailOffset: 12 + 12 * per });
      up.push({ lblk: chunk[0]!.lblk, pblk });
    }
    level = up;
    depth++;
  }
  header(iBlock, 0, level.length, ROOT_MAX, depth);
  level.forEach((c, k) => putIndex(iBlock, 12 + 12 * k, c.lblk, c.pblk));
  return { iBlock, blocks };
}
