/**
 * Directory blocks (Documentation/filesystems/ext4/directory.rst): linear
 * blocks of ext4_dir_entry_2 records, and hashed b-trees ("htree") for
 * directories of more than one block: a dx_root block, optionally one
 * level of dx_node blocks, then leaf blocks holding entries in hash order.
 * Under metadata_csum each leaf ends with a 12-byte checksum entry and each
 * dx block with an 8-byte dx_tail.
 */
import { dirBlockCsum, dxBlockCsum } from './csum.js';
import { Ext4Error } from './errors.js';
import { dxHash } from './hash.js';
import { settersOf } from './setters.js';
import {
  DIR_TAIL_SIZE, DX_NODE_ENTRIES_OFFSET, DX_ROOT_ENTRIES_OFFSET, DX_ROOT_INFO_OFFSET, DirEntry2, DirEntryTail,
  DxCountLimit, DxEntry, DxRootInfo, DxTail, FT_DIR, FT_DIR_CSUM,
} from './structs.js';

export interface DirEntryIn { name: Uint8Array; ino: number; fileType: number }

export interface DirOptions {
  blockSize: number;
  csum: boolean;
  /** dir_index enabled: multi-block directories become htrees. */
  htree: boolean;
  hashVersion: number;
  hashSeed: Uint32Array;
  /** Pad the directory to at least this many blocks (lost+found). */
  minBlocks?: number;
}

export interface DirPlan {
  blocks: number;
  /** Linear: entries per block (block 0 starts with "." and ".."). Htree: entries per leaf. */
  chunks: DirEntryIn[][];
  htree?: { leafHashes: number[]; nodes: number[][] | undefined };
}

export const recLen = (nameLen: number) => (8 + nameLen + 3) & ~3;

function pack(entries: DirEntryIn[], capacity: number, firstUsed: number): DirEntryIn[][] {
  const chunks: DirEntryIn[][] = [[]];
  let used = firstUsed;
  for (const e of entries) {
    const n = recLen(e.name.length);
    if (used + n > capacity) {
      chunks.push([]);
      used = 0;
    }
    chunks[chunks.length - 1]!.push(e);
    used += n;
  }
  return chunks;
}

export function dxRootLimit(o: DirOptions): number {
  return (o.blockSize - DX_ROOT_ENTRIES_OFFSET - (o.csum ? 8 : 0)) / 8;
}
export function dxNodeLimit(o: DirOptions): number {
  return (o.blockSize - DX_NODE_ENTRIES_OFFSET - (o.csum ? 8 : 0)) / 8;
}

/** Decide the shape of a directory: how many blocks and which entries go where. */
export function planDirectory(entries: DirEntryIn[], o: DirOptions): DirPlan {
  const cap = o.blockSize - (o.csum ? DIR_TAIL_SIZE : 0);
  const linear = pack(entries, cap, 24);
  if (linear.length === 1 || !o.htree) {
    const blocks = Math.max(linear.length, o.minBlocks ?? 1);
    while (linear.length < blocks) linear.push([]);
    return { blocks, chunks: linear };
  }
  const hashed = entries.map((e) => ({ e, h: dxHash(e.name, o.hashVersion, o.hashSeed) }));
  hashed.sort((a, b) => a.h.hash - b.h.hash || a.h.minor - b.h.minor || Buffer.compare(a.e.name, b.e.name));
  const leaves: DirEntryIn[][] = [];
  const leafHashes: number[] = [];
  let i = 0;
  while (i < hashed.length) {
    const start = i;
    let used = 0;
    while (i < hashed.length && used + recLen(hashed[i]!.e.name.length) <= cap) used += recLen(hashed[i++]!.e.name.length);
    // Never split a run of equal hashes across leaves unless it fills a leaf alone (then the
    // next index entry carries the collision bit, directory.rst "Hash Tree Directories").
    if (i < hashed.length && i > start && hashed[i]!.h.hash === hashed[i - 1]!.h.hash) {
      let j = i - 1;
      while (j > start && hashed[j - 1]!.h.hash === hashed[i]!.h.hash) j--;
      if (j > start) i = j;
    }
    const first = hashed[start]!.h.hash;
    const cont = start > 0 && hashed[start - 1]!.h.hash === first;
    leaves.push(hashed.slice(start, i).map((x) => x.e));
    leafHashes.push(cont ? first | 1 : first);
  }
  const rootLimit = dxRootLimit(o);
  const nodeLimit = dxNodeLimit(o);
  let nodes: number[][] | undefined;
  if (leaves.length > rootLimit) {
    nodes = [];
    for (let k = 0; k < leaves.length; k += nodeLimit) {
      nodes.push(Array.from({ length: Math.min(nodeLimit, leaves.length - k) }, (_, x) => k + x));
    }
    if (nodes.length > rootLimit) {
      throw new Ext4Error('EXT4_DIR_TOO_LARGE', `directory of ${entries.length} entries needs more than two htree levels (largedir is not supported)`);
    }
  }
  return { blocks: 1 + (nodes?.length ?? 0) + leaves.length, chunks: leaves, htree: { leafHashes, nodes } };
}

const D = settersOf(DirEntry2);

function putEntry(buf: Uint8Array, at: number, e: DirEntryIn, rec: number): void {
  D.inode(buf, at, e.ino);
  D.rec_len(buf, at, rec);
  D.name_len(buf, at, e.name.length);
  D.file_type(buf, at, e.fileType);
  buf.set(e.name, at + 8);
}

/** One leaf block holding `entries` (the last record stretches to the tail). */
function leafBlock(entries: DirEntryIn[], o: DirOptions, seed: number): Uint8Array {
  const B = o.blockSize;
  const cap = B - (o.csum ? DIR_TAIL_SIZE : 0);
  const buf = new Uint8Array(B);
  let at = 0;
  entries.forEach((e, k) => {
    const rec = k === entries.length - 1 ? cap - at : recLen(e.name.length);
    putEntry(buf, at, e, rec);
    at += rec;
  });
  if (entries.length === 0) DirEntry2.encode({ inode: 0, rec_len: cap, name_len: 0, file_type: 0 }, buf, 0);
  if (o.csum) {
    DirEntryTail.encode({ det_reserved_zero1: 0, det_rec_len: DIR_TAIL_SIZE, det_reserved_zero2: 0, det_reserved_ft: FT_DIR_CSUM }, buf, cap);
    DirEntryTail.encode({ det_checksum: dirBlockCsum(seed, buf) }, buf, cap);
  }
  return buf;
}

function dxBlock(buf: Uint8Array, countOffset: number, limit: number, entries: { hash: number; block: number }[], o: DirOptions, seed: number): void {
  DxCountLimit.encode({ limit, count: entries.length, block: entries[0]!.block }, buf, countOffset);
  for (let k = 1; k < entries.length; k++) DxEntry.encode(entries[k]!, buf, countOffset + 8 * k);
  if (o.csum) {
    const tail = countOffset + limit * 8;
    DxTail.encode({ dt_reserved: 0, dt_checksum: 0 }, buf, tail);
    DxTail.encode({ dt_checksum: dxBlockCsum(seed, buf, countOffset, entries.length, tail) }, buf, tail);
  }
}

/**
 * Encode the planned directory into its blocks in logical order. `seed` is
 * the inode checksum seed (ignored without csum).
 */
export function encodeDirectory(plan: DirPlan, self: number, parent: number, o: DirOptions, seed: number): Uint8Array[] {
  const B = o.blockSize;
  const dot: DirEntryIn = { name: Uint8Array.of(0x2e), ino: self, fileType: FT_DIR };
  const dotdot: DirEntryIn = { name: Uint8Array.of(0x2e, 0x2e), ino: parent, fileType: FT_DIR };
  if (!plan.htree) {
    return plan.chunks.map((c, k) => leafBlock(k === 0 ? [dot, dotdot, ...c] : c, o, seed));
  }
  const { leafHashes, nodes } = plan.htree;
  const leafBase = 1 + (nodes?.length ?? 0);
  const root = new Uint8Array(B);
  putEntry(root, 0, dot, 12);
  putEntry(root, 12, dotdot, B - 12);
  DxRootInfo.encode({
    reserved_zero: 0, hash_version: o.hashVersion, info_length: 8, indirect_levels: nodes ? 1 : 0, unused_flags: 0,
  }, root, DX_ROOT_INFO_OFFSET);
  const out: Uint8Array[] = [root];
  if (!nodes) {
    dxBlock(root, DX_ROOT_ENTRIES_OFFSET, dxRootLimit(o), leafHashes.map((h, k) => ({ hash: h, block: leafBase + k })), o, seed);
  } else {
    dxBlock(root, DX_ROOT_ENTRIES_OFFSET, dxRootLimit(o), nodes.map((n, k) => ({ hash: leafHashes[n[0]!]!, block: 1 + k })), o, seed);
    for (const n of nodes) {
      const blk = new Uint8Array(B);
      DirEntry2.encode({ inode: 0, rec_len: B, name_len: 0, file_type: 0 }, blk, 0);
      dxBlock(blk, DX_NODE_ENTRIES_OFFSET, dxNodeLimit(o), n.map((l) => ({ hash: leafHashes[l]!, block: leafBase + l })), o, seed);
      out.push(blk);
    }
  }
  for (const c of plan.chunks) out.push(leafBlock(c, o, seed));
  return out;
}
