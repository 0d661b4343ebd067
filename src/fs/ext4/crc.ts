/**
 * The two checksums ext4 uses: CRC32C (Castagnoli, reflected polynomial
 * 0x82F63B78) for metadata_csum, and CRC16 (ANSI, reflected 0xA001) for the
 * older uninit_bg/gdt_csum group descriptors. Both are table driven; ext4
 * calls crc32c without the final inversion ("raw" crc32c_le), so
 * {@link crc32c} takes and returns the raw register value.
 */

function makeTable32(poly: number): Uint32Array {
  const t = new Uint32Array(256 * 8);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ poly : c >>> 1;
    t[i] = c >>> 0;
  }
  // Slicing-by-8 tables: t[k*256 + i] advances i through k extra zero bytes.
  for (let i = 0; i < 256; i++) {
    let c = t[i]!;
    for (let k = 1; k < 8; k++) {
      c = (t[c & 0xff]! ^ (c >>> 8)) >>> 0;
      t[k * 256 + i] = c;
    }
  }
  return t;
}

const T32C = makeTable32(0x82f63b78);

/** Raw CRC32C register update (no pre/post inversion; ext4 seeds with ~0). */
export function crc32c(crc: number, data: Uint8Array, start = 0, end = data.length): number {
  let c = crc >>> 0;
  let i = start;
  const t = T32C;
  while (end - i >= 8) {
    const a = (c ^ (data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24))) >>> 0;
    c = t[7 * 256 + (a & 0xff)]! ^ t[6 * 256 + ((a >>> 8) & 0xff)]! ^ t[5 * 256 + ((a >>> 16) & 0xff)]! ^ t[4 * 256 + (a >>> 24)]! ^
      t[3 * 256 + data[i + 4]!]! ^ t[2 * 256 + data[i + 5]!]! ^ t[256 + data[i + 6]!]! ^ t[data[i + 7]!]!;
    i += 8;
  }
  while (i < end) c = t[(c ^ data[i++]!) & 0xff]! ^ (c >>> 8);
  return c >>> 0;
}

/** crc32c over a little-endian u32 (how ext4 mixes inode and group numbers into a seed). */
export function crc32cU32(crc: number, v: number): number {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v >>> 0, true);
  return crc32c(crc, b);
}

/** crc32c over a little-endian u64 (xattr block numbers). */
export function crc32cU64(crc: number, v: number): number {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(v), true);
  return crc32c(crc, b);
}

const T16 = (() => {
  const t = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xa001 : c >>> 1;
    t[i] = c;
  }
  return t;
})();

/** CRC16 (polynomial 0x8005 reflected) as used by ext4 gdt_csum. */
export function crc16(crc: number, data: Uint8Array, start = 0, end = data.length): number {
  let c = crc & 0xffff;
  for (let i = start; i < end; i++) c = (T16[(c ^ data[i]!) & 0xff]! ^ (c >>> 8)) & 0xffff;
  return c;
}
