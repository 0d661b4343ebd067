/**
 * CRC-32 as used by GPT (UEFI spec §5.3.2, "the CRC32 algorithm of ISO 3309"):
 * reflected polynomial 0xEDB88320, initial value and final XOR 0xFFFFFFFF.
 * Table-driven, one byte per step.
 */
const TABLE: Uint32Array = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** Continue a CRC over `data`; start with `crc32Update(0, …)`-style chaining via {@link crc32}. */
export function crc32Update(crc: number, data: Uint8Array): number {
  let c = ~crc >>> 0;
  for (let i = 0; i < data.length; i++) c = TABLE[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

export function crc32(data: Uint8Array): number {
  return crc32Update(0, data);
}
