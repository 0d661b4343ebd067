/**
 * ext4 metadata checksum rules (Documentation/filesystems/ext4/checksums.rst).
 * All crc32c values start from the filesystem seed: crc32c(~0, s_uuid), or
 * s_checksum_seed under INCOMPAT_CSUM_SEED. Per-inode structures (extent
 * blocks, directory blocks) start from the inode seed
 * crc32c(crc32c(fsSeed, inum), i_generation).
 */
import { crc16, crc32c, crc32cU32, crc32cU64 } from './crc.js';
import {
  BG_CHECKSUM_OFFSET, DIR_TAIL_SIZE, EXT4_GOOD_OLD_INODE_SIZE, INODE_CHECKSUM_HI, INODE_CHECKSUM_LO,
} from './structs.js';

const le32 = (b: Uint8Array, o: number) => (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;
const put32 = (b: Uint8Array, o: number, v: number) => {
  b[o] = v & 0xff; b[o + 1] = (v >>> 8) & 0xff; b[o + 2] = (v >>> 16) & 0xff; b[o + 3] = (v >>> 24) & 0xff;
};
const put16 = (b: Uint8Array, o: number, v: number) => { b[o] = v & 0xff; b[o + 1] = (v >>> 8) & 0xff; };

export function fsCsumSeed(uuid: Uint8Array): number {
  return crc32c(0xffffffff, uuid);
}

export function inodeCsumSeed(fsSeed: number, ino: number, generation: number): number {
  return crc32cU32(crc32cU32(fsSeed, ino), generation);
}

/** s_checksum: crc32c of the first 1020 bytes of the superblock. */
export function superblockCsum(sb: Uint8Array): number {
  return crc32c(0xffffffff, sb, 0, 0x3fc);
}

/** bg_checksum under metadata_csum: low 16 bits of crc32c(seed, group, descriptor without the field). */
export function groupDescCsum32c(fsSeed: number, group: number, desc: Uint8Array): number {
  let c = crc32cU32(fsSeed, group);
  c = crc32c(c, desc, 0, BG_CHECKSUM_OFFSET);
  c = crc32c(c, new Uint8Array(2));
  if (desc.length > BG_CHECKSUM_OFFSET + 2) c = crc32c(c, desc, BG_CHECKSUM_OFFSET + 2, desc.length);
  return c & 0xffff;
}

/** bg_checksum under gdt_csum (uninit_bg): crc16 over uuid, group and descriptor without the field. */
export function groupDescCsum16(uuid: Uint8Array, group: number, desc: Uint8Array): number {
  let c = crc16(0xffff, uuid);
  const g = new Uint8Array(4);
  put32(g, 0, group);
  c = crc16(c, g);
  c = crc16(c, desc, 0, BG_CHECKSUM_OFFSET);
  if (desc.length > BG_CHECKSUM_OFFSET + 2) c = crc16(c, desc, BG_CHECKSUM_OFFSET + 2, desc.length);
  return c;
}

/**
 * Inode checksum over the whole on-disk inode with both checksum fields
 * taken as zero. `raw` is inode_size bytes; the hi half exists only when
 * i_extra_isize covers it.
 */
export function inodeCsum(fsSeed: number, ino: number, raw: Uint8Array): number {
  const gen = le32(raw, 0x64);
  const extra = raw.length > EXT4_GOOD_OLD_INODE_SIZE ? raw[0x80]! | (raw[0x81]! << 8) : 0;
  const hasHi = extra >= 4;
  let c = inodeCsumSeed(fsSeed, ino, gen);
  const zero = new Uint8Array(2);
  c = crc32c(c, raw, 0, INODE_CHECKSUM_LO);
  c = crc32c(c, zero);
  c = crc32c(c, raw, INODE_CHECKSUM_LO + 2, EXT4_GOOD_OLD_INODE_SIZE);
  if (raw.length > EXT4_GOOD_OLD_INODE_SIZE) {
    if (hasHi) {
      c = crc32c(c, raw, EXT4_GOOD_OLD_INODE_SIZE, INODE_CHECKSUM_HI);
      c = crc32c(c, zero);
      c = crc32c(c, raw, INODE_CHECKSUM_HI + 2, raw.length);
    } else {
      c = crc32c(c, raw, EXT4_GOOD_OLD_INODE_SIZE, raw.length);
    }
  }
  return c;
}

export function setInodeCsum(fsSeed: number, ino: number, raw: Uint8Array): void {
  const c = inodeCsum(fsSeed, ino, raw);
  put16(raw, INODE_CHECKSUM_LO, c & 0xffff);
  const extra = raw.length > EXT4_GOOD_OLD_INODE_SIZE ? raw[0x80]! | (raw[0x81]! << 8) : 0;
  if (extra >= 4) put16(raw, INODE_CHECKSUM_HI, c >>> 16);
}

export function inodeCsumMatches(fsSeed: number, ino: number, raw: Uint8Array): boolean {
  const c = inodeCsum(fsSeed, ino, raw);
  const lo = raw[INODE_CHECKSUM_LO]! | (raw[INODE_CHECKSUM_LO + 1]! << 8);
  const extra = raw.length > EXT4_GOOD_OLD_INODE_SIZE ? raw[0x80]! | (raw[0x81]! << 8) : 0;
  if (extra >= 4) {
    const hi = raw[INODE_CHECKSUM_HI]! | (raw[INODE_CHECKSUM_HI + 1]! << 8);
    return ((hi << 16) | lo) >>> 0 === c;
  }
  return lo === (c & 0xffff);
}

/** Extent tree block: crc32c(inode seed, block up to the tail), stored in the 4 bytes after eh_max entries. */
export function extentBlockCsum(inodeSeed: number, block: Uint8Array, tailOffset: number): number {
  return crc32c(inodeSeed, block, 0, tailOffset);
}

/** Directory leaf block: crc32c(inode seed, block minus the 12-byte tail), stored in the tail. */
export function dirBlockCsum(inodeSeed: number, block: Uint8Array): number {
  return crc32c(inodeSeed, block, 0, block.length - DIR_TAIL_SIZE);
}

/** htree root/node: crc32c over the block up to the last used dx_entry, then the tail's reserved word, then a zero checksum. */
export function dxBlockCsum(inodeSeed: number, block: Uint8Array, countOffset: number, count: number, tailOffset: number): number {
  let c = crc32c(inodeSeed, block, 0, countOffset + count * 8);
  c = crc32c(c, block, tailOffset, tailOffset + 4);
  return crc32c(c, new Uint8Array(4));
}

/** Block and inode bitmaps: crc32c(fs seed, bitmap bytes), split into lo/hi 16-bit descriptor fields. */
export function bitmapCsum(fsSeed: number, bitmap: Uint8Array, bytes: number): number {
  return crc32c(fsSeed, bitmap, 0, bytes);
}

/** External xattr block: crc32c(fs seed, le64 block number, block with h_checksum zero). */
export function xattrBlockCsum(fsSeed: number, blockNr: number, block: Uint8Array): number {
  let c = crc32cU64(fsSeed, blockNr);
  c = crc32c(c, block, 0, 16);
  c = crc32c(c, new Uint8Array(4));
  return crc32c(c, block, 20, block.length);
}

export { le32, put32, put16 };
