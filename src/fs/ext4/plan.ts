/**
 * The writer's view of a staging tree: inode numbers and the few counts the
 * layout needs, kept in typed arrays indexed by inode number so that a tree
 * of 100,000 inodes costs a few MB here. What can be derived again cheaply
 * when an inode is written (a directory's entries and blocks, a file's data
 * ranges, xattr placement, paths for error messages) is not stored.
 *
 * Numbering: root is 2, lost+found 11 (EXT4_GOOD_OLD_FIRST_INO), the rest
 * from 12 in a depth-first walk that numbers each directory's entries
 * together (names in byte order), then descends into its subdirectories.
 */
import { createHash } from 'node:crypto';
import type { FileContent, Inode as TreeInode, StagingTree } from '../../tree/tree.js';
import { xattrsOf } from '../../tree/tree.js';
import { planDirectory, type DirEntryIn, type DirOptions, type DirPlan } from './dir.js';
import { Ext4Error } from './errors.js';
import {
  EXT4_GOOD_OLD_FIRST_INO, EXT4_GOOD_OLD_INODE_SIZE, EXT4_NAME_LEN, EXT4_ROOT_INO, EXTRA_ISIZE, FT_BLKDEV, FT_CHRDEV, FT_DIR, FT_FIFO,
  FT_REG_FILE, FT_SOCK, FT_SYMLINK,
} from './structs.js';
import { splitXattrs, toXattrItems, type XattrItem } from './xattr.js';

export const FT: Record<TreeInode['type'], number> = {
  file: FT_REG_FILE, dir: FT_DIR, chardev: FT_CHRDEV, blockdev: FT_BLKDEV, fifo: FT_FIFO, socket: FT_SOCK, symlink: FT_SYMLINK,
};

const LOST_FOUND = EXT4_GOOD_OLD_FIRST_INO;
/** lost+found gets 16 KiB of directory blocks, as mke2fs makes it (room for e2fsck to reconnect inodes). */
const LOST_FOUND_BYTES = 16384;
/** Most names an inode other than a directory may have (EXT4_LINK_MAX). */
const LINK_MAX = 65000;

/** Where an inode's extended attributes go: in the inode body, the rest in one (shared) block. */
export interface XattrPlacement { ibody: XattrItem[]; block: XattrItem[]; key?: string }
const NO_XATTRS: XattrPlacement = Object.freeze({ ibody: [], block: [] }) as XattrPlacement;

export function nameBytes(name: string, path: () => string): Uint8Array {
  const b = Buffer.from(name, 'utf8');
  if (b.length === 0 || name === '.' || name === '..') throw new Ext4Error('EXT4_BAD_NAME', `invalid directory entry name ${JSON.stringify(name)}`, { file: path() });
  if (b.length > EXT4_NAME_LEN) throw new Ext4Error('EXT4_NAME_TOO_LONG', `name of ${b.length} bytes exceeds ${EXT4_NAME_LEN}`, { file: path() });
  if (b.includes(0) || b.includes(0x2f)) throw new Ext4Error('EXT4_BAD_NAME', 'name contains NUL or "/"', { file: path() });
  return b;
}

/** Logical block ranges holding data of a file of `size` bytes (holes of sparse files skipped). */
export function dataRanges(c: FileContent, B: number): { lblk: number; count: number }[] {
  const total = Math.ceil(c.size / B);
  if (total === 0) return [];
  const rs = c.dataRanges?.();
  if (!rs) return [{ lblk: 0, count: total }];
  const out: { lblk: number; count: number }[] = [];
  for (const r of rs) {
    if (r.length <= 0) continue;
    const s = Math.floor(r.offset / B);
    const e = Math.min(total, Math.ceil((r.offset + r.length) / B));
    if (e <= s) continue;
    const last = out[out.length - 1];
    if (last && s <= last.lblk + last.count) last.count = Math.max(last.count, e - last.lblk);
    else out.push({ lblk: s, count: e - s });
  }
  return out;
}

export class InodePlan {
  /** Tree inode of each inode number (reserved numbers other than 2 and 11 are empty). */
  readonly inodes: TreeInode[] = [];
  /** Directory holding the inode (for a non-directory: the one holding its first name). */
  parent: Uint32Array;
  /** Names of a non-directory (its link count). */
  names: Uint32Array;
  /** Subdirectories of a directory. */
  subdirs: Uint32Array;
  /** Blocks of a directory. */
  dirBlocks: Uint32Array;
  /** Hash of the external-block part of the xattrs, for inodes that need a block (identical sets share one). */
  readonly xattrBlockKey = new Map<number, string>();
  lastIno = LOST_FOUND;
  /** lost+found was made up (the tree has none). */
  readonly syntheticLostFound: boolean;
  private readonly inoOf = new Map<number, number>();
  private readonly ibodySpace: number;

  constructor(readonly tree: StagingTree, readonly dirOpts: DirOptions, inodeSize: number, fsTime: number) {
    const cap = 1024;
    this.parent = new Uint32Array(cap);
    this.names = new Uint32Array(cap);
    this.subdirs = new Uint32Array(cap);
    this.dirBlocks = new Uint32Array(cap);
    this.ibodySpace = inodeSize - EXT4_GOOD_OLD_INODE_SIZE - EXTRA_ISIZE;
    const root = tree.root;
    this.register(EXT4_ROOT_INO, root, EXT4_ROOT_INO);
    const lf = root.entries!.get('lost+found');
    this.syntheticLostFound = !(lf && lf.type === 'dir');
    if (!this.syntheticLostFound) {
      this.register(LOST_FOUND, lf!, EXT4_ROOT_INO);
    } else {
      const t = { sec: fsTime, nsec: 0 };
      const synthetic: TreeInode = {
        id: -1, type: 'dir', mode: 0o700, uid: 0, gid: 0, atime: t, mtime: t, ctime: t, xattrs: new Map(), entries: new Map(), nlink: 2,
      };
      this.inodes[LOST_FOUND] = synthetic;
      this.parent[LOST_FOUND] = EXT4_ROOT_INO;
      this.subdirs[EXT4_ROOT_INO]++;
      this.dirBlocks[LOST_FOUND] = this.directory(LOST_FOUND).blocks;
    }
    this.walk();
  }

  private grow(ino: number): void {
    if (ino < this.parent.length) return;
    const cap = Math.max(ino + 1, this.parent.length * 2);
    const up = (a: Uint32Array) => { const b = new Uint32Array(cap); b.set(a); return b; };
    this.parent = up(this.parent);
    this.names = up(this.names);
    this.subdirs = up(this.subdirs);
    this.dirBlocks = up(this.dirBlocks);
  }

  private register(ino: number, inode: TreeInode, parent: number): void {
    this.grow(ino);
    this.inodes[ino] = inode;
    this.inoOf.set(inode.id, ino);
    this.parent[ino] = parent;
    const x = xattrsOf(inode);
    if (x) {
      const s = this.placeXattrs(ino, x);
      if (s.key !== undefined) this.xattrBlockKey.set(ino, s.key);
    }
  }

  /** Inode numbers in depth-first order, with the link counts and directory sizes. */
  private walk(): void {
    let next = LOST_FOUND + 1;
    const stack = [EXT4_ROOT_INO];
    let lostFoundSeen = this.syntheticLostFound;
    while (stack.length) {
      const dirIno = stack.pop()!;
      const subdirs: number[] = [];
      const sorted = this.sortedEntries(dirIno);
      for (const { name, inode: child } of sorted) {
        let ino = this.inoOf.get(child.id);
        if (child.type === 'dir') {
          if (ino === LOST_FOUND && dirIno === EXT4_ROOT_INO && !lostFoundSeen) {
            lostFoundSeen = true;
          } else if (ino !== undefined) {
            throw new Ext4Error('EXT4_LINK_LOOP', 'directory reachable twice (a directory hard link or a loop)', { file: this.childPath(dirIno, name) });
          } else {
            ino = next++;
            this.register(ino, child, dirIno);
          }
          this.parent[ino] = dirIno;
          subdirs.push(ino);
          this.subdirs[dirIno]++;
        } else if (ino !== undefined) {
          this.names[ino]++;
        } else {
          ino = next++;
          this.register(ino, child, dirIno);
          this.names[ino] = 1;
          if (child.type === 'symlink') {
            const t = Buffer.byteLength(child.target ?? '', 'utf8');
            const B = this.dirOpts.blockSize;
            if (t === 0 || t >= B) throw new Ext4Error('EXT4_BAD_SYMLINK', `symlink target of ${t} bytes (must be 1..${B - 1})`, { file: this.childPath(dirIno, name) });
          }
        }
      }
      this.dirBlocks[dirIno] = this.directoryOf(dirIno, this.toEntries(dirIno, sorted)).blocks;
      // Visit subdirectories in name order: push reversed onto the stack.
      for (let k = subdirs.length - 1; k >= 0; k--) stack.push(subdirs[k]!);
    }
    this.lastIno = next - 1;
    for (let ino = LOST_FOUND + 1; ino <= this.lastIno; ino++) {
      if (this.names[ino]! > LINK_MAX) throw new Ext4Error('EXT4_TOO_MANY_LINKS', `${this.names[ino]} hard links (ext4 allows ${LINK_MAX})`, { file: this.pathOf(ino) });
    }
  }

  /** A directory's entries, names in byte order (their encoded bytes checked as ext4 names). */
  private sortedEntries(dirIno: number): { name: string; bytes: Uint8Array; inode: TreeInode }[] {
    const entries = this.inodes[dirIno]!.entries!;
    const out: { name: string; bytes: Uint8Array; inode: TreeInode }[] = [];
    for (const [name, inode] of entries) out.push({ name, bytes: nameBytes(name, () => this.childPath(dirIno, name)), inode });
    out.sort((a, b) => Buffer.compare(a.bytes, b.bytes));
    return out;
  }

  /** The entries a directory's blocks hold (without "." and ".."), in block order before hashing. */
  private toEntries(dirIno: number, sorted: { bytes: Uint8Array; inode: TreeInode }[]): DirEntryIn[] {
    const out: DirEntryIn[] = [];
    if (dirIno === EXT4_ROOT_INO && this.syntheticLostFound) out.push({ name: Buffer.from('lost+found'), ino: LOST_FOUND, fileType: FT_DIR });
    for (const { bytes, inode } of sorted) out.push({ name: bytes, ino: this.inoOf.get(inode.id)!, fileType: FT[inode.type] });
    return out;
  }

  private directoryOf(dirIno: number, entries: DirEntryIn[]): DirPlan {
    const minBlocks = dirIno === LOST_FOUND ? Math.max(1, Math.floor(LOST_FOUND_BYTES / this.dirOpts.blockSize)) : 1;
    return planDirectory(entries, { ...this.dirOpts, minBlocks });
  }

  /** The block layout of a directory (made again when it is written: plans of every directory at once would be large). */
  directory(dirIno: number): DirPlan {
    return this.directoryOf(dirIno, this.toEntries(dirIno, this.sortedEntries(dirIno)));
  }

  /** In-inode and block xattrs of an inode (validated when the plan is made). */
  xattrs(ino: number): XattrPlacement {
    const x = xattrsOf(this.inodes[ino]!);
    return x ? this.placeXattrs(ino, x) : NO_XATTRS;
  }

  private placeXattrs(ino: number, x: ReadonlyMap<string, Uint8Array>): XattrPlacement {
    const B = this.dirOpts.blockSize;
    let s: XattrPlacement;
    try {
      s = splitXattrs(toXattrItems(x), this.ibodySpace, B);
    } catch (e) {
      if (e instanceof Ext4Error) throw new Ext4Error(e.code, e.message, { file: this.pathOf(ino) });
      throw e;
    }
    if (s.block.length === 0) return s;
    const h = createHash('sha256');
    for (const it of s.block) h.update(`${it.index}:${it.name.length}:`).update(it.name).update(`${it.value.length}:`).update(it.value);
    return { ...s, key: h.digest('base64') };
  }

  /** Inode number of a tree inode in this plan. */
  inoOfInode(inode: TreeInode): number | undefined {
    return this.inoOf.get(inode.id);
  }

  /** The path of an inode (its first name), for messages and placements; costs a scan of each parent directory. */
  pathOf(ino: number): string {
    if (ino === EXT4_ROOT_INO) return '/';
    if (ino === LOST_FOUND && this.syntheticLostFound) return '/lost+found';
    const inode = this.inodes[ino]!;
    const parent = this.parent[ino]!;
    for (const [name, child] of this.inodes[parent]!.entries!) if (child === inode) return this.childPath(parent, name);
    return `${this.pathOf(parent)}/?`;
  }

  private childPath(dirIno: number, name: string): string {
    const p = this.pathOf(dirIno);
    return `${p === '/' ? '' : p}/${name}`;
  }
}
