/**
 * Directory-index name hashes (legacy dx_hack, half-MD4, TEA; signed and
 * unsigned character variants) and the xattr entry/block hashes, as
 * specified in Documentation/filesystems/ext4/directory.rst and
 * attributes.rst.
 */
import {
  DX_HASH_HALF_MD4, DX_HASH_HALF_MD4_UNSIGNED, DX_HASH_LEGACY, DX_HASH_LEGACY_UNSIGNED, DX_HASH_TEA,
  DX_HASH_TEA_UNSIGNED,
} from './structs.js';

const rol = (x: number, s: number) => ((x << s) | (x >>> (32 - s))) >>> 0;

function charAt(name: Uint8Array, i: number, signed: boolean): number {
  const c = name[i]!;
  return signed && c >= 0x80 ? c - 256 : c;
}

/** Pack up to num*4 name bytes into num u32 words, padded with the length pattern. */
function str2hashbuf(name: Uint8Array, off: number, len: number, out: Uint32Array, num: number, signed: boolean): void {
  let pad = (len | (len << 8)) >>> 0;
  pad = (pad | (pad << 16)) >>> 0;
  let val = pad;
  if (len > num * 4) len = num * 4;
  let o = 0;
  for (let i = 0; i < len; i++) {
    val = (charAt(name, off + i, signed) + ((val << 8) >>> 0)) >>> 0;
    if (i % 4 === 3) {
      out[o++] = val;
      val = pad;
      num--;
    }
  }
  if (--num >= 0) out[o++] = val;
  while (--num >= 0) out[o++] = pad;
}

function halfMd4(buf: Uint32Array, x: Uint32Array): void {
  let a = buf[0]!, b = buf[1]!, c = buf[2]!, d = buf[3]!;
  const F = (x: number, y: number, z: number) => (z ^ (x & (y ^ z))) >>> 0;
  const G = (x: number, y: number, z: number) => ((x & y) + ((x ^ y) & z)) >>> 0;
  const H = (x: number, y: number, z: number) => (x ^ y ^ z) >>> 0;
  const K2 = 0x5a827999, K3 = 0x6ed9eba1;
  const R = (f: typeof F, p: number, q: number, r: number, s: number, v: number, k: number, sh: number) =>
    rol((p + f(q, r, s) + v + k) >>> 0, sh);
  a = R(F, a, b, c, d, x[0]!, 0, 3); d = R(F, d, a, b, c, x[1]!, 0, 7);
  c = R(F, c, d, a, b, x[2]!, 0, 11); b = R(F, b, c, d, a, x[3]!, 0, 19);
  a = R(F, a, b, c, d, x[4]!, 0, 3); d = R(F, d, a, b, c, x[5]!, 0, 7);
  c = R(F, c, d, a, b, x[6]!, 0, 11); b = R(F, b, c, d, a, x[7]!, 0, 19);
  a = R(G, a, b, c, d, x[1]!, K2, 3); d = R(G, d, a, b, c, x[3]!, K2, 5);
  c = R(G, c, d, a, b, x[5]!, K2, 9); b = R(G, b, c, d, a, x[7]!, K2, 13);
  a = R(G, a, b, c, d, x[0]!, K2, 3); d = R(G, d, a, b, c, x[2]!, K2, 5);
  c = R(G, c, d, a, b, x[4]!, K2, 9); b = R(G, b, c, d, a, x[6]!, K2, 13);
  a = R(H, a, b, c, d, x[3]!, K3, 3); d = R(H, d, a, b, c, x[7]!, K3, 9);
  c = R(H, c, d, a, b, x[2]!, K3, 11); b = R(H, b, c, d, a, x[6]!, K3, 15);
  a = R(H, a, b, c, d, x[1]!, K3, 3); d = R(H, d, a, b, c, x[5]!, K3, 9);
  c = R(H, c, d, a, b, x[0]!, K3, 11); b = R(H, b, c, d, a, x[4]!, K3, 15);
  buf[0] = (buf[0]! + a) >>> 0; buf[1] = (buf[1]! + b) >>> 0;
  buf[2] = (buf[2]! + c) >>> 0; buf[3] = (buf[3]! + d) >>> 0;
}

function tea(buf: Uint32Array, x: Uint32Array): void {
  let sum = 0;
  let b0 = buf[0]!, b1 = buf[1]!;
  const a = x[0]!, b = x[1]!, c = x[2]!, d = x[3]!;
  for (let n = 0; n < 16; n++) {
    sum = (sum + 0x9e3779b9) >>> 0;
    b0 = (b0 + ((((b1 << 4) + a) >>> 0) ^ ((b1 + sum) >>> 0) ^ (((b1 >>> 5) + b) >>> 0))) >>> 0;
    b1 = (b1 + ((((b0 << 4) + c) >>> 0) ^ ((b0 + sum) >>> 0) ^ (((b0 >>> 5) + d) >>> 0))) >>> 0;
  }
  buf[0] = (buf[0]! + b0) >>> 0;
  buf[1] = (buf[1]! + b1) >>> 0;
}

function dxHack(name: Uint8Array, signed: boolean): number {
  let hash0 = 0x12a3fe2d, hash1 = 0x37abe8f9;
  for (let i = 0; i < name.length; i++) {
    let hash = (hash1 + ((hash0 ^ Math.imul(charAt(name, i, signed), 7152373)) >>> 0)) >>> 0;
    if (hash & 0x80000000) hash = (hash - 0x7fffffff) >>> 0;
    hash1 = hash0;
    hash0 = hash;
  }
  return (hash0 << 1) >>> 0;
}

export interface DxHash { hash: number; minor: number }

/**
 * The htree hash of a name. `version` is one of DX_HASH_*; the signed
 * variants (0–2) become unsigned (3–5) when `unsigned` (the superblock's
 * EXT2_FLAGS_UNSIGNED_HASH) is set, as the kernel does.
 */
export function dxHash(name: Uint8Array, version: number, seed: Uint32Array | undefined): DxHash {
  let hash: number, minor: number;
  const buf = new Uint32Array([0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476]);
  if (seed && seed.some((w) => w !== 0)) buf.set(seed);
  const x = new Uint32Array(8);
  switch (version) {
    case DX_HASH_LEGACY: case DX_HASH_LEGACY_UNSIGNED:
      hash = dxHack(name, version === DX_HASH_LEGACY);
      minor = 0;
      break;
    case DX_HASH_HALF_MD4: case DX_HASH_HALF_MD4_UNSIGNED: {
      const signed = version === DX_HASH_HALF_MD4;
      for (let p = 0, len = name.length; len > 0; len -= 32, p += 32) {
        str2hashbuf(name, p, len, x, 8, signed);
        halfMd4(buf, x);
      }
      minor = buf[2]!;
      hash = buf[1]!;
      break;
    }
    case DX_HASH_TEA: case DX_HASH_TEA_UNSIGNED: {
      const signed = version === DX_HASH_TEA;
      for (let p = 0, len = name.length; len > 0; len -= 16, p += 16) {
        str2hashbuf(name, p, len, x, 4, signed);
        tea(buf, x);
      }
      hash = buf[0]!;
      minor = buf[1]!;
      break;
    }
    default:
      throw new RangeError(`unknown directory hash version ${version}`);
  }
  hash = (hash & ~1) >>> 0;
  // EXT4_HTREE_EOF_32BIT << 1 is reserved as the end-of-directory cookie.
  if (hash === 0xfffffffe) hash = 0xfffffffc;
  return { hash, minor };
}

/** e_hash of an xattr entry: name bytes (as signed chars) then value words (ext4 xattr.c ext4_xattr_hash_entry). */
export function xattrEntryHash(name: Uint8Array, value: Uint8Array): number {
  let hash = 0;
  for (let i = 0; i < name.length; i++) {
    const c = name[i]! >= 0x80 ? name[i]! - 256 : name[i]!;
    hash = ((hash << 5) ^ (hash >>> 27) ^ c) >>> 0;
  }
  const words = (value.length + 3) >>> 2;
  for (let w = 0; w < words; w++) {
    let v = 0;
    for (let k = 3; k >= 0; k--) v = ((v << 8) | (value[w * 4 + k] ?? 0)) >>> 0;
    hash = ((hash << 16) ^ (hash >>> 16) ^ v) >>> 0;
  }
  return hash;
}

/** h_hash of an xattr block from its entries' hashes (ext4_xattr_rehash). */
export function xattrBlockHash(entryHashes: number[]): number {
  let hash = 0;
  for (const h of entryHashes) {
    if (h === 0) return 0;
    hash = ((hash << 16) ^ (hash >>> 16) ^ h) >>> 0;
  }
  return hash;
}
