/**
 * Mutation fuzzing of the RPM reader: corpus packages with bit flips,
 * truncations and inflated header counts/offsets. Each case must end in
 * success or a typed IngotError, within a time limit and without runaway
 * memory. Deterministic (seeded), so a failing case can be replayed.
 */
import { mkdirSync, writeFileSync, rmSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { IngotError } from '../../src/errors.js';
import { openRpm, extractRpm, verifyPackage, packageSignatures } from '../../src/rpm/index.js';

/** xorshift32: small, deterministic. */
export class Rng {
  constructor(private s: number) { if (this.s === 0) this.s = 1; }
  next(): number { let x = this.s; x ^= x << 13; x ^= x >>> 17; x ^= x << 5; this.s = x >>> 0; return this.s; }
  int(n: number): number { return this.next() % Math.max(1, n); }
}

const u32be = (b: Buffer, at: number, v: number) => { if (at + 4 <= b.length) b.writeUInt32BE(v >>> 0, at); };
const ABSURD = [0, 1, 0x7fffffff, 0xffffffff, 0x80000000, 0xffff, 0x10000, 0x0fffffff, 0x10000000];

/** Offsets of the signature header, main header and payload (from the unmutated bytes). */
export interface Layout { sig: number; main: number; payload: number }

export function mutate(src: Buffer, lay: Layout, rng: Rng): { bytes: Buffer; what: string } {
  const b = Buffer.from(src);
  const kind = rng.int(6);
  const hdr = rng.int(2) === 0 ? lay.sig : lay.main;
  const il = b.length >= hdr + 16 ? b.readUInt32BE(hdr + 8) : 0;
  switch (kind) {
    case 0: { // bit flips, mostly in the headers
      const n = 1 + rng.int(8);
      const span = rng.int(4) === 0 ? b.length : Math.min(b.length, lay.payload + 64);
      for (let i = 0; i < n; i++) { const at = rng.int(span); b[at] = b[at]! ^ (1 << rng.int(8)); }
      return { bytes: b, what: `flip ${n} bits` };
    }
    case 1: { // truncation
      const at = rng.int(b.length);
      return { bytes: b.subarray(0, at), what: `truncate at ${at}` };
    }
    case 2: { // an index entry's count inflated
      const e = hdr + 16 + rng.int(Math.max(1, il)) * 16;
      const v = ABSURD[rng.int(ABSURD.length)]! + rng.int(3);
      u32be(b, e + 12, v);
      return { bytes: b, what: `entry count @${e + 12} = ${v}` };
    }
    case 3: { // an index entry's offset moved
      const e = hdr + 16 + rng.int(Math.max(1, il)) * 16;
      const v = rng.int(2) ? ABSURD[rng.int(ABSURD.length)]! : b.readUInt32BE(Math.min(e + 8, b.length - 4)) + rng.int(64) - 32;
      u32be(b, e + 8, v);
      return { bytes: b, what: `entry offset @${e + 8} = ${v}` };
    }
    case 4: { // il / dl inflated
      const at = hdr + 8 + 4 * rng.int(2);
      const v = ABSURD[rng.int(ABSURD.length)]! + rng.int(17);
      u32be(b, at, v);
      return { bytes: b, what: `il/dl @${at} = ${v}` };
    }
    default: { // type or tag changed
      const e = hdr + 16 + rng.int(Math.max(1, il)) * 16;
      const at = e + 4 * rng.int(2);
      const v = rng.int(2) ? rng.int(12) : rng.next();
      u32be(b, at, v);
      return { bytes: b, what: `tag/type @${at} = ${v}` };
    }
  }
}

export interface FuzzResult { ok: number; typed: number; failures: string[]; maxRssMB: number }

/** Run one case: read everything, verify, sometimes extract. Returns 'ok' | 'typed' or throws the offending error. */
async function runCase(file: string, extractTo: string | null): Promise<'ok' | 'typed'> {
  try {
    const pkg = await openRpm(file);
    void pkg.info; void pkg.files;
    await packageSignatures(pkg);
    for await (const e of pkg.entries()) for await (const _ of e.content) { /* drain */ }
    await verifyPackage(pkg);
    if (extractTo) {
      try { await extractRpm(file, extractTo); } catch (e) {
        if (existsSync(extractTo)) throw new Error(`failed extraction left ${extractTo} behind`);
        throw e;
      }
      rmSync(extractTo, { recursive: true, force: true });
    }
    return 'ok';
  } catch (e) {
    if (e instanceof IngotError) return 'typed';
    throw e;
  }
}

export async function fuzz(sources: { name: string; bytes: Buffer; layout: Layout }[], cases: number, dir: string, seed = 0x1ee7): Promise<FuzzResult> {
  mkdirSync(dir, { recursive: true });
  const rng = new Rng(seed);
  const res: FuzzResult = { ok: 0, typed: 0, failures: [], maxRssMB: 0 };
  const file = join(dir, 'case.rpm');
  for (let i = 0; i < cases; i++) {
    const src = sources[rng.int(sources.length)]!;
    const { bytes, what } = mutate(src.bytes, src.layout, rng);
    writeFileSync(file, bytes);
    const label = `case ${i} (${src.name}: ${what})`;
    let timer: NodeJS.Timeout | undefined;
    try {
      const r = await Promise.race([
        runCase(file, i % 10 === 0 ? join(dir, 'out') : null),
        new Promise<never>((_, rej) => { timer = setTimeout(() => rej(new Error('timed out after 20 s (hang)')), 20_000); }),
      ]);
      res[r]++;
    } catch (e) {
      res.failures.push(`${label}: ${e instanceof Error ? `${e.constructor.name}: ${e.message}` : String(e)}`);
      if (res.failures.length > 20) break;
    } finally {
      clearTimeout(timer);
    }
    const rss = process.memoryUsage().rss / 2 ** 20;
    res.maxRssMB = Math.max(res.maxRssMB, Math.round(rss));
    if (rss > 1536) { res.failures.push(`${label}: runaway memory, rss ${Math.round(rss)} MB`); break; }
  }
  return res;
}
