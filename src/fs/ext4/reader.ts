/**
 * A reader for ext2/3/4 images as e2fsprogs makes them: superblock and
 * group descriptors (32/64-byte, meta_bg), inodes, extent trees and
 * indirect block maps, linear and htree directories (read linearly: htree
 * interior blocks look like empty entries), inline data, symlinks and
 * xattrs (in-inode, external block, ea_inode).
 *
 * Every structure is bounds-checked: corrupt images give an Ext4Error
 * carrying the byte offset; loops (extent trees, directory entries,
 * symlinks, directory cycles) are bounded, and nothing is read outside the
 * image.
 */
import type { ByteSource } from '../../disk/target.js';
import type { Timespec } from '../../tree/tree.js';
import { Ext4Error } from './errors.js';
import {
  DirEntry2, EXT4_EXT_MAGIC, EXT4_EXTENTS_FL, EXT4_INLINE_DATA_FL, EXT4_ROOT_INO, EXT4_SUPER_MAGIC,
  EXT4_XATTR_MAGIC, EXT_INIT_MAX_LEN, Extent, ExtentHeader, ExtentIndex, GroupDescriptor32, GroupDescriptor64,
  INCOMPAT_64BIT, INCOMPAT_COMPRESSION, INCOMPAT_DIRDATA, INCOMPAT_ENCRYPT, INCOMPAT_FILETYPE, INCOMPAT_JOURNAL_DEV,
  INCOMPAT_META_BG, Inode as InodeStruct, RO_COMPAT_HUGE_FILE, RO_COMPAT_SPARSE_SUPER, S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT,
  S_IFREG, S_IFSOCK, SUPERBLOCK_OFFSET, Superblock, XattrEntry, XattrHeader, type InodeFields, type SuperblockFields,
  EXT4_HUGE_FILE_FL, EXT4_GOOD_OLD_INODE_SIZE,
} from './structs.js';
import { aclFromDisk, joinXattrName } from './xattr.js';
import { hasSuper } from './layout.js';

export type Ext4FileType = 'file' | 'dir' | 'symlink' | 'chardev' | 'blockdev' | 'fifo' | 'socket' | 'unknown';

export interface Ext4Stat {
  ino: number;
  type: Ext4FileType;
  /** Permission bits (07777). */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  links: number;
  atime: Timespec;
  mtime: Timespec;
  ctime: Timespec;
  crtime?: Timespec;
  flags: number;
  rdev?: { major: number; minor: number };
}

export interface Ext4DirEntry { name: string; ino: number; type: Ext4FileType }

interface Mapping { lblk: number; pblk: number; len: number; unwritten: boolean }

interface LoadedInode { ino: number; raw: Uint8Array; f: InodeFields; offset: number }

const TYPE_OF_MODE: Record<number, Ext4FileType> = {
  [S_IFREG]: 'file', [S_IFDIR]: 'dir', [S_IFLNK]: 'symlink', [S_IFCHR]: 'chardev', [S_IFBLK]: 'blockdev', [S_IFIFO]: 'fifo', [S_IFSOCK]: 'socket',
};
const TYPE_OF_FT: Ext4FileType[] = ['unknown', 'file', 'dir', 'chardev', 'blockdev', 'fifo', 'socket', 'symlink'];

const MAX_EXTENT_DEPTH = 5;
const MAX_SYMLINK_HOPS = 40;

function decodeTime(lo: number, extra: number | undefined): Timespec {
  const sec = lo | 0;
  if (extra === undefined) return { sec, nsec: 0 };
  return { sec: sec + (extra & 3) * 2 ** 32, nsec: extra >>> 2 };
}

/** Open an ext2/3/4 filesystem occupying `source` from byte 0. */
export async function openExt4(source: ByteSource, opts: { file?: string } = {}): Promise<Ext4Reader> {
  const r = new Ext4Reader(source, opts.file);
  await r.init();
  return r;
}

export class Ext4Reader {
  sb!: SuperblockFields;
  blockSize = 0;
  blocksCount = 0;
  inodeSize = 0;
  inodesPerGroup = 0;
  groupCount = 0;
  private itables: number[] = [];
  private desc64 = false;
  private cache = new Map<number, Uint8Array>();

  constructor(readonly source: ByteSource, readonly file?: string) {}

  err(code: string, message: string, offset?: number, extra: { field?: string; expected?: string; actual?: string } = {}): Ext4Error {
    return new Ext4Error(code, message, { file: this.file, offset, ...extra });
  }

  private async readAt(offset: number, length: number): Promise<Uint8Array> {
    if (offset < 0 || length < 0 || offset + length > this.source.size) {
      throw this.err('EXT4_OUTSIDE', `structure of ${length} bytes lies outside the ${this.source.size}-byte image`, offset);
    }
    const buf = new Uint8Array(length);
    const n = await this.source.read(buf, offset);
    if (n !== length) throw this.err('EXT4_SHORT_READ', 'image ended early', offset + n);
    return buf;
  }

  async readBlock(b: number, what = 'block'): Promise<Uint8Array> {
    if (!Number.isSafeInteger(b) || b < 0 || b >= this.blocksCount) {
      throw this.err('EXT4_BAD_BLOCK', `${what} number ${b} is outside the filesystem (${this.blocksCount} blocks)`, undefined, { field: what });
    }
    const hit = this.cache.get(b);
    if (hit) return hit;
    const data = await this.readAt(b * this.blockSize, this.blockSize);
    if (this.cache.size > 256) this.cache.clear();
    this.cache.set(b, data);
    return data;
  }

  async init(): Promise<void> {
    const raw = await this.readAt(SUPERBLOCK_OFFSET, 1024);
    const sb = Superblock.decode(raw, 0, { file: this.file, base: SUPERBLOCK_OFFSET });
    if (sb.s_magic !== EXT4_SUPER_MAGIC) {
      throw this.err('EXT4_BAD_MAGIC', 'not an ext2/3/4 filesystem', SUPERBLOCK_OFFSET + 0x38, { field: 's_magic', expected: '0xef53', actual: `0x${sb.s_magic.toString(16)}` });
    }
    this.sb = sb;
    if (sb.s_log_block_size > 6) throw this.err('EXT4_BAD_SUPER', `block size 2^${10 + sb.s_log_block_size} is not supported`, SUPERBLOCK_OFFSET + 0x18, { field: 's_log_block_size' });
    this.blockSize = 1024 << sb.s_log_block_size;
    const incompat = sb.s_feature_incompat;
    for (const [bit, name] of [[INCOMPAT_COMPRESSION, 'compression'], [INCOMPAT_JOURNAL_DEV, 'journal_dev'], [INCOMPAT_DIRDATA, 'dirdata'], [INCOMPAT_ENCRYPT, 'encrypt']] as const) {
      if (incompat & bit) throw this.err('EXT4_UNSUPPORTED', `filesystem feature ${name} is not supported`, SUPERBLOCK_OFFSET + 0x60, { field: 's_feature_incompat' });
    }
    this.desc64 = (incompat & INCOMPAT_64BIT) !== 0;
    this.blocksCount = sb.s_blocks_count_lo + (this.desc64 ? sb.s_blocks_count_hi * 2 ** 32 : 0);
    this.inodeSize = sb.s_rev_level === 0 ? EXT4_GOOD_OLD_INODE_SIZE : sb.s_inode_size;
    if (this.inodeSize < 128 || this.inodeSize > this.blockSize || (this.inodeSize & (this.inodeSize - 1))) {
      throw this.err('EXT4_BAD_SUPER', `inode size ${this.inodeSize} is invalid`, SUPERBLOCK_OFFSET + 0x58, { field: 's_inode_size' });
    }
    this.inodesPerGroup = sb.s_inodes_per_group;
    const bpg = sb.s_blocks_per_group;
    if (bpg === 0 || this.inodesPerGroup === 0 || this.blocksCount <= sb.s_first_data_block) {
      throw this.err('EXT4_BAD_SUPER', 'zero blocks or inodes per group', SUPERBLOCK_OFFSET + 0x20, { field: 's_blocks_per_group' });
    }
    this.groupCount = Math.ceil((this.blocksCount - sb.s_first_data_block) / bpg);
    if (this.groupCount * this.inodesPerGroup < sb.s_inodes_count || this.groupCount > 2 ** 26) {
      throw this.err('EXT4_BAD_SUPER', 'inode count does not match the group layout', SUPERBLOCK_OFFSET, { field: 's_inodes_count' });
    }
    const descSize = this.desc64 ? sb.s_desc_size : 32;
    if (descSize < 32 || descSize > 1024 || (descSize & (descSize - 1))) {
      throw this.err('EXT4_BAD_SUPER', `group descriptor size ${descSize} is invalid`, SUPERBLOCK_OFFSET + 0xfe, { field: 's_desc_size' });
    }
    const perBlock = this.blockSize / descSize;
    const fdb = sb.s_first_data_block;
    const metaBg = (incompat & INCOMPAT_META_BG) !== 0;
    this.itables = new Array(this.groupCount);
    for (let g = 0; g < this.groupCount; g++) {
      const descBlockIdx = Math.floor(g / perBlock);
      let blk: number;
      if (metaBg && descBlockIdx >= sb.s_first_meta_bg) {
        // meta_bg: each meta group's descriptors live in its first group (after a superblock backup, if any).
        const first = descBlockIdx * perBlock;
        blk = fdb + first * bpg + (hasSuperCopy(first, sb) ? 1 : 0);
      } else {
        // The table follows the block holding the primary superblock (block 1 of 1 KiB filesystems, even under bigalloc).
        blk = Math.floor(SUPERBLOCK_OFFSET / this.blockSize) + 1 + descBlockIdx;
      }
      const block = await this.readBlock(blk, 'group descriptor block');
      const at = (g % perBlock) * descSize;
      const d = this.desc64 && descSize >= 64 ? GroupDescriptor64.decode(block, at) : GroupDescriptor32.decode(block, at);
      const hi = 'bg_inode_table_hi' in d ? (d as ReturnType<typeof GroupDescriptor64.decode>).bg_inode_table_hi : 0;
      this.itables[g] = d.bg_inode_table_lo + hi * 2 ** 32;
    }
  }

  get hasFiletype(): boolean { return (this.sb.s_feature_incompat & INCOMPAT_FILETYPE) !== 0; }

  async inode(ino: number): Promise<LoadedInode> {
    if (!Number.isInteger(ino) || ino < 1 || ino > this.sb.s_inodes_count) {
      throw this.err('EXT4_BAD_INODE', `inode number ${ino} is out of range (1..${this.sb.s_inodes_count})`);
    }
    const g = Math.floor((ino - 1) / this.inodesPerGroup);
    const idx = (ino - 1) % this.inodesPerGroup;
    const byte = idx * this.inodeSize;
    const blk = this.itables[g]! + Math.floor(byte / this.blockSize);
    const block = await this.readBlock(blk, `inode table of group ${g}`);
    const at = byte % this.blockSize;
    const raw = block.slice(at, at + this.inodeSize);
    const padded = raw.length >= 160 ? raw : Uint8Array.from({ length: 160 }, (_, i) => raw[i] ?? 0);
    const f = InodeStruct.decode(padded, 0);
    return { ino, raw, f, offset: blk * this.blockSize + at };
  }

  private extra(n: LoadedInode): number {
    if (this.inodeSize <= EXT4_GOOD_OLD_INODE_SIZE) return 0;
    const e = n.f.i_extra_isize;
    return e + EXT4_GOOD_OLD_INODE_SIZE <= this.inodeSize ? e : 0;
  }

  async stat(ino: number): Promise<Ext4Stat> {
    return this.statOf(await this.inode(ino));
  }

  statOf(n: LoadedInode): Ext4Stat {
    const f = n.f;
    const extra = this.extra(n);
    const has = (off: number) => extra >= off + 4 - EXT4_GOOD_OLD_INODE_SIZE;
    const type = TYPE_OF_MODE[f.i_mode & S_IFMT] ?? 'unknown';
    const st: Ext4Stat = {
      ino: n.ino, type, mode: f.i_mode & 0o7777,
      uid: f.i_uid | (f.i_uid_high << 16), gid: f.i_gid | (f.i_gid_high << 16),
      size: this.sizeOf(n), links: f.i_links_count, flags: f.i_flags,
      ctime: decodeTime(f.i_ctime, has(0x84) ? f.i_ctime_extra : undefined),
      mtime: decodeTime(f.i_mtime, has(0x88) ? f.i_mtime_extra : undefined),
      atime: decodeTime(f.i_atime, has(0x8c) ? f.i_atime_extra : undefined),
    };
    if (has(0x94)) st.crtime = decodeTime(f.i_crtime, f.i_crtime_extra);
    if (type === 'chardev' || type === 'blockdev') {
      const dv = new DataView(n.raw.buffer, n.raw.byteOffset + 0x28, 8);
      const old = dv.getUint32(0, true);
      if (old !== 0) st.rdev = { major: (old >>> 8) & 0xff, minor: old & 0xff };
      else {
        const nw = dv.getUint32(4, true);
        st.rdev = { major: (nw >>> 8) & 0xfff, minor: (nw & 0xff) | ((nw >>> 12) & 0xfff00) };
      }
    }
    return st;
  }

  private sizeOf(n: LoadedInode): number {
    return n.f.i_size_lo + n.f.i_size_high * 2 ** 32;
  }

  /** Logical → physical mappings of an inode's data (extent tree or indirect block map). */
  async mappings(n: LoadedInode): Promise<Mapping[]> {
    const out: Mapping[] = [];
    const maxBlocks = Math.ceil(this.sizeOf(n) / this.blockSize) + 1;
    if (n.f.i_flags & EXT4_EXTENTS_FL) {
      const visited = new Set<number>();
      await this.walkExtents(n, n.raw.subarray(0x28, 0x28 + 60), n.offset + 0x28, -1, out, visited, 0);
    } else if (!(n.f.i_flags & EXT4_INLINE_DATA_FL)) {
      await this.walkBlockMap(n, out, maxBlocks);
    }
    return out;
  }

  private async walkExtents(n: LoadedInode, node: Uint8Array, offset: number, expectDepth: number, out: Mapping[], visited: Set<number>, level: number): Promise<void> {
    const h = ExtentHeader.decode(node, 0, { file: this.file, base: offset });
    if (h.eh_magic !== EXT4_EXT_MAGIC) {
      throw this.err('EXT4_BAD_EXTENT', `bad extent header magic in inode ${n.ino}`, offset, { field: 'eh_magic', expected: '0xf30a', actual: `0x${h.eh_magic.toString(16)}` });
    }
    const cap = Math.floor((node.length - 12) / 12);
    if (h.eh_entries > h.eh_max || h.eh_max > cap) {
      throw this.err('EXT4_BAD_EXTENT', `extent node of inode ${n.ino} claims ${h.eh_entries}/${h.eh_max} entries (room for ${cap})`, offset, { field: 'eh_entries' });
    }
    if (h.eh_depth > MAX_EXTENT_DEPTH || (expectDepth >= 0 && h.eh_depth !== expectDepth) || level > MAX_EXTENT_DEPTH) {
      throw this.err('EXT4_BAD_EXTENT', `extent tree of inode ${n.ino} is too deep or inconsistent (depth ${h.eh_depth})`, offset, { field: 'eh_depth' });
    }
    for (let i = 0; i < h.eh_entries; i++) {
      const at = 12 + 12 * i;
      if (h.eh_depth === 0) {
        const e = Extent.decode(node, at);
        const unwritten = e.ee_len > EXT_INIT_MAX_LEN;
        const len = unwritten ? e.ee_len - EXT_INIT_MAX_LEN : e.ee_len;
        const pblk = e.ee_start_lo + e.ee_start_hi * 2 ** 32;
        if (len > 0 && (pblk + len > this.blocksCount || pblk < this.sb.s_first_data_block)) {
          throw this.err('EXT4_BAD_EXTENT', `extent of inode ${n.ino} points outside the filesystem (block ${pblk}+${len})`, offset + at, { field: 'ee_start' });
        }
        out.push({ lblk: e.ee_block, pblk, len, unwritten });
      } else {
        const x = ExtentIndex.decode(node, at);
        const leaf = x.ei_leaf_lo + x.ei_leaf_hi * 2 ** 32;
        if (visited.has(leaf)) throw this.err('EXT4_BAD_EXTENT', `extent tree of inode ${n.ino} revisits block ${leaf}`, offset + at, { field: 'ei_leaf' });
        visited.add(leaf);
        const child = await this.readBlock(leaf, `extent block of inode ${n.ino}`);
        await this.walkExtents(n, child, leaf * this.blockSize, h.eh_depth - 1, out, visited, level + 1);
      }
    }
  }

  private async walkBlockMap(n: LoadedInode, out: Mapping[], maxBlocks: number): Promise<void> {
    const dv = new DataView(n.raw.buffer, n.raw.byteOffset + 0x28, 60);
    const per = this.blockSize / 4;
    let lblk = 0;
    const push = (pblk: number, at: number) => {
      if (pblk !== 0) {
        if (pblk >= this.blocksCount) throw this.err('EXT4_BAD_BLOCKMAP', `block map of inode ${n.ino} points outside the filesystem (block ${pblk})`, at);
        const last = out[out.length - 1];
        if (last && last.lblk + last.len === lblk && last.pblk + last.len === pblk) last.len++;
        else out.push({ lblk, pblk, len: 1, unwritten: false });
      }
      lblk++;
    };
    for (let i = 0; i < 12 && lblk < maxBlocks; i++) push(dv.getUint32(4 * i, true), n.offset + 0x28 + 4 * i);
    const indirect = async (blk: number, depth: number, span: number): Promise<void> => {
      if (blk === 0) { lblk += span; return; }
      const data = await this.readBlock(blk, `indirect block of inode ${n.ino}`);
      const bv = new DataView(data.buffer, data.byteOffset, data.length);
      for (let i = 0; i < per && lblk < maxBlocks; i++) {
        const p = bv.getUint32(4 * i, true);
        if (depth === 1) push(p, blk * this.blockSize + 4 * i);
        else await indirect(p, depth - 1, span / per);
      }
    };
    for (let d = 1; d <= 3 && lblk < maxBlocks; d++) {
      const p = dv.getUint32(4 * (11 + d), true);
      if (p !== 0 && p >= this.blocksCount) throw this.err('EXT4_BAD_BLOCKMAP', `indirect block of inode ${n.ino} outside the filesystem`, n.offset + 0x28 + 4 * (11 + d));
      await indirect(p, d, per ** d);
    }
  }

  /** Read `length` bytes of an inode's data at `position` (holes and unwritten extents read as zeros). */
  async read(n: LoadedInode, position: number, length: number, maps?: Mapping[]): Promise<Uint8Array> {
    const size = this.sizeOf(n);
    const end = Math.min(size, position + length);
    const out = new Uint8Array(Math.max(0, end - position));
    if (out.length === 0) return out;
    if (n.f.i_flags & EXT4_INLINE_DATA_FL) {
      const inline = await this.inlineData(n);
      out.set(inline.subarray(position, end));
      return out;
    }
    const B = this.blockSize;
    for (const m of maps ?? await this.mappings(n)) {
      if (m.unwritten) continue;
      const s = Math.max(position, m.lblk * B);
      const e = Math.min(end, (m.lblk + m.len) * B);
      if (e <= s) continue;
      const phys = m.pblk * B + (s - m.lblk * B);
      out.set(await this.readAt(phys, e - s), s - position);
    }
    return out;
  }

  /** Inline data: i_block (60 bytes) followed by the system.data xattr value. */
  private async inlineData(n: LoadedInode): Promise<Uint8Array> {
    const head = n.raw.subarray(0x28, 0x28 + 60);
    const more = (await this.xattrsOf(n, true)).get('system.data') ?? new Uint8Array(0);
    const all = new Uint8Array(60 + more.length);
    all.set(head);
    all.set(more, 60);
    return all;
  }

  async readlink(n: LoadedInode): Promise<string> {
    const size = this.sizeOf(n);
    if (size > 65536) throw this.err('EXT4_BAD_SYMLINK', `symlink of inode ${n.ino} is ${size} bytes long`, n.offset + 4);
    // As e2fsprogs (ext2fs_is_fast_symlink): any target shorter than i_block lives in i_block.
    const fast = !(n.f.i_flags & EXT4_INLINE_DATA_FL) && size < 60;
    const bytes = fast ? n.raw.slice(0x28, 0x28 + size) : await this.read(n, 0, size);
    return Buffer.from(bytes).toString('utf8');
  }

  /** Directory entries (without "." and ".."). */
  async readdir(n: LoadedInode): Promise<Ext4DirEntry[]> {
    if ((n.f.i_mode & S_IFMT) !== S_IFDIR) throw this.err('EXT4_NOT_DIR', `inode ${n.ino} is not a directory`, n.offset);
    const out: Ext4DirEntry[] = [];
    if (n.f.i_flags & EXT4_INLINE_DATA_FL) {
      const data = await this.inlineData(n);
      const parent = new DataView(data.buffer).getUint32(0, true);
      out.push({ name: '..', ino: parent, type: 'dir' });
      this.parseDirBlock(data.subarray(4, 60), n, n.offset + 0x2c, out);
      if (data.length > 60) this.parseDirBlock(data.subarray(60), n, n.offset, out);
    } else {
      const size = this.sizeOf(n);
      const B = this.blockSize;
      if (size > 2 ** 32) throw this.err('EXT4_BAD_DIR', `directory inode ${n.ino} claims ${size} bytes`, n.offset + 4);
      for (const m of await this.mappings(n)) {
        for (let k = 0; k < m.len && (m.lblk + k) * B < size; k++) {
          if (m.unwritten) continue;
          const blk = await this.readBlock(m.pblk + k, `directory block of inode ${n.ino}`);
          this.parseDirBlock(blk, n, (m.pblk + k) * B, out);
        }
      }
    }
    return out.filter((e) => e.name !== '.' && e.name !== '..');
  }

  private parseDirBlock(blk: Uint8Array, n: LoadedInode, base: number, out: Ext4DirEntry[]): void {
    let at = 0;
    while (at + 8 <= blk.length) {
      const e = DirEntry2.decode(blk, at);
      let rec = e.rec_len;
      if (this.blockSize >= 65536 && (rec === 65535 || rec === 0)) rec = 65536;
      if (rec < 8 || rec % 4 !== 0 || at + rec > blk.length) {
        throw this.err('EXT4_BAD_DIR', `bad directory entry length ${rec} in inode ${n.ino}`, base + at, { field: 'rec_len' });
      }
      const nameLen = this.hasFiletype ? e.name_len : e.name_len | (e.file_type << 8);
      if (e.inode !== 0) {
        if (8 + nameLen > rec) throw this.err('EXT4_BAD_DIR', `directory entry name overruns its record in inode ${n.ino}`, base + at, { field: 'name_len' });
        if (e.inode > this.sb.s_inodes_count) throw this.err('EXT4_BAD_DIR', `directory entry points at inode ${e.inode}, beyond the last`, base + at, { field: 'inode' });
        const name = Buffer.from(blk.subarray(at + 8, at + 8 + nameLen)).toString('utf8');
        out.push({ name, ino: e.inode, type: this.hasFiletype ? TYPE_OF_FT[e.file_type & 7] ?? 'unknown' : 'unknown' });
      }
      at += rec;
    }
  }

  /** All extended attributes (full names; POSIX ACLs in the xattr API form). */
  async xattrs(n: LoadedInode): Promise<Map<string, Uint8Array>> {
    const m = await this.xattrsOf(n, false);
    m.delete('system.data');
    return m;
  }

  private async xattrsOf(n: LoadedInode, ibodyOnly: boolean): Promise<Map<string, Uint8Array>> {
    const out = new Map<string, Uint8Array>();
    const extra = this.extra(n);
    const start = EXT4_GOOD_OLD_INODE_SIZE + extra;
    if (extra > 0 && start + 4 <= this.inodeSize) {
      const dv = new DataView(n.raw.buffer, n.raw.byteOffset);
      if (dv.getUint32(start, true) === EXT4_XATTR_MAGIC) {
        await this.parseXattrs(n.raw.subarray(start + 4), 0, n.offset + start + 4, out, n);
      }
    }
    const acl = n.f.i_file_acl_lo + (this.desc64 ? n.f.i_file_acl_high * 2 ** 32 : 0);
    if (!ibodyOnly && acl !== 0) {
      const blk = await this.readBlock(acl, `xattr block of inode ${n.ino}`);
      const h = XattrHeader.decode(blk, 0);
      if (h.h_magic !== EXT4_XATTR_MAGIC) {
        throw this.err('EXT4_BAD_XATTR', `bad xattr block magic for inode ${n.ino}`, acl * this.blockSize, { field: 'h_magic', expected: '0xea020000', actual: `0x${h.h_magic.toString(16)}` });
      }
      await this.parseXattrs(blk.subarray(32), -32, acl * this.blockSize + 32, out, n);
    }
    return out;
  }

  /** Entries from `region`; value offsets are relative to region start + `valueShift` (block: block start). */
  private async parseXattrs(region: Uint8Array, valueShift: number, base: number, out: Map<string, Uint8Array>, n: LoadedInode): Promise<void> {
    let at = 0;
    let count = 0;
    while (at + 4 <= region.length) {
      const dv = new DataView(region.buffer, region.byteOffset + at, Math.min(16, region.length - at));
      if (dv.getUint32(0, true) === 0) break;
      if (at + 16 > region.length || ++count > 4096) throw this.err('EXT4_BAD_XATTR', `xattr entries of inode ${n.ino} overrun their area`, base + at);
      const e = XattrEntry.decode(region, at);
      if (at + 16 + e.e_name_len > region.length) throw this.err('EXT4_BAD_XATTR', `xattr name overruns its area in inode ${n.ino}`, base + at, { field: 'e_name_len' });
      const name = joinXattrName(e.e_name_index, Buffer.from(region.subarray(at + 16, at + 16 + e.e_name_len)).toString('latin1'));
      let value: Uint8Array;
      if (e.e_value_inum !== 0) {
        const vi = await this.inode(e.e_value_inum);
        if (e.e_value_size > 64 << 20) throw this.err('EXT4_BAD_XATTR', 'xattr value too large', base + at, { field: 'e_value_size' });
        value = await this.read(vi, 0, e.e_value_size);
      } else {
        const s = e.e_value_offs + valueShift;
        if (s < 0 || s + e.e_value_size > region.length) {
          throw this.err('EXT4_BAD_XATTR', `xattr value of ${name} lies outside its area in inode ${n.ino}`, base + at, { field: 'e_value_offs' });
        }
        value = region.slice(s, s + e.e_value_size);
      }
      if (e.e_name_index === 2 || e.e_name_index === 3) value = aclFromDisk(value);
      out.set(name, value);
      at += (16 + e.e_name_len + 3) & ~3;
    }
  }

  /** Resolve a path (symlinks followed chroot-style, at most 40 hops). */
  async lookup(path: string, opts: { follow?: boolean } = {}): Promise<LoadedInode> {
    const follow = opts.follow ?? true;
    const queue = path.split('/').filter((p) => p && p !== '.');
    const stack: LoadedInode[] = [await this.inode(EXT4_ROOT_INO)];
    let hops = 0;
    while (queue.length) {
      const name = queue.shift()!;
      const cur = stack[stack.length - 1]!;
      if (name === '..') { if (stack.length > 1) stack.pop(); continue; }
      const entries = await this.readdir(cur);
      const hit = entries.find((e) => e.name === name);
      if (!hit) throw this.err('EXT4_NOT_FOUND', `no such file or directory: ${path}`);
      const next = await this.inode(hit.ino);
      if ((next.f.i_mode & S_IFMT) === S_IFLNK && (queue.length > 0 || follow)) {
        if (++hops > MAX_SYMLINK_HOPS) throw this.err('EXT4_LINK_LOOP', `too many levels of symbolic links: ${path}`);
        const t = await this.readlink(next);
        if (t.startsWith('/')) stack.length = 1;
        queue.unshift(...t.split('/').filter((p) => p && p !== '.'));
        continue;
      }
      stack.push(next);
    }
    return stack[stack.length - 1]!;
  }

  /** Depth-first walk from `path` (names in byte order), each directory visited once. */
  async *walk(path = '/'): AsyncGenerator<{ path: string; inode: LoadedInode; stat: Ext4Stat }> {
    const start = await this.lookup(path);
    const seen = new Set<number>();
    const root = path === '/' ? '' : '/' + path.split('/').filter(Boolean).join('/');
    const stack: { path: string; inode: LoadedInode }[] = [{ path: root || '/', inode: start }];
    while (stack.length) {
      const cur = stack.pop()!;
      const st = this.statOf(cur.inode);
      yield { path: cur.path, inode: cur.inode, stat: st };
      if (st.type !== 'dir') continue;
      if (seen.has(cur.inode.ino)) throw this.err('EXT4_LINK_LOOP', `directory inode ${cur.inode.ino} reached twice`, cur.inode.offset);
      seen.add(cur.inode.ino);
      const entries = (await this.readdir(cur.inode)).sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)));
      for (let i = entries.length - 1; i >= 0; i--) {
        const e = entries[i]!;
        stack.push({ path: `${cur.path === '/' ? '' : cur.path}/${e.name}`, inode: await this.inode(e.ino) });
      }
    }
  }

  /** i_blocks in 512-byte units (for callers that want du-like numbers). */
  sectors(n: LoadedInode): number {
    const lo = n.f.i_blocks_lo + ((this.sb.s_feature_ro_compat & RO_COMPAT_HUGE_FILE) ? n.f.i_blocks_high * 2 ** 32 : 0);
    return n.f.i_flags & EXT4_HUGE_FILE_FL ? lo * (this.blockSize / 512) : lo;
  }
}

function hasSuperCopy(g: number, sb: SuperblockFields): boolean {
  return !(sb.s_feature_ro_compat & RO_COMPAT_SPARSE_SUPER) || hasSuper(g);
}

export type { LoadedInode, Mapping };
