// The `convert` and `info` commands, and the archive/compressed outputs
// judged by their own tools: tar -tvf / tar -xS, gzip -t, xz -t, zstd -t,
// sha256sum for the OVA manifest, qemu-img for the disks inside.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { closeSync, ftruncateSync, mkdirSync, openSync, readFileSync, readdirSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import xml2js from 'xml2js';
import { ingot } from './helpers/cli.js';
import { requireTool } from './helpers/tools.js';
import { MiB, makeDisk, prng, qemuCompare, qemuImg, qemuInfo, run, tmp } from './formats-fixture.js';

const t = tmp();
const input = join(t.dir, 'in.raw');
makeDisk(input, 8 * MiB); // small: xz/gzip/zstd streams process every byte, holes included
const original = readFileSync(input);
const at = (f: string) => join(t.dir, f);

function ok(args: string[]) {
  const r = ingot(args);
  assert.is(r.code, 0, `ingot ${args.join(' ')}: ${r.stderr}`);
  return r;
}

test('convert picks the output format from the extension, or -O', () => {
  ok(['convert', input, at('x.qcow2')]);
  assert.is(qemuInfo(at('x.qcow2')).format, 'qcow2');
  ok(['convert', '-O', 'vpc', input, at('x.img')]);
  assert.is(qemuInfo(at('x.img')).format, 'vpc');
  ok(['convert', '-c', '--cluster-size', '128K', input, at('xc.qcow2')]);
  assert.is(qemuInfo(at('xc.qcow2'))['cluster-size'], 128 * 1024);
  assert.is(qemuCompare(input, 'raw', at('xc.qcow2'), 'qcow2').code, 0);
  // No -O and no known extension: the input's format.
  ok(['convert', at('x.qcow2'), at('copy-of-x')]);
  assert.is(qemuInfo(at('copy-of-x')).format, 'qcow2');
});

test('convert --backing writes an overlay qemu-img follows', () => {
  ok(['convert', input, at('gold.qcow2')]);
  const mod = Buffer.from(original);
  mod.fill(0x5a, 7 * MiB, 7 * MiB + 3000); // a hole in the golden image
  writeFileSync(at('mod.raw'), mod);
  ok(['convert', '--backing', 'gold.qcow2', at('mod.raw'), at('ov.qcow2')]);
  assert.is(qemuInfo(at('ov.qcow2'))['backing-filename'], 'gold.qcow2');
  assert.is(qemuImg(['check', at('ov.qcow2')]).code, 0);
  assert.is(qemuCompare(at('mod.raw'), 'raw', at('ov.qcow2'), 'qcow2').code, 0);
});

test('info --json agrees with qemu-img info', () => {
  const j = JSON.parse(ok(['info', '--json', at('ov.qcow2')]).stdout);
  const q = qemuInfo(at('ov.qcow2'));
  assert.is(j.format, 'qcow2');
  assert.is(j.virtualSize, q['virtual-size']);
  assert.is(j.backingFile, q['backing-filename']);
  assert.is(j.clusterSize, q['cluster-size']);
  assert.ok(j.allocatedBytes >= 3000 && j.allocatedBytes < original.length, String(j.allocatedBytes));
  assert.ok('table' in j && Array.isArray(j.partitions));
  const v = JSON.parse(ok(['info', '--json', at('x.img')]).stdout);
  assert.is(v.format, 'vhd');
  assert.is(v.virtualSize, qemuInfo(at('x.img'))['virtual-size']);
  assert.match(ok(['info', at('x.qcow2')]).stdout, /format: qcow2/);
});

test('tar.gz (GCE) and tar.xz: disk.raw, old GNU sparse, holes stay holes', () => {
  requireTool('tar'); requireTool('gzip'); requireTool('xz');
  ok(['convert', input, at('gce.tar.gz')]);
  ok(['convert', input, at('disk.tar.xz')]);
  assert.is(run('gzip', ['-t', at('gce.tar.gz')]).code, 0);
  assert.is(run('xz', ['-t', at('disk.tar.xz')]).code, 0);
  const list = run('tar', ['-tvf', at('gce.tar.gz')]);
  assert.is(list.code, 0, list.stderr);
  assert.match(list.stdout, new RegExp(`^-rw-r--r-- root/root\\s+${original.length} .* disk\\.raw$`, 'm'));
  for (const [name, dir] of [['gce.tar.gz', 'xg'], ['disk.tar.xz', 'xx']]) {
    mkdirSync(at(dir));
    const x = run('tar', ['-xSf', at(name!), '-C', at(dir!)]);
    assert.is(x.code, 0, x.stderr);
    assert.ok(readFileSync(join(at(dir!), 'disk.raw')).equals(original), `${name} extracts to the input`);
  }
  // GNU tar recreated the holes: the extracted file occupies about the data, not 64 MiB.
  assert.ok(statSync(join(at('xg'), 'disk.raw')).blocks * 512 < 6 * MiB); // ~4.1 MiB of data in 8 MiB
  // The archive stores only the data (the input has ~8 MB, compressible text included).
  assert.ok(statSync(at('gce.tar.gz')).size < 4 * MiB);
  // ingot reads its tarballs back, and GNU tar's own.
  ok(['convert', at('gce.tar.gz'), at('back1.raw')]);
  assert.ok(readFileSync(at('back1.raw')).equals(original));
  mkdirSync(at('gnu'));
  writeFileSync(join(at('gnu'), 'disk.raw'), original);
  assert.is(run('tar', ['--format=oldgnu', '-Sczf', at('gnu-old.tar.gz'), 'disk.raw'], { cwd: at('gnu') }).code, 0);
  assert.is(run('tar', ['--format=posix', '--sparse-version=1.0', '-SJcf', at('gnu-pax.tar.xz'), 'disk.raw'], { cwd: at('gnu') }).code, 0);
  for (const f of ['gnu-old.tar.gz', 'gnu-pax.tar.xz']) {
    ok(['convert', '-O', 'raw', at(f), at('back2.raw')]);
    assert.ok(readFileSync(at('back2.raw')).equals(original), f);
  }
});

test('raw.xz, raw.gz, raw.zst: the tools verify and decompress them to the input', () => {
  requireTool('zstd');
  for (const [f, tool] of [['d.raw.xz', 'xz'], ['d.raw.gz', 'gzip'], ['d.raw.zst', 'zstd']] as const) {
    ok(['convert', input, at(f)]);
    assert.is(run(tool, ['-t', at(f)]).code, 0, `${tool} -t ${f}`);
    const sh = run('sh', ['-c', `${tool} -dc "$1" | cmp - "$2"`, 'sh', at(f), input]);
    assert.is(sh.code, 0, `${f}: ${sh.stdout}${sh.stderr}`);
    ok(['convert', '-O', 'qcow2', at(f), at('fromc.qcow2')]);
    assert.is(qemuCompare(input, 'raw', at('fromc.qcow2'), 'qcow2').code, 0, f);
  }
  // And files the tools made.
  run('sh', ['-c', 'xz -T2 -c "$1" > "$2"; gzip -c "$1" > "$3"; zstd -q -c "$1" > "$4"', 'sh', input, at('t.raw.xz'), at('t.raw.gz'), at('t.raw.zst')]);
  for (const f of ['t.raw.xz', 't.raw.gz', 't.raw.zst']) {
    const j = JSON.parse(ok(['info', '--json', at(f)]).stdout);
    assert.is(j.virtualSize, original.length, f);
    ok(['convert', '-O', 'raw', at(f), at('back3.raw')]);
    assert.ok(readFileSync(at('back3.raw')).equals(original), f);
  }
});

test('raw.xz: concatenated .xz streams that xz reads as one file; same bytes for any thread count and for holes or written zeros', () => {
  // 200 MiB: data in the first and last MiB and around 96 MiB, long zero runs between.
  const disk = at('seg.raw');
  const fd = openSync(disk, 'w');
  ftruncateSync(fd, 200 * MiB);
  for (const [seed, pos, len] of [['a', 4096, 3 * MiB], ['b', 96 * MiB - 5000, 2 * MiB], ['c', 200 * MiB - 70_000, 70_000]] as const) {
    writeSync(fd, prng(seed, len), 0, len, pos);
  }
  closeSync(fd);
  // The same bytes with every zero written (no holes).
  const dense = at('seg-dense.raw');
  assert.is(run('cp', ['--sparse=never', disk, dense]).code, 0);
  ok(['convert', '--threads', '1', disk, at('seg1.raw.xz')]);
  ok(['convert', '--threads', '3', disk, at('seg3.raw.xz')]);
  ok(['convert', '--threads', '2', dense, at('segd.raw.xz')]);
  assert.ok(readFileSync(at('seg1.raw.xz')).equals(readFileSync(at('seg3.raw.xz'))), 'thread count changed the output');
  assert.ok(readFileSync(at('seg1.raw.xz')).equals(readFileSync(at('segd.raw.xz'))), 'holes and written zeros gave different output');
  assert.is(run('xz', ['-t', at('seg3.raw.xz')]).code, 0);
  const list = run('xz', ['--robot', '-l', at('seg3.raw.xz')]).stdout.split('\n').find((l) => l.startsWith('totals'))!.split('\t');
  assert.ok(Number(list[1]) > 1, `streams in ${list.join(' ')}`);
  assert.is(Number(list[4]), 200 * MiB, 'uncompressed size');
  const sh = run('sh', ['-c', 'xz -dc "$1" | cmp - "$2"', 'sh', at('seg3.raw.xz'), disk]);
  assert.is(sh.code, 0, sh.stdout + sh.stderr);
  assert.is(JSON.parse(ok(['info', '--json', at('seg3.raw.xz')]).stdout).virtualSize, 200 * MiB);
  // An empty disk is one empty stream, not an empty file.
  writeFileSync(at('empty.raw'), Buffer.alloc(0));
  ok(['convert', '-O', 'raw.xz', at('empty.raw'), at('empty.raw.xz')]);
  assert.is(run('sh', ['-c', 'xz -dc "$1" | wc -c', 'sh', at('empty.raw.xz')]).stdout.trim(), '0');
});

test('raw.xz segments: zero runs of at least the 4 MiB dictionary are cut out; nothing exceeds 32 MiB', async () => {
  const { XzSegmenter } = await import('../formats/compressed.js');
  // A disk described block by block ('D' data MiB, 'Z' zero MiB) → segments as [start MiB, length MiB, kind].
  const cut = (pattern: string) => {
    const s = new XzSegmenter();
    const out = [...pattern].flatMap((c, i) => s.push({ offset: i * MiB, length: MiB, zero: c === 'Z' }));
    return [...out, ...s.finish()].map((x) => [x.offset / MiB, x.length / MiB, x.zero ? 'Z' : 'D']);
  };
  assert.equal(cut('DDZZZD'), [[0, 6, 'D']], 'a 3 MiB zero run stays inside the data');
  assert.equal(cut('DZZZZD'), [[0, 1, 'D'], [1, 4, 'Z'], [5, 1, 'D']], 'a 4 MiB run is cut out');
  assert.equal(cut('ZZD'), [[0, 2, 'Z'], [2, 1, 'D']], 'leading zeros of any length');
  assert.equal(cut('DZZ'), [[0, 3, 'D']], 'a short trailing run stays with the data');
  assert.equal(cut('DZZZZZ'), [[0, 1, 'D'], [1, 5, 'Z']]);
  assert.equal(cut('D'.repeat(40)), [[0, 32, 'D'], [32, 8, 'D']]);
  assert.equal(cut('D' + 'Z'.repeat(70) + 'D'), [[0, 1, 'D'], [1, 32, 'Z'], [33, 32, 'Z'], [65, 6, 'Z'], [71, 1, 'D']]);
  assert.equal(cut('D'.repeat(31) + 'ZZD'), [[0, 32, 'D'], [32, 1, 'Z'], [33, 1, 'D']], 'the 32 MiB cut may fall inside a short run');
  assert.equal(cut(''), []);
});

test('ova: members ovf, vmdk, mf in that order; manifest matches sha256sum; disk is a clean streamOptimized vmdk', async () => {
  ok(['convert', '--name', 'appliance', input, at('app.ova')]);
  const list = run('tar', ['-tf', at('app.ova')]);
  assert.equal(list.stdout.trim().split('\n'), ['appliance.ovf', 'appliance-disk1.vmdk', 'appliance.mf']);
  mkdirSync(at('ova'));
  assert.is(run('tar', ['-xf', at('app.ova'), '-C', at('ova')]).code, 0);
  const mf = readFileSync(join(at('ova'), 'appliance.mf'), 'utf8');
  const sums = run('sh', ['-c', 'cd "$1" && sha256sum appliance.ovf appliance-disk1.vmdk', 'sh', at('ova')]).stdout.trim().split('\n');
  for (const line of sums) {
    const [hash, name] = line.split(/\s+/);
    assert.ok(mf.includes(`SHA256(${name})= ${hash}`), `${name} in manifest`);
  }
  const vmdk = join(at('ova'), 'appliance-disk1.vmdk');
  assert.is(qemuImg(['check', vmdk]).code, 0);
  assert.is((qemuInfo(vmdk)['format-specific'] as { data: { 'create-type': string } }).data['create-type'], 'streamOptimized');
  assert.is(qemuCompare(input, 'raw', vmdk, 'vmdk').code, 0);
  const ovf = await xml2js.parseStringPromise(readFileSync(join(at('ova'), 'appliance.ovf'), 'utf8'));
  const disk = ovf.Envelope.DiskSection[0].Disk[0].$;
  assert.is(Number(disk['ovf:capacity']), original.length);
  assert.is(Number(ovf.Envelope.References[0].File[0].$['ovf:size']), statSync(vmdk).size);
  // ingot reads the OVA's disk in place.
  ok(['convert', '-O', 'raw', at('app.ova'), at('back4.raw')]);
  assert.ok(readFileSync(at('back4.raw')).equals(original));
});

test('zip input: stored and deflated, raw and qcow2 inside', () => {
  requireTool('zip', 'zip');
  mkdirSync(at('zsrc'));
  writeFileSync(join(at('zsrc'), 'disk.img'), original);
  assert.is(qemuImg(['convert', '-O', 'qcow2', input, join(at('zsrc'), 'disk.qcow2')]).code, 0);
  const z = (name: string, level: string, member: string) =>
    assert.is(run('zip', ['-q', level, at(name), member, 'notes.txt'], { cwd: at('zsrc') }).code, 0);
  writeFileSync(join(at('zsrc'), 'notes.txt'), 'release notes\n');
  z('stored-raw.zip', '-0', 'disk.img');
  z('deflated-raw.zip', '-6', 'disk.img');
  z('stored-qcow2.zip', '-0', 'disk.qcow2');
  z('deflated-qcow2.zip', '-6', 'disk.qcow2');
  for (const f of ['stored-raw.zip', 'deflated-raw.zip', 'stored-qcow2.zip', 'deflated-qcow2.zip']) {
    ok(['convert', '-O', 'vmdk', at(f), at('fromzip.vmdk')]);
    assert.is(qemuCompare(input, 'raw', at('fromzip.vmdk'), 'vmdk').code, 0, f);
  }
  const j = JSON.parse(ok(['info', '--json', at('deflated-qcow2.zip')]).stdout);
  assert.is(j.member, 'disk.qcow2');
  assert.is(j.subformat, 'qcow2');
});

test('errors: usage errors exit 2; bad images exit 1 with one line naming the file; no output left behind', () => {
  const u = ingot(['convert', input, at('y.qcow2'), '--compression-type', 'lz4']);
  assert.is(u.code, 2);
  assert.is(ingot(['convert', '-O', 'nope', input, at('y.bin')]).code, 2);
  writeFileSync(at('junk.vhd'), Buffer.concat([Buffer.alloc(4096, 1), Buffer.from('conectix'), Buffer.alloc(504, 7)]));
  const b = ingot(['convert', at('junk.vhd'), at('y.raw')]);
  assert.is(b.code, 1);
  assert.is(b.stderr.trim().split('\n').length, 1);
  assert.match(b.stderr, /junk\.vhd/);
  assert.match(b.stderr, /checksum/);
  assert.not.ok(readdirSync(t.dir).some((f) => f === 'y.raw' || f.includes('.ingot-')));
});

test.after(() => t.done());
test.run();
