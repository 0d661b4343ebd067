/**
 * Mutation fuzzing of the MBR/GPT and FAT readers: random byte damage to the
 * metadata of valid images must give a result or a typed IngotError — never
 * another exception, a hang or a huge allocation. INGOT_LONG=1 runs 50× more.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { MemoryTarget, computeLayout, writePartitionTable, readPartitionTable, MiB, type ByteSource } from '../src/disk/index.js';
import { BytesSource } from '../src/disk/file.js';
import { writeFat, openFat } from '../src/fs/fat/index.js';
import { StagingTree, BufferContent } from '../src/tree/tree.js';
import { IngotError } from '../src/errors.js';

const ROUNDS = process.env.INGOT_LONG ? 10000 : 200;

let seed = 0x9e3779b9;
const rand = (n: number) => { seed ^= seed << 13; seed ^= seed >>> 17; seed ^= seed << 5; return (seed >>> 0) % n; };

/** A copy of the first `head` bytes and last `tail` bytes of a target, as a byte array the fuzzer damages. */
async function snapshot(t: MemoryTarget): Promise<Uint8Array> {
  const b = new Uint8Array(t.size);
  await t.read(b, 0);
  return b;
}

/** Damage `img` in place; returns the function that undoes it (copying a 40 MiB image per round is slow). */
function mutate(img: Uint8Array, regions: [number, number][]): () => void {
  const out = img;
  const saved: [number, Uint8Array][] = [];
  const n = 1 + rand(8);
  for (let i = 0; i < n; i++) {
    const [s, e] = regions[rand(regions.length)]!;
    const at = s + rand(e - s);
    saved.push([at, out.slice(at, at + 8)]);
    const kind = rand(4);
    if (kind === 0) out[at] = rand(256);
    else if (kind === 1) out[at] ^= 1 << rand(8);
    else if (kind === 2) out.fill(0xff, at, Math.min(e, at + 1 + rand(8)));
    else out.fill(0, at, Math.min(e, at + 1 + rand(8)));
  }
  return () => { for (const [at, b] of saved.reverse()) out.set(b, at); };
}

async function expectTyped(what: string, f: () => Promise<unknown>): Promise<'ok' | 'error'> {
  const t0 = Date.now();
  try {
    await f();
    return 'ok';
  } catch (e) {
    if (!(e instanceof IngotError)) throw new Error(`${what}: untyped ${String((e as Error)?.stack ?? e)}`);
    return 'error';
  } finally {
    assert.ok(Date.now() - t0 < 5000, `${what} took ${Date.now() - t0} ms`);
  }
}

test(`partition-table reader: ${ROUNDS} damaged GPTs and MBRs give results or typed errors`, async () => {
  const size = 8 * MiB;
  const gpt = new MemoryTarget(size);
  const l = computeLayout([{ size: MiB, type: 'esp', name: 'e' }, { size: MiB }, { grow: true, name: 'r' }], size, { table: 'gpt' });
  await writePartitionTable(gpt, { type: 'gpt', partitions: l.partitions, seed: 'f' });
  const mbr = new MemoryTarget(size);
  const lm = computeLayout([{ size: MiB, bootable: true }, { size: MiB, logical: true }, { size: MiB, logical: true }, { grow: true, logical: true }], size, { table: 'mbr' });
  await writePartitionTable(mbr, { type: 'mbr', partitions: lm.partitions, seed: 'f' });
  const g = await snapshot(gpt), m = await snapshot(mbr);
  const counts = { ok: 0, error: 0 };
  for (let i = 0; i < ROUNDS; i++) {
    const undoG = mutate(g, [[0, 34 * 512], [size - 33 * 512, size]]);
    counts[await expectTyped(`gpt round ${i}`, () => readPartitionTable(new BytesSource(g)))]++;
    undoG();
    const ebrs = lm.partitions.filter((p) => p.logical).map((p) => [p.start - MiB, p.start - MiB + 512] as [number, number]);
    const undoM = mutate(m, [[446, 512], ...ebrs]);
    counts[await expectTyped(`mbr round ${i}`, () => readPartitionTable(new BytesSource(m)))]++;
    undoM();
  }
  assert.ok(counts.ok > 0 && counts.error > 0, JSON.stringify(counts));
});

async function readEverything(src: ByteSource): Promise<void> {
  const fs = await openFat(src);
  await fs.info();
  for await (const { entry } of fs.walk()) {
    if (entry.isDirectory) continue;
    try {
      for await (const _ of fs.readStream(entry)) { /* discard */ }
    } catch (e) {
      if (!(e instanceof IngotError)) throw e;
    }
  }
}

test(`FAT reader: ${ROUNDS} damaged FAT16/FAT32 volumes give results or typed errors`, async () => {
  const tree = new StagingTree({ defaultTime: { sec: 1600000000, nsec: 0 } });
  for (let i = 0; i < 40; i++) tree.addFile(`/d${i % 4}/some long file name ${i}.txt`, BufferContent.of('x'.repeat(i * 700)));
  tree.addFile('/EFI/BOOT/BOOTX64.EFI', BufferContent.of('y'.repeat(20000)));
  for (const [fatType, size] of [[16, 8 * MiB], [32, 40 * MiB]] as const) {
    const t = new MemoryTarget(size);
    const r = await writeFat(t, tree, { fatType, label: 'FUZZ', seed: 'z' });
    const img = await snapshot(t);
    const g = r.geometry;
    const bps = g.bytesPerSector;
    const meta: [number, number][] = [
      [0, bps], [g.reservedSectors * bps, (g.reservedSectors + g.fatSectors) * bps],
      [g.firstDataSector * bps - g.rootDirSectors * bps, g.firstDataSector * bps + 16 * g.sectorsPerCluster * bps],
    ].filter(([s, e]) => e > s) as [number, number][];
    const counts = { ok: 0, error: 0 };
    for (let i = 0; i < ROUNDS; i++) {
      const undo = mutate(img, meta);
      counts[await expectTyped(`FAT${fatType} round ${i}`, () => readEverything(new BytesSource(img)))]++;
      undo();
    }
    assert.ok(counts.ok > 0 && counts.error > 0, `FAT${fatType} ${JSON.stringify(counts)}`);
  }
});

test.run();
