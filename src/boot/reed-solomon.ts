/**
 * The Reed-Solomon redundancy grub-bios-setup appends to an embedded
 * core.img, so that lzma_decompress.img can repair a core image partly
 * overwritten by other software using the MBR gap (facts from GRUB's
 * grub-core/lib/reed_solomon.c, util/setup.c, include/grub/offsets.h):
 *
 *  - code: GF(2^8) with the polynomial x^8+x^4+x^3+x^2+1 and α = 2; the
 *    generator polynomial of r check symbols is ∏_{j<r} (x − α^j); systematic
 *    (data, then the remainder of data·x^r divided by the generator);
 *  - interleaving: byte i of every 512-byte sector forms one codeword, so a
 *    lost sector costs each codeword one symbol; column i has
 *    ⌈(size − i)/512⌉ data and ⌈(redundancy − i)/512⌉ check symbols, stored at
 *    the same stride after the data;
 *  - blocks: data + redundancy is cut into blocks of at most 200 sectors,
 *    each block taking data and redundancy in proportion (whole sectors);
 *  - what is covered: core.img from 512 + the "no Reed-Solomon length" field
 *    (u16 at 0x14 of lzma_decompress.img: its own start-up code, which runs
 *    before the repair) to the end; the redundancy fills the embedding area
 *    after core.img (u32 at 0x10 of lzma_decompress.img records its size).
 */
import { IngotError } from '../errors.js';

export class ReedSolomonError extends IngotError {
  constructor(message: string) {
    super('REED_SOLOMON', message);
  }
}

const SECTOR = 512;
const MAX_BLOCK = 200 * SECTOR;
/** x^8+x^4+x^3+x^2+1 without the x^8 term. */
const GF_POLYNOMIAL = 0x1d;
/** Offsets in lzma_decompress.img (the core.img sector after diskboot.img). */
export const GRUB_KERNEL_I386_PC_REED_SOLOMON_REDUNDANCY = 0x10;
export const GRUB_KERNEL_I386_PC_NO_REED_SOLOMON_LENGTH = 0x14;

/** α^i for i in 0..509 (doubled so that products need no modulo) and the discrete log. */
const EXP = new Uint8Array(510);
const LOG = new Uint8Array(256);
{
  let x = 1;
  for (let i = 0; i < 255; i++) {
    EXP[i] = EXP[i + 255] = x;
    LOG[x] = i;
    x = x & 0x80 ? ((x << 1) ^ GF_POLYNOMIAL) & 0xff : x << 1;
  }
}

function gfMul(a: number, b: number): number {
  return a && b ? EXP[LOG[a]! + LOG[b]!]! : 0;
}

/** ∏_{j<r} (x + α^j), highest degree first (leading coefficient 1). */
export function generatorPolynomial(r: number): Uint8Array {
  let g = new Uint8Array([1]);
  for (let j = 0; j < r; j++) {
    const next = new Uint8Array(g.length + 1);
    for (let i = 0; i < g.length; i++) {
      next[i] ^= g[i]!;
      next[i + 1] ^= gfMul(g[i]!, EXP[j]!);
    }
    g = next;
  }
  return g;
}

/** Check symbols of one codeword: data·x^r mod g. */
function remainder(data: Uint8Array, g: Uint8Array): Uint8Array {
  const r = g.length - 1;
  const m = new Uint8Array(data.length + r);
  m.set(data);
  for (let j = 0; j < data.length; j++) {
    const f = m[j]!;
    if (!f) continue;
    const lf = LOG[f]!;
    for (let i = 1; i <= r; i++) if (g[i]) m[j + i] ^= EXP[LOG[g[i]!]! + lf]!;
  }
  return m.subarray(data.length);
}

/** One block: data columns interleaved at the sector stride, check symbols written at the same stride. */
function encodeBlock(data: Uint8Array, red: Uint8Array, generators: Map<number, Uint8Array>): void {
  for (let i = 0; i < SECTOR; i++) {
    const ds = Math.floor((data.length + SECTOR - 1 - i) / SECTOR);
    const rr = Math.floor((red.length + SECTOR - 1 - i) / SECTOR);
    if (!ds || !rr) continue;
    const col = new Uint8Array(ds);
    for (let j = 0; j < ds; j++) col[j] = data[SECTOR * j + i]!;
    let g = generators.get(rr);
    if (!g) generators.set(rr, (g = generatorPolynomial(rr)));
    const rem = remainder(col, g);
    for (let j = 0; j < rr; j++) red[SECTOR * j + i] = rem[j]!;
  }
}

/** Fill `redundancy` with the check symbols of `data` (GRUB's block split and interleaving). */
export function addRedundancy(data: Uint8Array, redundancy: Uint8Array): void {
  let s = data.length, rs = redundancy.length, dp = 0, rp = 0;
  if (!rs) return;
  const generators = new Map<number, Uint8Array>();
  while (s > 0) {
    let cs = s, crs = rs;
    const total = cs + crs;
    if (total > MAX_BLOCK) {
      cs = Math.floor((cs * (MAX_BLOCK / SECTOR)) / total) * SECTOR;
      crs = Math.floor((crs * (MAX_BLOCK / SECTOR)) / total) * SECTOR;
      if (!cs) throw new ReedSolomonError(`redundancy of ${rs} bytes for ${s} bytes of data leaves no room for data in a block`);
    }
    encodeBlock(data.subarray(dp, dp + cs), redundancy.subarray(rp, rp + crs), generators);
    dp += cs; rp += crs; s -= cs; rs -= crs;
  }
}

/**
 * The embedded image grub-bios-setup writes: core.img padded to `nsec`
 * sectors, the redundancy size recorded, the padding filled with check
 * symbols over the part after lzma_decompress.img's start-up code.
 */
export function withRedundancy(core: Uint8Array, nsec: number): Uint8Array {
  if (nsec * SECTOR < core.length) throw new ReedSolomonError(`core.img (${core.length} bytes) does not fit in ${nsec} sectors`);
  const img = new Uint8Array(nsec * SECTOR);
  img.set(core);
  const dv = new DataView(img.buffer);
  const noRs = dv.getUint16(SECTOR + GRUB_KERNEL_I386_PC_NO_REED_SOLOMON_LENGTH, true);
  if (noRs === 0xffff || SECTOR + noRs > core.length) throw new ReedSolomonError(`lzma_decompress.img's no-Reed-Solomon length ${noRs} does not fit core.img (${core.length} bytes): core.img version mismatch`);
  dv.setUint32(SECTOR + GRUB_KERNEL_I386_PC_REED_SOLOMON_REDUNDANCY, img.length - core.length, true);
  addRedundancy(img.subarray(SECTOR + noRs, core.length), img.subarray(core.length));
  return img;
}
