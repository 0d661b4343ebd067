// Writers judged by qemu-img: info recognises the format and virtual size,
// check finds no error (qcow2, vmdk), compare says identical to the input.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openImage, writeImage, type WriteOptions } from '../formats/index.js';
import { MiB, makeDisk, prng, qemuCompare, qemuFormatOf, qemuImg, qemuInfo, run, tmp } from './formats-fixture.js';
import { requireTool } from './helpers/tools.js';

const t = tmp();
const input = join(t.dir, 'in.raw');
makeDisk(input);

async function convert(src: string, out: string, opts: WriteOptions): Promise<void> {
  const img = await openImage(src);
  try { await writeImage(img, out, opts); } finally { await img.close(); }
}

interface Case { name: string; file: string; opts: WriteOptions; qemuFmt: string; check: boolean; subformat?: string }
const cases: Case[] = [
  { name: 'qcow2', file: 'a.qcow2', opts: { format: 'qcow2' }, qemuFmt: 'qcow2', check: true },
  { name: 'qcow2 compressed (deflate)', file: 'c.qcow2', opts: { format: 'qcow2', compress: true }, qemuFmt: 'qcow2', check: true },
  { name: 'qcow2 compressed (zstd)', file: 'z.qcow2', opts: { format: 'qcow2', compress: true, compressionType: 'zstd' }, qemuFmt: 'qcow2', check: true },
  { name: 'qcow2 4 KiB clusters', file: 'k.qcow2', opts: { format: 'qcow2', clusterSize: 4096 }, qemuFmt: 'qcow2', check: true },
  { name: 'qcow2 2 MiB clusters compressed', file: 'm.qcow2', opts: { format: 'qcow2', clusterSize: 2 * MiB, compress: true }, qemuFmt: 'qcow2', check: true },
  { name: 'qcow2 512-byte clusters', file: 's.qcow2', opts: { format: 'qcow2', clusterSize: 512 }, qemuFmt: 'qcow2', check: true },
  { name: 'vhd dynamic', file: 'd.vhd', opts: { format: 'vhd' }, qemuFmt: 'vpc', check: false },
  { name: 'vhd fixed (Azure)', file: 'f.vhd', opts: { format: 'vhd', azure: true }, qemuFmt: 'vpc', check: false },
  { name: 'vmdk monolithicSparse', file: 'a.vmdk', opts: { format: 'vmdk' }, qemuFmt: 'vmdk', check: true, subformat: 'monolithicSparse' },
  { name: 'vmdk streamOptimized', file: 's.vmdk', opts: { format: 'vmdk', subformat: 'streamOptimized' }, qemuFmt: 'vmdk', check: true, subformat: 'streamOptimized' },
];

for (const c of cases) {
  test(`${c.name}: qemu-img info, check and compare accept it`, async () => {
    const out = join(t.dir, c.file);
    await convert(input, out, c.opts);
    // Fixed VHDs are not probed by qemu (a raw file with a trailer); name the driver.
    const info = qemuInfo(out, c.opts.azure ? 'vpc' : undefined);
    assert.is(info.format, c.qemuFmt);
    assert.is(info['virtual-size'], 64 * MiB);
    if (c.subformat) assert.is((info['format-specific'] as { data: { 'create-type': string } }).data['create-type'], c.subformat);
    if (c.check) {
      const r = qemuImg(['check', '-f', c.qemuFmt, out]);
      assert.is(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /No errors were found/);
    }
    const cmp = qemuCompare(input, 'raw', out, c.qemuFmt);
    assert.is(cmp.code, 0, cmp.stdout + cmp.stderr);
  });
}

test('outputs store only data: sparse files, no stored zeros', () => {
  const allocated = (f: string) => statSync(join(t.dir, f)).blocks * 512;
  // ~8 MB of data in the 64 MiB disk: every uncompressed output stays near that.
  for (const f of ['a.qcow2', 'd.vhd', 'a.vmdk', 'f.vhd']) assert.ok(allocated(f) < 12 * MiB, `${f}: ${allocated(f)}`);
  // Compressed ones are smaller than the data (text compresses).
  assert.ok(statSync(join(t.dir, 'c.qcow2')).size < statSync(join(t.dir, 'a.qcow2')).size);
  assert.ok(statSync(join(t.dir, 's.vmdk')).size < 8 * MiB);
});

test('qcow2 header fields qemu reports: compression type, cluster size', () => {
  const z = qemuInfo(join(t.dir, 'z.qcow2'));
  assert.is((z['format-specific'] as { data: { 'compression-type': string } }).data['compression-type'], 'zstd');
  assert.is(qemuInfo(join(t.dir, 'k.qcow2'))['cluster-size'], 4096);
  assert.is(qemuInfo(join(t.dir, 'a.qcow2'))['cluster-size'], 65536);
});

test('overlay over a golden image: only differing clusters stored, qemu follows the chain', async () => {
  const base = join(t.dir, 'golden.qcow2');
  await convert(input, base, { format: 'qcow2' });
  const mod = join(t.dir, 'mod.raw');
  writeFileSync(mod, readFileSync(input));
  const { openSync, writeSync, closeSync } = await import('node:fs');
  const fd = openSync(mod, 'r+');
  writeSync(fd, prng('change', 100_000), 0, 100_000, 5 * MiB + 17);
  writeSync(fd, Buffer.alloc(256 * 1024), 0, 256 * 1024, 1 * MiB); // data → zeros: must hide the golden data
  writeSync(fd, prng('tail', 512), 0, 512, 64 * MiB - 512);
  closeSync(fd);
  const ov = join(t.dir, 'overlay.qcow2');
  await convert(mod, ov, { format: 'qcow2', backing: 'golden.qcow2' });
  const info = qemuInfo(ov);
  assert.is(info['backing-filename'], 'golden.qcow2');
  assert.is(info['backing-filename-format'], 'qcow2');
  const chk = qemuImg(['check', ov]);
  assert.is(chk.code, 0, chk.stdout + chk.stderr);
  const cmp = qemuCompare(mod, 'raw', ov, 'qcow2');
  assert.is(cmp.code, 0, cmp.stdout + cmp.stderr);
  // 100 KB change → 2-3 clusters, a zeroed range → zero flags, the tail → 1 cluster: far below the 8 MB of data.
  assert.ok(statSync(ov).size < 1 * MiB, `overlay is ${statSync(ov).size} bytes`);
  // And a compressed overlay too.
  const ovc = join(t.dir, 'overlay-c.qcow2');
  await convert(mod, ovc, { format: 'qcow2', backing: 'golden.qcow2', compress: true });
  assert.is(qemuImg(['check', ovc]).code, 0);
  assert.is(qemuCompare(mod, 'raw', ovc, 'qcow2').code, 0);
});

test('conversion chain raw → qcow2 → vhd → vmdk → qcow2 (zstd) → raw stays identical (qemu-img compare at each step)', async () => {
  const steps: [string, WriteOptions, string][] = [
    ['p1.qcow2', { format: 'qcow2', compress: true }, 'qcow2'],
    ['p2.vhd', { format: 'vhd' }, 'vpc'],
    ['p3.vmdk', { format: 'vmdk', subformat: 'streamOptimized' }, 'vmdk'],
    ['p4.qcow2', { format: 'qcow2', compress: true, compressionType: 'zstd', clusterSize: 16384 }, 'qcow2'],
    ['p5.vmdk', { format: 'vmdk' }, 'vmdk'],
    ['p6.raw', { format: 'raw' }, 'raw'],
  ];
  let prev = input;
  for (const [file, opts, qf] of steps) {
    const out = join(t.dir, file);
    await convert(prev, out, opts);
    const cmp = qemuCompare(input, 'raw', out, qf);
    assert.is(cmp.code, 0, `${file}: ${cmp.stdout}${cmp.stderr}`);
    prev = out;
  }
  assert.ok(readFileSync(prev).equals(readFileSync(input)));
});

test('deterministic: the same input gives byte-identical outputs', async () => {
  process.env.SOURCE_DATE_EPOCH = '1700000000';
  for (const opts of [{ format: 'vhd' }, { format: 'vmdk', subformat: 'streamOptimized' }, { format: 'qcow2', compress: true }, { format: 'ova' }] as WriteOptions[]) {
    // Same file name in two directories (the vmdk descriptor records its own name).
    const { mkdirSync } = await import('node:fs');
    mkdirSync(join(t.dir, 'A'), { recursive: true }); mkdirSync(join(t.dir, 'B'), { recursive: true });
    const a = join(t.dir, 'A', `det.${opts.format}`), b = join(t.dir, 'B', `det.${opts.format}`);
    await convert(input, a, { ...opts, name: 'det' });
    await convert(input, b, { ...opts, name: 'det' });
    assert.ok(readFileSync(a).equals(readFileSync(b)), `${opts.format} differs between runs`);
  }
  delete process.env.SOURCE_DATE_EPOCH;
});

test('epoch option: tar and ova member times (GNU tar --full-time) and the VHD footer time stamp, over SOURCE_DATE_EPOCH', async () => {
  process.env.SOURCE_DATE_EPOCH = '1000000000';
  try {
    const epoch = 1700000000; // 2023-11-14 22:13:20 UTC
    for (const format of ['tar.gz', 'ova'] as const) {
      const out = join(t.dir, `epoch.${format}`);
      await convert(input, out, { format, epoch, name: 'epoch' });
      const r = run('env', ['TZ=UTC', 'tar', '--full-time', '-tv', ...(format === 'tar.gz' ? ['-z'] : []), '-f', out]);
      assert.is(r.code, 0, r.stderr);
      const lines = r.stdout.trim().split('\n');
      assert.ok(lines.length >= 1);
      for (const line of lines) assert.ok(line.includes('2023-11-14 22:13:20'), `${format}: ${line}`);
    }
    const vhd = join(t.dir, 'epoch.vhd');
    await convert(input, vhd, { format: 'vhd', epoch });
    const bytes = readFileSync(vhd);
    // VHD spec, Hard Disk Footer: Time Stamp at offset 24, seconds since 2000-01-01 00:00:00 UTC, big-endian.
    const footer = bytes.subarray(bytes.length - 512);
    assert.is(footer.toString('latin1', 0, 8), 'conectix');
    assert.is(footer.readUInt32BE(24), epoch - Date.UTC(2000, 0, 1) / 1000);
    for (const bad of [Number.NaN, -1, 1.5]) {
      const out = join(t.dir, 'bad-epoch.tar.gz');
      const err = await convert(input, out, { format: 'tar.gz', epoch: bad }).then(() => null, (e: unknown) => e as { code?: string });
      assert.is(err?.code, 'EPOCH', String(bad));
      assert.not.ok(existsSync(out), 'no output on a refused epoch');
    }
  } finally {
    delete process.env.SOURCE_DATE_EPOCH;
  }
});

test('output segments: no single write covers a whole 1 MiB-aligned MiB; segments tile the write', async () => {
  const { segmentLength } = await import('../formats/io.js');
  const r = prng('segments', 4096);
  for (let k = 0; k < 1024; k++) {
    const pos = r.readUInt16LE(k * 4) * 4096, len = 1 + r.readUInt16LE(k * 4 + 2) * 97;
    let at = pos, left = len;
    while (left > 0) {
      const seg = segmentLength(at, left);
      assert.ok(seg > 0 && seg <= left, `segment ${seg} of ${left} at ${at}`);
      const firstAligned = Math.ceil(at / MiB) * MiB;
      assert.ok(firstAligned + MiB > at + seg, `[${at}, ${at + seg}) holds the aligned MiB at ${firstAligned}`);
      at += seg; left -= seg;
    }
    assert.is(at, pos + len);
  }
  assert.is(segmentLength(64 * 1024, MiB), MiB, 'a MiB starting 64 KiB past a boundary stays one write');
});

test('Azure VHD: a size that is not a whole number of MiB is refused with a typed error, no output left', async () => {
  const odd = join(t.dir, 'odd.raw');
  const { truncateSync, existsSync, readdirSync } = await import('node:fs');
  writeFileSync(odd, Buffer.alloc(0));
  truncateSync(odd, 64 * MiB + 512);
  const out = join(t.dir, 'odd.vhd');
  try {
    await convert(odd, out, { format: 'vhd', azure: true });
    assert.unreachable('accepted');
  } catch (e) {
    assert.is((e as { code?: string }).code, 'VHD_AZURE_SIZE');
  }
  assert.not.ok(existsSync(out));
  assert.not.ok(readdirSync(t.dir).some((f) => f.includes('.ingot-')), 'temp file left behind');
});

test('write thread: large outputs are written by the write thread, and qemu-img compare agrees', async () => {
  const { outputStats } = await import('../formats/io.js');
  const { openSync, writeSync, closeSync, ftruncateSync } = await import('node:fs');
  // 512 MiB virtual, ~80 MiB of data in pieces of odd sizes at odd offsets: past the thread's
  // 8 MiB mark and its 64 MiB early start, with coalesced, cut (aligned-MiB) and metadata writes interleaved.
  const big = join(t.dir, 'big.raw');
  const fd = openSync(big, 'w');
  ftruncateSync(fd, 512 * MiB);
  const r = prng('thread-layout', 512);
  for (let k = 0; k < 80; k++) {
    const len = MiB + r.readUInt16LE(k * 4) * 3;
    const at = k * 6 * MiB + r.readUInt16LE(k * 4 + 2) * 17;
    writeSync(fd, prng(`thread-${k}`, len), 0, len, at);
  }
  closeSync(fd);
  const outs: [string, WriteOptions][] = [
    ['t.qcow2', { format: 'qcow2' }], ['t.vhd', { format: 'vhd' }], ['tf.vhd', { format: 'vhd', subformat: 'fixed' }],
    ['t.vmdk', { format: 'vmdk' }], ['t.raw', { format: 'raw' }],
  ];
  // The first conversions start the thread with the file (over 64 MiB of data) and switch to it when it
  // is up; the last ones wait for it (INGOT_WRITE_THREAD_AFTER=0), so it is used on any machine.
  for (const [file, opts] of [...outs, ...outs.map(([f, o]): [string, WriteOptions] => [`0${f}`, o])]) {
    const before = outputStats.threadedOutputs;
    const out = join(t.dir, file);
    if (file.startsWith('0')) process.env.INGOT_WRITE_THREAD_AFTER = '0';
    try { await convert(big, out, opts); } finally { delete process.env.INGOT_WRITE_THREAD_AFTER; }
    if (file.startsWith('0')) assert.is(outputStats.threadedOutputs, before + 1, `${file}: written through the write thread`);
    const c = qemuCompare(big, 'raw', out, qemuFormatOf(opts.format));
    assert.is(c.code, 0, `${file}: ${c.stdout}${c.stderr}`);
  }
});

test('write thread: a failing write (file size limit) is a non-zero exit with one line, and no output is left', async () => {
  const { spawnSync } = await import('node:child_process');
  const { readdirSync, mkdirSync } = await import('node:fs');
  const dir = join(t.dir, 'efbig');
  mkdirSync(dir);
  const big = join(t.dir, 'big.raw');
  requireTool('prlimit', 'util-linux');
  // RLIMIT_FSIZE makes writes past 24 MiB fail with EFBIG, in the write thread (started with the file).
  const r = spawnSync('prlimit', [`--fsize=${24 * MiB}`, process.execPath, '--import', 'tsx', join(process.cwd(), 'src/cli/main.ts'), 'convert', '-O', 'qcow2', big, join(dir, 'x.qcow2')], { encoding: 'utf8', env: { ...process.env, INGOT_FROM_SOURCE: '1', INGOT_WRITE_THREAD_AFTER: '0' } });
  assert.ok(r.status !== 0 && r.status !== null, `exit ${r.status} signal ${r.signal}: ${r.stderr}`);
  const lines = r.stderr.trim().split('\n');
  assert.is(lines.length, 1, r.stderr);
  assert.match(lines[0]!, /EFBIG|too large/i);
  assert.equal(readdirSync(dir), [], 'no output and no temp file');
});

test.after(() => t.done());
test.run();
