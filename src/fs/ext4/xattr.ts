/**
 * Extended attributes (Documentation/filesystems/ext4/attributes.rst): a
 * list of ext4_xattr_entry records followed (from the far end) by their
 * values, either in the inode body after i_extra_isize or in one external
 * block shared by inodes with identical attributes. POSIX ACLs are stored
 * in ext4's compact form, converted from the xattr API form.
 */
import { Ext4Error } from './errors.js';
import { xattrBlockHash, xattrEntryHash } from './hash.js';
import { EXT4_XATTR_MAGIC, XATTR_PREFIXES, XattrEntry, XattrHeader } from './structs.js';

export interface XattrItem { index: number; name: Uint8Array; value: Uint8Array }

const ACL_USER_OBJ = 0x01, ACL_USER = 0x02, ACL_GROUP_OBJ = 0x04, ACL_GROUP = 0x08, ACL_MASK = 0x10, ACL_OTHER = 0x20;

/** Split a full attribute name into its e_name_index and suffix (the longest known prefix wins). */
export function splitXattrName(full: string): { index: number; suffix: string } {
  for (const [index, prefix] of XATTR_PREFIXES) {
    if (prefix.endsWith('.') ? full.startsWith(prefix) && full.length > prefix.length : full === prefix) {
      return { index, suffix: full.slice(prefix.length) };
    }
  }
  throw new Ext4Error('EXT4_BAD_XATTR', `unsupported extended attribute namespace: ${full}`);
}

export function joinXattrName(index: number, suffix: string): string {
  const p = XATTR_PREFIXES.find(([i]) => i === index);
  return p ? p[1] + suffix : `unknown${index}.${suffix}`;
}

/** posix_acl_xattr (version 2, 8-byte entries) → ext4_acl (version 1, short entries for *_OBJ/MASK/OTHER). */
export function aclToDisk(v: Uint8Array, name: string): Uint8Array {
  const dv = new DataView(v.buffer, v.byteOffset, v.byteLength);
  if (v.length < 4 || (v.length - 4) % 8 !== 0 || dv.getUint32(0, true) !== 2) {
    throw new Ext4Error('EXT4_BAD_XATTR', `malformed POSIX ACL in ${name}`);
  }
  const parts: number[] = [1, 0, 0, 0];
  for (let o = 4; o < v.length; o += 8) {
    const tag = dv.getUint16(o, true), perm = dv.getUint16(o + 2, true), id = dv.getUint32(o + 4, true);
    parts.push(tag & 0xff, tag >> 8, perm & 0xff, perm >> 8);
    if (tag === ACL_USER || tag === ACL_GROUP) parts.push(id & 0xff, (id >>> 8) & 0xff, (id >>> 16) & 0xff, id >>> 24);
    else if (![ACL_USER_OBJ, ACL_GROUP_OBJ, ACL_MASK, ACL_OTHER].includes(tag)) {
      throw new Ext4Error('EXT4_BAD_XATTR', `unknown ACL tag ${tag} in ${name}`);
    }
  }
  return Uint8Array.from(parts);
}

/** ext4_acl → posix_acl_xattr, for readers. */
export function aclFromDisk(v: Uint8Array): Uint8Array {
  const dv = new DataView(v.buffer, v.byteOffset, v.byteLength);
  if (v.length < 4 || dv.getUint32(0, true) !== 1) return v;
  const out: number[] = [2, 0, 0, 0];
  let o = 4;
  while (o + 4 <= v.length) {
    const tag = dv.getUint16(o, true), perm = dv.getUint16(o + 2, true);
    let id = 0xffffffff;
    o += 4;
    if (tag === ACL_USER || tag === ACL_GROUP) {
      if (o + 4 > v.length) break;
      id = dv.getUint32(o, true);
      o += 4;
    }
    out.push(tag & 0xff, tag >> 8, perm & 0xff, perm >> 8, id & 0xff, (id >>> 8) & 0xff, (id >>> 16) & 0xff, id >>> 24);
  }
  return Uint8Array.from(out);
}

/** The attributes of one inode in on-disk order (index, name length, name), ACLs converted. */
export function toXattrItems(xattrs: ReadonlyMap<string, Uint8Array>): XattrItem[] {
  const items: XattrItem[] = [];
  for (const [full, value] of xattrs) {
    const { index, suffix } = splitXattrName(full);
    const name = Buffer.from(suffix, 'utf8');
    if (name.length > 255) throw new Ext4Error('EXT4_BAD_XATTR', `xattr name longer than 255 bytes: ${full.slice(0, 40)}…`);
    items.push({ index, name, value: index === 2 || index === 3 ? aclToDisk(value, full) : value });
  }
  items.sort((a, b) => a.index - b.index || a.name.length - b.name.length || Buffer.compare(a.name, b.name));
  return items;
}

const pad4 = (n: number) => (n + 3) & ~3;
export const entrySize = (it: XattrItem) => 16 + pad4(it.name.length);
export const valueSize = (it: XattrItem) => pad4(it.value.length);

/**
 * Lay entries and values into `region` (entries from `entriesAt`, values
 * from the region's end downwards). Offsets are relative to `valueBase`.
 */
function layOut(items: XattrItem[], region: Uint8Array, entriesAt: number, valueBase: number): number[] {
  let e = entriesAt;
  let v = region.length;
  const hashes: number[] = [];
  for (const it of items) {
    let offs = 0;
    if (it.value.length > 0) {
      v -= valueSize(it);
      region.set(it.value, v);
      offs = v - valueBase;
    }
    const hash = xattrEntryHash(it.name, it.value);
    XattrEntry.encode({
      e_name_len: it.name.length, e_name_index: it.index, e_value_offs: offs, e_value_inum: 0,
      e_value_size: it.value.length, e_hash: hash,
    }, region, e);
    region.set(it.name, e + 16);
    e += entrySize(it);
    hashes.push(hash);
  }
  if (e + 4 > v) throw new Error('xattr layout overflow');
  return hashes;
}

/**
 * Split items between the inode body (`ibodySpace` bytes after i_extra_isize,
 * including the 4-byte magic) and an external block, keeping order.
 */
export function splitXattrs(items: XattrItem[], ibodySpace: number, blockSize: number): { ibody: XattrItem[]; block: XattrItem[] } {
  const ibody: XattrItem[] = [];
  const block: XattrItem[] = [];
  let used = 4 + 4; // magic + terminating zero word
  for (const it of items) {
    const need = entrySize(it) + valueSize(it);
    if (block.length === 0 && used + need <= ibodySpace) {
      ibody.push(it);
      used += need;
    } else {
      block.push(it);
    }
  }
  let bused = 32 + 4;
  for (const it of block) bused += entrySize(it) + valueSize(it);
  if (bused > blockSize) {
    throw new Ext4Error('EXT4_XATTR_TOO_LARGE', `extended attributes need ${bused} bytes, more than one ${blockSize}-byte block (ea_inode is not supported)`);
  }
  return { ibody, block };
}

/** In-inode attributes: the magic then entries; value offsets count from the first entry. */
export function encodeIbodyXattrs(items: XattrItem[], region: Uint8Array): void {
  if (items.length === 0) return;
  new DataView(region.buffer, region.byteOffset, 4).setUint32(0, EXT4_XATTR_MAGIC, true);
  layOut(items, region, 4, 4);
}

/** An external xattr block (checksum left zero; it depends on the block number). */
export function encodeXattrBlock(items: XattrItem[], blockSize: number, refcount: number): Uint8Array {
  const blk = new Uint8Array(blockSize);
  const hashes = layOut(items, blk, 32, 0);
  XattrHeader.encode({ h_magic: EXT4_XATTR_MAGIC, h_refcount: refcount, h_blocks: 1, h_hash: xattrBlockHash(hashes), h_checksum: 0 }, blk, 0);
  return blk;
}
