/**
 * Filesystem geometry: block groups, inode tables and where the superblock
 * backups go (Documentation/filesystems/ext4/overview.rst, "Blocks" and
 * "Flexible Block Groups"), plus a block allocator over the whole volume.
 */
import { Ext4Error } from './errors.js';

export interface GeometryInput {
  blockSize: number;
  blocksCount: number;
  inodeSize: number;
  /** Minimum number of inodes wanted in total. */
  inodesWanted: number;
  desc64: boolean;
  /** Groups per flex group (power of two). */
  flexSize: number;
  /** Reserve descriptor blocks for growth (resize_inode), as mke2fs: room for 1024x the size. */
  reserveGdt: boolean;
}

export class Geometry {
  readonly blockSize: number;
  readonly blocksCount: number;
  readonly firstDataBlock: number;
  readonly blocksPerGroup: number;
  readonly groupCount: number;
  readonly inodesPerGroup: number;
  readonly inodesCount: number;
  readonly inodeSize: number;
  readonly itableBlocks: number;
  readonly descSize: number;
  readonly gdtBlocks: number;
  /** s_reserved_gdt_blocks: descriptor blocks kept free after each table copy for online growth. */
  readonly reservedGdtBlocks: number;
  readonly flexSize: number;

  constructor(inp: GeometryInput) {
    const B = inp.blockSize;
    this.blockSize = B;
    this.inodeSize = inp.inodeSize;
    this.firstDataBlock = B === 1024 ? 1 : 0;
    this.blocksPerGroup = 8 * B;
    this.descSize = inp.desc64 ? 64 : 32;
    this.flexSize = inp.flexSize;
    let blocks = inp.blocksCount;
    let groups = Math.ceil((blocks - this.firstDataBlock) / this.blocksPerGroup);
    const ipgFor = (g: number) => {
      const perBlock = B / inp.inodeSize;
      let ipg = Math.ceil(inp.inodesWanted / g);
      ipg = Math.max(ipg, perBlock, 16);
      ipg = Math.ceil(ipg / perBlock) * perBlock;
      ipg = Math.ceil(ipg / 8) * 8;
      return ipg;
    };
    // A last group too small to hold its own metadata plus some data is dropped (as mke2fs does).
    const rem = (blocks - this.firstDataBlock) % this.blocksPerGroup;
    if (groups > 1 && rem !== 0) {
      const ipg = ipgFor(groups);
      const gdt = Math.ceil((groups * this.descSize) / B);
      const overhead = 2 + (ipg * inp.inodeSize) / B + (hasSuper(groups - 1) ? 1 + gdt : 0);
      if (rem < overhead + 50) {
        blocks -= rem;
        groups -= 1;
      }
    }
    if (blocks - this.firstDataBlock < 64) {
      throw new Ext4Error('EXT4_TOO_SMALL', `filesystem of ${blocks} blocks is too small`);
    }
    this.blocksCount = blocks;
    this.groupCount = groups;
    const ipg = ipgFor(groups);
    if (ipg > 8 * B) {
      throw new Ext4Error('EXT4_TOO_MANY_INODES', `${inp.inodesWanted} inodes do not fit ${groups} block groups of ${B}-byte blocks (at most ${8 * B * groups}); make the filesystem larger`);
    }
    if (ipg * groups > 0xffffffff) throw new Ext4Error('EXT4_TOO_MANY_INODES', 'more than 2^32 inodes');
    this.inodesPerGroup = ipg;
    this.inodesCount = ipg * groups;
    this.itableBlocks = (ipg * inp.inodeSize) / B;
    this.gdtBlocks = Math.ceil((groups * this.descSize) / B);
    let rsv = 0;
    if (inp.reserveGdt) {
      // e2fsprogs calc_reserved_gdt_blocks: enough for 1024x the blocks (capped at 2^32), at most one indirect block's worth.
      const max = blocks < 0xffffffff / 1024 ? blocks * 1024 : 0xffffffff;
      const rsvGroups = Math.ceil((max - this.firstDataBlock) / this.blocksPerGroup);
      rsv = Math.min(B / 4, Math.max(0, Math.ceil(rsvGroups / (B / this.descSize)) - this.gdtBlocks));
    }
    this.reservedGdtBlocks = rsv;
  }

  groupFirstBlock(g: number): number {
    return this.firstDataBlock + g * this.blocksPerGroup;
  }

  groupBlocks(g: number): number {
    return g === this.groupCount - 1 ? this.blocksCount - this.groupFirstBlock(g) : this.blocksPerGroup;
  }

  /** Blocks taken by a superblock copy and the descriptor table in group g (0 without a backup). */
  superOverhead(g: number): number {
    return hasSuper(g) ? 1 + this.gdtBlocks + this.reservedGdtBlocks : 0;
  }

  /** Metadata blocks of the whole filesystem (superblocks, descriptors, bitmaps, inode tables). */
  metadataBlocks(): number {
    let n = this.firstDataBlock;
    for (let g = 0; g < this.groupCount; g++) n += this.superOverhead(g) + 2 + this.itableBlocks;
    return n;
  }
}

/** sparse_super: backups live in groups 0, 1 and powers of 3, 5 and 7. */
export function hasSuper(g: number): boolean {
  if (g <= 1) return true;
  for (const base of [3, 5, 7]) {
    let p = base;
    while (p < g) p *= base;
    if (p === g) return true;
  }
  return false;
}

/**
 * A bitmap of used blocks plus a forward allocator over free runs. Files
 * get the first free run that holds them whole (contiguity first), and
 * fragment only when no run is large enough.
 */
export class BlockAllocator {
  readonly used: Uint8Array;
  private runs: { start: number; end: number }[] = [];
  private first = 0;

  constructor(readonly blocksCount: number) {
    this.used = new Uint8Array(Math.ceil(blocksCount / 8));
  }

  isUsed(b: number): boolean {
    return (this.used[b >>> 3]! & (1 << (b & 7))) !== 0;
  }

  mark(start: number, count: number): void {
    if (start < 0 || start + count > this.blocksCount) throw new RangeError(`block range ${start}+${count} outside the filesystem`);
    for (let b = start; b < start + count; b++) {
      if ((b & 7) === 0 && b + 8 <= start + count) {
        this.used[b >>> 3] = 0xff;
        b += 7;
        continue;
      }
      this.used[b >>> 3]! |= 1 << (b & 7);
    }
  }

  /** Rebuild the free-run list from the bitmap at or after block `from`. */
  scanFree(from: number): void {
    this.runs = [];
    let b = from;
    while (b < this.blocksCount) {
      if (this.used[b >>> 3] === 0xff && (b & 7) === 0) { b += 8; continue; }
      if (this.isUsed(b)) { b++; continue; }
      const s = b;
      while (b < this.blocksCount && !this.isUsed(b)) {
        if ((b & 7) === 0 && this.used[b >>> 3] === 0 && b + 8 <= this.blocksCount) b += 8; else b++;
      }
      this.runs.push({ start: s, end: b });
    }
    this.first = 0;
  }

  freeBlocks(): number {
    let n = 0;
    for (let i = this.first; i < this.runs.length; i++) n += this.runs[i]!.end - this.runs[i]!.start;
    return n;
  }

  /** One contiguous run of `count` blocks, or undefined when no free run is that long. */
  allocContiguous(count: number): number | undefined {
    for (let i = this.first; i < this.runs.length; i++) {
      const r = this.runs[i]!;
      if (r.end - r.start >= count) {
        const s = r.start;
        r.start += count;
        this.mark(s, count);
        while (this.first < this.runs.length && this.runs[this.first]!.start === this.runs[this.first]!.end) this.first++;
        return s;
      }
    }
    return undefined;
  }

  /** `count` blocks as few runs as possible: whole if a run fits, else first-fit pieces. */
  alloc(count: number): { start: number; count: number }[] {
    if (count === 0) return [];
    const s = this.allocContiguous(count);
    if (s !== undefined) return [{ start: s, count }];
    if (this.freeBlocks() < count) throw new Ext4Error('EXT4_NO_SPACE', 'filesystem full');
    const out: { start: number; count: number }[] = [];
    let left = count;
    while (left > 0) {
      const r = this.runs[this.first]!;
      const n = Math.min(left, r.end - r.start);
      out.push({ start: r.start, count: n });
      this.mark(r.start, n);
      r.start += n;
      left -= n;
      while (this.first < this.runs.length && this.runs[this.first]!.start === this.runs[this.first]!.end) this.first++;
    }
    return out;
  }
}
