// `--format appliance`: NAME.tar.gz with the raw disk and a virt-image XML
// descriptor, checked by outside tools only: gzip -t, tar -tzvf / tar -xzSf
// (GNU tar), xmllint --relaxng against python-virtinst's doc/image.rng (and
// xmllint --xpath to read the descriptor), sha256sum, cmp against the raw
// image of the same build, sfdisk and e2fsck on the extracted disk.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SHARED } from './helpers/cli.js';
import { requireTool } from './helpers/tools.js';
import { runIngot, sha256, writeSpec } from './provenance-fixture.js';

const work = mkdtempSync(join(tmpdir(), 'ingot-appliance-'));
const out = join(work, 'out');
const RNG = join(SHARED, 'fixtures', 'virt-image', 'doc', 'image.rng');
const EPOCH = 1700000000;

const xpath = (file: string, expr: string) => execFileSync('xmllint', ['--xpath', expr, file], { encoding: 'utf8' }).trim();

test('the virt-image schema validator is a real oracle: python-virtinst\'s valid examples pass, its invalid ones fail', () => {
  requireTool('xmllint');
  const lint = (f: string) => spawnSync('xmllint', ['--noout', '--relaxng', RNG, join(SHARED, 'fixtures', 'virt-image', f)], { encoding: 'utf8' }).status;
  assert.is(lint('doc/example1.xml'), 0);
  assert.is(lint('tests/virtconv-files/virtimage_output/test1.virt-image'), 0);
  assert.is.not(lint('tests/image-xml/image-format.xml'), 0);
  assert.is.not(lint('tests/image-xml/image-kernel.xml'), 0);
});

test('--format appliance writes NAME.tar.gz holding NAME/NAME-sda.raw and a schema-valid NAME/NAME.xml', () => {
  for (const t of ['tar', 'gzip', 'xmllint', 'sha256sum', 'sfdisk', 'e2fsck']) requireTool(t);
  const r = runIngot(['build', writeSpec(work, 'app', { network: 2 }), '-o', out, '--format', 'raw,appliance', '-q'], { env: { SOURCE_DATE_EPOCH: String(EPOCH) } });
  assert.is(r.code, 0, r.stderr);
  const bundle = join(out, 'app.tar.gz');
  assert.is(spawnSync('gzip', ['-t', bundle]).status, 0);
  // Members, sizes, owners and dates as GNU tar lists them.
  const list = execFileSync('tar', ['-tzvf', bundle], { encoding: 'utf8', env: { ...process.env, TZ: 'UTC' } }).trim().split('\n');
  assert.is(list.length, 2, list.join('\n'));
  const rawSize = statSync(join(out, 'app.raw')).size;
  assert.match(list[0]!, new RegExp(`^-rw-r--r-- root/root\\s+${rawSize} 2023-11-14 22:13 app/app-sda\\.raw$`));
  assert.match(list[1]!, /^-rw-r--r-- root\/root\s+\d+ 2023-11-14 22:13 app\/app\.xml$/);
  const x = join(work, 'x');
  mkdirSync(x);
  execFileSync('tar', ['-xzSf', bundle, '-C', x]);
  const disk = join(x, 'app', 'app-sda.raw');
  const xml = join(x, 'app', 'app.xml');
  const v = spawnSync('xmllint', ['--noout', '--relaxng', RNG, xml], { encoding: 'utf8' });
  assert.is(v.status, 0, v.stderr);
  // What the descriptor says, read by xmllint.
  assert.is(xpath(xml, 'string(/image/name)'), 'app');
  assert.is(xpath(xml, 'string(/image/description)'), 'ingot test image app <&>');
  assert.is(xpath(xml, 'string(/image/domain/boot/@type)'), 'hvm');
  assert.is(xpath(xml, 'string(/image/domain/boot/guest/arch)'), 'x86_64');
  assert.is(xpath(xml, 'string(/image/domain/boot/os/loader/@dev)'), 'hd');
  assert.is(xpath(xml, 'string(/image/domain/boot/drive/@disk)'), 'app-sda.raw');
  assert.is(xpath(xml, 'count(/image/domain/devices/interface)'), '2');
  assert.is(xpath(xml, 'count(/image/storage/disk)'), '1');
  assert.is(xpath(xml, 'string(/image/storage/disk/@file)'), 'app-sda.raw');
  assert.is(xpath(xml, 'string(/image/storage/disk/@format)'), 'raw');
  assert.is(xpath(xml, 'string(/image/storage/disk/@use)'), 'system');
  assert.is(Number(xpath(xml, 'string(/image/storage/disk/@size)')), Math.ceil(statSync(disk).size / 2 ** 20));
  assert.is(xpath(xml, 'string(/image/storage/disk/checksum/@type)'), 'sha256');
  // The checksum is the extracted disk's, and the disk is the build's raw image, byte for byte, still sparse.
  assert.is(xpath(xml, 'string(/image/storage/disk/checksum)'), sha256(disk));
  assert.is(spawnSync('cmp', [disk, join(out, 'app.raw')]).status, 0);
  const du = Number(execFileSync('du', ['-k', disk], { encoding: 'utf8' }).split('\t')[0]) * 1024;
  assert.ok(du < statSync(disk).size / 2, `extracted disk allocates ${du} of ${statSync(disk).size} bytes`);
  const parts = JSON.parse(execFileSync('sfdisk', ['--json', disk], { encoding: 'utf8' })) as { partitiontable: { label: string; partitions: { start: number; size: number }[] } };
  assert.is(parts.partitiontable.label, 'gpt');
  const root = parts.partitiontable.partitions[1]!;
  const img = join(work, 'root.img');
  execFileSync('dd', [`if=${disk}`, `of=${img}`, 'bs=512', `skip=${root.start}`, `count=${root.size}`, 'status=none', 'conv=sparse']);
  const fsck = spawnSync('e2fsck', ['-fn', img], { encoding: 'utf8' });
  assert.is(fsck.status, 0, fsck.stdout);
  // CHECKSUM covers both outputs.
  const c = spawnSync('sha256sum', ['-c', 'CHECKSUM'], { cwd: out, encoding: 'utf8' });
  assert.is(c.status, 0, c.stdout);
  assert.match(c.stdout, /app\.tar\.gz: OK/);
  assert.match(c.stdout, /app\.raw: OK/);
});

test('appliance and tar.gz in one build are refused (both are NAME.tar.gz), leaving no output', () => {
  const o = join(work, 'both');
  const r = runIngot(['build', writeSpec(work, 'both'), '-o', o, '--format', 'appliance,tar.gz']);
  assert.is(r.code, 1);
  assert.match(r.stderr, /appliance and tar\.gz/);
  assert.equal(existsSync(o) ? readdirSync(o) : [], []);
});

test('the descriptor for several disks names each with its own drive, target and checksum (xmllint)', async () => {
  const { writeAppliance } = await import('../src/build/appliance.js');
  const { MemoryTarget } = await import('../src/disk/target.js');
  const a = new MemoryTarget(3 * 2 ** 20);
  // Unaligned writes: GNU tar must still extract every later sparse entry at its place.
  await a.write(Buffer.from('first disk'), 2 ** 20 + 3);
  await a.write(Buffer.from('second write'), 2 ** 20 + 5000);
  await a.write(Buffer.from('third'), 2 * 2 ** 20 + 777);
  const b = new MemoryTarget(2 ** 20 + 512);
  await b.write(Buffer.alloc(600, 0x5a), 2 ** 20 - 100);
  const path = join(work, 'multi.tar.gz');
  await writeAppliance(path, [{ file: 'm-sda.raw', source: a }, { file: 'm-sdb.raw', source: b }], { name: 'm', arch: 'i686', mtime: 0, vcpu: 2, memoryKiB: 524288 });
  const x = join(work, 'multi');
  mkdirSync(x);
  execFileSync('tar', ['-xzSf', path, '-C', x]);
  const xml = join(x, 'm', 'm.xml');
  assert.is(spawnSync('xmllint', ['--noout', '--relaxng', RNG, xml]).status, 0);
  assert.is(xpath(xml, 'string(/image/domain/boot/drive[2]/@target)'), 'hdb');
  assert.is(xpath(xml, 'string(/image/domain/devices/vcpu)'), '2');
  assert.is(xpath(xml, 'string(/image/domain/devices/memory)'), '524288');
  for (const [i, f] of ['m-sda.raw', 'm-sdb.raw'].entries()) {
    assert.is(xpath(xml, `string(/image/storage/disk[${i + 1}]/checksum)`), sha256(join(x, 'm', f)), f);
  }
  assert.is(statSync(join(x, 'm', 'm-sdb.raw')).size, 2 ** 20 + 512);
  const got = readFileSync(join(x, 'm', 'm-sda.raw'));
  assert.is(got.subarray(2 ** 20 + 3, 2 ** 20 + 13).toString(), 'first disk');
  assert.is(got.subarray(2 ** 20 + 5000, 2 ** 20 + 5012).toString(), 'second write');
  assert.is(got.subarray(2 * 2 ** 20 + 777, 2 * 2 ** 20 + 782).toString(), 'third');
  const gotB = readFileSync(join(x, 'm', 'm-sdb.raw'));
  assert.ok(gotB.subarray(2 ** 20 - 100, 2 ** 20 + 500).every((c) => c === 0x5a));
  assert.is(gotB.subarray(0, 2 ** 20 - 100).some((c) => c !== 0), false);
});

test.after(() => rmSync(work, { recursive: true, force: true }));
test.run();
