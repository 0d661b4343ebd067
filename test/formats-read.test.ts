// Readers judged by qemu-img: images qemu-img made (and the peer sample
// images in ../shared/fixtures/images) read by ingot equal what qemu reads —
// or ingot refuses them with a typed error where qemu-img does too.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { copyFileSync, createReadStream, createWriteStream, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import { ImageFormatError, openImage, writeImage } from '../formats/index.js';
import { SHARED } from './helpers/cli.js';
import { requireTool } from './helpers/tools.js';
import { MiB, makeDisk, qemuCompare, qemuImg, qemuInfo, qemuFormatOf, run, tmp } from './formats-fixture.js';

const t = tmp();
const input = join(t.dir, 'in.raw');
makeDisk(input);

/** ingot reads `image` and writes it as raw; qemu-img compares that with its own reading of `image`. */
async function agreesWithQemu(image: string, qemuFmt: string): Promise<{ format: string; size: number }> {
  const img = await openImage(image);
  const out = join(t.dir, 'ingot-read.raw');
  try {
    await writeImage(img, out, { format: 'raw' });
  } finally {
    await img.close();
  }
  const info = qemuInfo(image, qemuFmt);
  assert.is(img.size, info['virtual-size'], `${image}: virtual size`);
  const cmp = qemuCompare(image, qemuFmt, out, 'raw');
  assert.is(cmp.code, 0, `${image}: ${cmp.stdout}${cmp.stderr}`);
  return { format: img.format, size: img.size };
}

const made: [string, string[], string][] = [
  ['qemu.qcow2', ['convert', '-O', 'qcow2', input], 'qcow2'],
  ['qemu-v2.qcow2', ['convert', '-O', 'qcow2', '-o', 'compat=0.10', input], 'qcow2'],
  ['qemu-zlib.qcow2', ['convert', '-c', '-O', 'qcow2', input], 'qcow2'],
  ['qemu-zstd.qcow2', ['convert', '-c', '-O', 'qcow2', '-o', 'compression_type=zstd', input], 'qcow2'],
  ['qemu-4k.qcow2', ['convert', '-O', 'qcow2', '-o', 'cluster_size=4096', input], 'qcow2'],
  ['qemu-dyn.vhd', ['convert', '-O', 'vpc', input], 'vpc'],
  ['qemu-fixed.vhd', ['convert', '-O', 'vpc', '-o', 'subformat=fixed', input], 'vpc'],
  ['qemu-force.vhd', ['convert', '-O', 'vpc', '-o', 'subformat=dynamic,force_size=on', input], 'vpc'],
  ['qemu-sparse.vmdk', ['convert', '-O', 'vmdk', input], 'vmdk'],
  ['qemu-stream.vmdk', ['convert', '-O', 'vmdk', '-o', 'subformat=streamOptimized', input], 'vmdk'],
  ['qemu-flat.vmdk', ['convert', '-O', 'vmdk', '-o', 'subformat=monolithicFlat', input], 'vmdk'],
  ['qemu-2gb.vmdk', ['convert', '-O', 'vmdk', '-o', 'subformat=twoGbMaxExtentSparse', input], 'vmdk'],
  ['qemu-2gbflat.vmdk', ['convert', '-O', 'vmdk', '-o', 'subformat=twoGbMaxExtentFlat', input], 'vmdk'],
];
for (const [file, args, fmt] of made) {
  test(`qemu-img made ${file}: ingot reads what qemu reads`, async () => {
    const out = join(t.dir, file);
    const r = qemuImg([...args.slice(0, -1), args[args.length - 1]!, out]);
    assert.is(r.code, 0, r.stderr);
    const got = await agreesWithQemu(out, fmt);
    assert.is(qemuFormatOf(got.format), fmt);
  });
}

test('qcow2 backing chain made by qemu (3 levels, writes at each level) reads like qemu', async () => {
  requireTool('qemu-io', 'qemu-utils');
  const base = join(t.dir, 'chain0.qcow2');
  assert.is(qemuImg(['convert', '-O', 'qcow2', input, base]).code, 0);
  const l1 = join(t.dir, 'chain1.qcow2'), l2 = join(t.dir, 'chain2.qcow2');
  assert.is(qemuImg(['create', '-f', 'qcow2', '-b', 'chain0.qcow2', '-F', 'qcow2', l1]).code, 0);
  assert.is(run('qemu-io', ['-c', 'write -P 0xab 1M 200k', '-c', 'write -z 3M 64k', l1]).code, 0);
  assert.is(qemuImg(['create', '-f', 'qcow2', '-b', 'chain1.qcow2', '-F', 'qcow2', l2]).code, 0);
  assert.is(run('qemu-io', ['-c', 'write -P 0xcd 1100k 8k', '-c', 'write -c -P 0x11 10M 64k', l2]).code, 0);
  await agreesWithQemu(l2, 'qcow2');
  const img = await openImage(l2);
  assert.is(img.details.backingFile, 'chain1.qcow2');
  await img.close();
});

test('internal snapshots are listed', async () => {
  const f = join(t.dir, 'snap.qcow2');
  assert.is(qemuImg(['convert', '-O', 'qcow2', input, f]).code, 0);
  assert.is(qemuImg(['snapshot', '-c', 'before-update', f]).code, 0);
  assert.is(qemuImg(['snapshot', '-c', 'second', f]).code, 0);
  const img = await openImage(f);
  assert.equal(img.details.snapshots?.map((s) => s.name), ['before-update', 'second']);
  assert.is(img.details.snapshots?.[0]?.virtualSize, 64 * MiB);
  await img.close();
  await agreesWithQemu(f, 'qcow2');
});

// ---- peer sample images ----------------------------------------------------

const FIX = join(SHARED, 'fixtures', 'images');
interface Row { path: string; stored: string; kind: string }
const rows: Row[] = existsSync(join(FIX, 'MANIFEST.tsv'))
  ? readFileSync(join(FIX, 'MANIFEST.tsv'), 'utf8').trim().split('\n').slice(1).map((l) => l.split('\t'))
    .map((c) => ({ path: c[0]!, stored: c[6]!, kind: c[7]! }))
    .filter((r) => ['qcow2', 'vpc', 'vmdk', 'vhdx', 'ext2'].includes(r.kind) && !r.path.startsWith('e2fsprogs/'))
  : [];

test('the fixture manifest lists container images', () => {
  assert.ok(rows.length >= 20, `found ${rows.length}`);
});

async function unpack(r: Row): Promise<string> {
  const name = r.path.replace(/\//g, '_').replace(/\.(gz|bz2)$/, '');
  const out = join(t.dir, name);
  if (r.stored === 'gzip') await pipeline(createReadStream(join(FIX, r.path)), zlib.createGunzip(), createWriteStream(out));
  else if (r.stored === 'bzip2') {
    requireTool('bzip2');
    const b = run('sh', ['-c', 'bzip2 -dc "$1" > "$2"', 'sh', join(FIX, r.path), out]);
    if (b.code !== 0) throw new Error(`bzip2 ${r.path}: ${b.stderr}`);
  } else copyFileSync(join(FIX, r.path), out);
  return out;
}

let agreed = 0, refusedBoth = 0;
for (const r of rows) {
  test(`fixture ${r.path}: ingot agrees with qemu-img or both refuse`, async () => {
    const file = await unpack(r);
    let img;
    try {
      img = await openImage(file);
    } catch (e) {
      assert.instance(e, ImageFormatError, `${r.path}: ${(e as Error).message}`);
      // Refused: qemu-img must refuse too — except VHDX, which ingot does not read by design.
      if (r.kind !== 'vhdx') {
        const q = qemuImg(['convert', '-O', 'raw', file, join(t.dir, 'q.raw')]);
        assert.ok(q.code !== 0, `${r.path}: ingot refused (${(e as Error).message}) but qemu-img reads it`);
      }
      refusedBoth++;
      return;
    }
    const fmt = qemuFormatOf(img.format);
    await img.close();
    await agreesWithQemu(file, fmt);
    agreed++;
  });
}

test('fixture tally', () => {
  assert.ok(agreed >= 10, `agreed ${agreed}`);
  console.log(`fixtures: ${agreed} read identically to qemu-img, ${refusedBoth} refused with a typed error`);
});

test('raw data runs: a consumer that never waits still lets the event loop run (timers fire during a 192 MiB scan)', async () => {
  const { openSync, writeSync, closeSync } = await import('node:fs');
  const big = join(t.dir, 'loop.raw');
  const fd = openSync(big, 'w');
  const block = Buffer.alloc(MiB, 0x5a);
  for (let i = 0; i < 192; i++) writeSync(fd, block, 0, MiB, i * MiB);
  closeSync(fd);
  const img = await openImage(big, { format: 'raw' });
  let ticks = 0;
  const timer = setInterval(() => { ticks++; }, 0);
  try {
    let bytes = 0;
    const runs = (img as unknown as { dataRuns(b: number): AsyncIterable<{ length: number }> }).dataRuns(64 * 1024);
    for await (const r of runs) bytes += r.length; // no awaits of its own
    assert.is(bytes, 192 * MiB);
  } finally {
    clearInterval(timer);
    await img.close();
  }
  assert.ok(ticks >= 2, `timer callbacks during the scan: ${ticks}`);
});

test.after(() => t.done());
test.run();
