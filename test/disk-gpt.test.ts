import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, openSync, writeSync, closeSync, copyFileSync, chmodSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  computeLayout, writePartitionTable, readPartitionTable, SparseFileTarget, FileSource, BytesSource, MiB, GPT_TYPES,
  PartitionTableError, type PartitionTable, type PartitionTableInfo,
} from '../src/disk/index.js';
import { GptPartitionEntry } from '../src/disk/gpt.js';
import { crc32 } from '../src/disk/crc32.js';
import { requireTool } from './helpers/tools.js';
import { assertMatchesSfdisk, IMAGES, readTableFile, run, sfdiskJson, writeTableImage } from './helpers/disk.js';

const dir = mkdtempSync(join(tmpdir(), 'ingot-gpt-'));

const writeImage = (name: string, size: number, table: PartitionTable) => writeTableImage(dir, name, size, table);
const readFile = readTableFile;

function sgdiskVerify(path: string): string {
  requireTool('sgdisk');
  const r = run('sgdisk', ['-v', path]);
  assert.is(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /No problems found/);
  assert.not.match(r.stdout, /Caution|Warning|Problem:/, r.stdout);
  return r.stdout;
}

test('crc32 is the ISO 3309 CRC (check value of "123456789")', () => {
  assert.is(crc32(Buffer.from('123456789')), 0xcbf43926);
});

test('type names resolve to the GUIDs util-linux knows under the same meaning', () => {
  requireTool('sfdisk');
  const known = new Map(run('sfdisk', ['--label', 'gpt', '-T']).stdout.split('\n')
    .map((l) => /^([0-9A-Fa-f-]{36})\s+(.*)$/.exec(l.trim())).filter((m): m is RegExpExecArray => !!m)
    .map((m) => [m[1]!.toUpperCase(), m[2]!]));
  const expect: Record<string, string> = {
    'esp': 'EFI System', 'bios-boot': 'BIOS boot', 'xbootldr': 'Linux extended boot', 'linux': 'Linux filesystem',
    'swap': 'Linux swap', 'home': 'Linux home', 'srv': 'Linux server data', 'var': 'Linux variable data',
    'tmp': 'Linux temporary data', 'root-x86-64': 'Linux root (x86-64)', 'root-x86': 'Linux root (x86)',
    'root-arm64': 'Linux root (ARM-64)', 'root-arm': 'Linux root (ARM)', 'usr-x86-64': 'Linux /usr (x86-64)',
    'usr-x86': 'Linux /usr (x86)', 'usr-arm64': 'Linux /usr (ARM-64)', 'lvm': 'Linux LVM', 'raid': 'Linux RAID',
    'prep': 'PowerPC PReP boot', 'microsoft-basic-data': 'Microsoft basic data', 'root-x86-64-verity': 'Linux root verity (x86-64)',
  };
  for (const [name, label] of Object.entries(expect)) assert.is(known.get(GPT_TYPES[name]!), label, name);
  for (const [name, guid] of Object.entries(GPT_TYPES)) assert.ok(known.has(guid) || name === 'luks', `${name} ${guid} unknown to sfdisk`);
});

test('written GPT: sgdisk -v clean, sfdisk agrees field by field (start, size, type, name, uuid, attrs, disk GUID)', async () => {
  const size = 256 * MiB;
  const layout = computeLayout([
    { size: 1 * MiB, type: 'bios-boot', name: 'BIOS boot' },
    { size: 100 * MiB, type: 'esp', name: 'EFI System Partition', attrs: ['no-automount'] },
    { size: 20 * MiB, type: 'xbootldr', name: 'boot', bootable: true },
    { size: 8 * MiB, type: 'swap', name: 'swap' },
    { grow: true, type: 'root-x86-64', name: 'root ünïcode ✓', attrs: ['read-only', 'grow-fs', 'required', 'no-block-io'] },
  ], size, { table: 'gpt' });
  const { path, info } = await writeImage('w1.img', size, { type: 'gpt', partitions: layout.partitions, seed: 'seed-1' });
  sgdiskVerify(path);
  const sf = sfdiskJson(path);
  assert.is(sf.stderr, '');
  assertMatchesSfdisk(info, sf.table!, 'sfdisk vs written');
  assert.is(sf.table!.firstlba, 34);
  assert.is(sf.table!.lastlba, size / 512 - 34);
  // sgdisk -p prints the names and the disk GUID independently of libfdisk.
  const p = run('sgdisk', ['-p', path]).stdout;
  assert.match(p, new RegExp(`Disk identifier \\(GUID\\): ${info.diskGuid}`));
  assert.match(p, /root ünïcode ✓/);
  // and our reader sees what was written
  assert.equal(await readFile(path), info);
});

test('GPT with 4096-byte sectors: fdisk -b 4096 agrees', async () => {
  requireTool('fdisk');
  const size = 64 * MiB;
  const layout = computeLayout([{ size: 10 * MiB, type: 'esp' }, { grow: true, type: 'linux' }], size, { table: 'gpt', sectorSize: 4096 });
  const { path, info } = await writeImage('w4k.img', size, { type: 'gpt', sectorSize: 4096, partitions: layout.partitions, seed: 's' });
  const out = run('fdisk', ['-l', '-b', '4096', path]);
  assert.is(out.code, 0, out.stderr);
  assert.not.match(out.stderr + out.stdout, /corrupt|mismatch|invalid/i);
  assert.match(out.stdout, new RegExp(`Disk identifier: ${info.diskGuid}`));
  const rows = [...out.stdout.matchAll(/^\S+img(\d+)\s+(\d+)\s+(\d+)\s+(\d+)/gm)].map((m) => m.slice(1).map(Number));
  assert.equal(rows, info.partitions.map((p) => [p.index, p.start / 4096, (p.start + p.size) / 4096 - 1, p.size / 4096]));
  const back = await readFile(path);
  assert.is(back.sectorSize, 4096);
  assert.equal(back.partitions, info.partitions);
});

test('determinism: the same seed gives byte-identical tables; another seed changes every GUID', async () => {
  const layout = computeLayout([{ size: MiB, type: 'esp' }, { grow: true }], 32 * MiB, { table: 'gpt' });
  const a = await writeImage('d1.img', 32 * MiB, { type: 'gpt', partitions: layout.partitions, seed: 'same' });
  const b = await writeImage('d2.img', 32 * MiB, { type: 'gpt', partitions: layout.partitions, seed: 'same' });
  const c = await writeImage('d3.img', 32 * MiB, { type: 'gpt', partitions: layout.partitions, seed: 'other' });
  const h = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');
  assert.is(h(a.path), h(b.path));
  assert.is.not(h(a.path), h(c.path));
  assert.is.not(a.info.diskGuid, c.info.diskGuid);
  assert.is.not(a.info.partitions[0]!.uuid, c.info.partitions[0]!.uuid);
  assert.is.not(a.info.partitions[0]!.uuid, a.info.partitions[1]!.uuid);
  // RFC 9562 version 5 / variant 10xx
  assert.match(a.info.diskGuid!, /^[0-9A-F]{8}-[0-9A-F]{4}-5[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}$/);
  // Without a seed the GUIDs are random.
  const r1 = await writeImage('r1.img', 32 * MiB, { type: 'gpt', partitions: layout.partitions });
  const r2 = await writeImage('r2.img', 32 * MiB, { type: 'gpt', partitions: layout.partitions });
  assert.is.not(r1.info.diskGuid, r2.info.diskGuid);
});

test('explicit GUIDs, slots and boot code for the protective MBR are honoured', async () => {
  const boot = new Uint8Array(440).map((_, i) => (i * 7 + 1) & 0xff);
  const { path, info } = await writeImage('x.img', 16 * MiB, {
    type: 'gpt', diskGuid: '01234567-89ab-cdef-0123-456789abcdef', bootCode: boot,
    partitions: [{ start: MiB, size: MiB, type: '0FC63DAF-8483-4772-8E79-3D69D8477DE4', uuid: 'aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee', index: 7 }],
  });
  sgdiskVerify(path);
  assertMatchesSfdisk(info, sfdiskJson(path).table!, 'explicit');
  assert.is(info.partitions[0]!.index, 7);
  const img = readFileSync(path);
  assert.equal(new Uint8Array(img.subarray(0, 440)), boot);
  assert.is(img.readUInt16LE(510), 0xaa55);
  assert.is(img[446 + 4], 0xee);
});

test('reader agrees with sfdisk on tables made by sgdisk (types, names, attributes)', async () => {
  requireTool('sgdisk');
  const path = join(dir, 'sg.img');
  writeFileSync(path, '');
  run('truncate', ['-s', '100M', path]);
  const r = run('sgdisk', [
    '-n', '1:2048:+1M', '-t', '1:ef02', '-c', '1:grub',
    '-n', '2:0:+50M', '-t', '2:ef00', '-c', '2:EFI System', '-A', '2:set:0',
    '-n', '5:0:+10M', '-t', '5:8200', '-A', '5:set:2', '-A', '5:set:63',
    '-n', '3:0:0', '-t', '3:8304', '-c', '3:root',
    '-U', 'R', path,
  ]);
  assert.is(r.code, 0, r.stderr + r.stdout);
  const ours = await readFile(path);
  assertMatchesSfdisk(ours, sfdiskJson(path).table!, 'sgdisk-made');
  assert.equal(ours.partitions.map((p) => p.typeName), ['bios-boot', 'esp', 'root-x86-64', 'swap']);
  assert.equal(ours.warnings, []);
});

/** Copy an image and overwrite `bytes` at `offset`. */
function corrupt(src: string, name: string, offset: number, bytes: Uint8Array): string {
  const path = join(dir, name);
  copyFileSync(src, path);
  chmodSync(path, 0o644);
  const fd = openSync(path, 'r+');
  writeSync(fd, bytes, 0, bytes.length, offset);
  closeSync(fd);
  return path;
}

test('a corrupt primary header or entry array: the backup is used and reported, like sfdisk does', async () => {
  const layout = computeLayout([{ size: MiB, type: 'esp', name: 'e' }, { grow: true, name: 'r' }], 16 * MiB, { table: 'gpt' });
  const { path, info } = await writeImage('good.img', 16 * MiB, { type: 'gpt', partitions: layout.partitions, seed: 'c' });
  for (const [name, off] of [['hdr.img', 512 + 60], ['ent.img', 1024 + 3], ['sig.img', 512]] as const) {
    const bad = corrupt(path, name, off, Uint8Array.of(0x5a));
    const ours = await readFile(bad);
    assert.equal(ours.partitions, info.partitions, name);
    assert.ok(ours.warnings.some((w) => /primary GPT is corrupt.*backup GPT is used/.test(w)), ours.warnings.join('; '));
    const sf = sfdiskJson(bad);
    assertMatchesSfdisk(ours, sf.table!, `sfdisk on ${name}`);
    assert.match(sf.stderr, /primary GPT table is corrupt/i);
  }
  // A damaged backup is reported while the primary is used.
  const lastLba = 16 * MiB / 512 - 1;
  const bb = await readFile(corrupt(path, 'bk.img', lastLba * 512 + 70, Uint8Array.of(0x11)));
  assert.equal(bb.partitions, info.partitions);
  assert.ok(bb.warnings.some((w) => /backup GPT is corrupt/.test(w)));
  // Both gone: a typed error naming the offset of the primary problem.
  const both = corrupt(corrupt(path, 'both0.img', 512 + 60, Uint8Array.of(1)), 'both.img', lastLba * 512 + 60, Uint8Array.of(1));
  await readFile(both).then(() => assert.unreachable('read a GPT without a valid header'), (e: unknown) => {
    assert.ok(e instanceof PartitionTableError, String(e));
    assert.is((e as PartitionTableError).code, 'GPT_CORRUPT');
    assert.is((e as PartitionTableError).context.offset, 512 + 16);
  });
});

test('hostile headers (huge entry counts, entry arrays past the end) are refused without big allocations', async () => {
  const { path } = await writeImage('h.img', 8 * MiB, { type: 'gpt', partitions: [], seed: 'h' });
  const img = readFileSync(path);
  for (const [field, value] of [[80, 0xffffffff], [72, 0x7fffffff], [84, 100]] as const) {
    const b = Buffer.from(img);
    b.writeUInt32LE(value, 512 + field);
    b.writeUInt32LE(0, 512 + 16);
    b.writeUInt32LE(crc32(b.subarray(512, 512 + 92)), 512 + 16);
    const res = await readPartitionTable(new BytesSource(b));
    assert.ok(res.warnings.some((w) => /backup GPT is used/.test(w)), `field ${field}: ${res.warnings}`);
  }
});

// ---- peer sample images ----

test('gptman and rust-gpt sample disks read as sfdisk reads them', async () => {
  for (const f of ['gptman/disk1.img', 'gptman/disk3.img', 'rust-gpt/gpt-disk.img']) {
    const path = join(IMAGES, f);
    const ours = await readFile(path);
    assertMatchesSfdisk(ours, sfdiskJson(path).table!, f);
    assert.equal(ours.warnings, [], f);
  }
  // disk3's second name has garbage after its NUL terminator; the name ends at the NUL.
  assert.is((await readFile(join(IMAGES, 'gptman/disk3.img'))).partitions[1]!.name, 'Name with garbage');
});

test('gptman 4096-byte-sector disks read as fdisk -b 4096 reads them', async () => {
  for (const f of ['gptman/disk2.img', 'gptman/disk4.img']) {
    const path = join(IMAGES, f);
    const ours = await readFile(path);
    const out = run('fdisk', ['-l', '-b', '4096', path]).stdout;
    assert.is(ours.sectorSize, 4096);
    assert.match(out, new RegExp(`Disk identifier: ${ours.diskGuid}`));
    const rows = [...out.matchAll(/^\S+img(\d+)\s+(\d+)\s+(\d+)\s+(\d+)/gm)].map((m) => m.slice(1).map(Number));
    assert.equal(rows, ours.partitions.map((p) => [p.index, p.start / 4096, (p.start + p.size) / 4096 - 1, p.size / 4096]), f);
  }
});

async function assemble(name: string, sectors: number, parts: [string, number][]): Promise<string> {
  const path = join(dir, name);
  const t = await SparseFileTarget.create(path, sectors * 512);
  for (const [f, at] of parts) await t.write(readFileSync(join(IMAGES, f)), at < 0 ? sectors * 512 + at : at);
  await t.close();
  return path;
}

test('node-gpt fragments placed on sparse disks: sfdisk agrees, the bad Boot Camp backup is reported', async () => {
  const bootcamp = await assemble('bootcamp.img', 236978176, [
    ['node-mbr/bootcamp-hybrid.bin', 0], ['node-gpt/bootcamp.bin', 512], ['node-gpt/bootcamp-backup.bin', -16896],
  ]);
  const b = await readFile(bootcamp);
  const sb = sfdiskJson(bootcamp);
  assertMatchesSfdisk(b, sb.table!, 'bootcamp');
  assert.match(sb.stderr, /backup GPT table is corrupt/);
  assert.ok(b.warnings.some((w) => /backup GPT is corrupt/.test(w)), b.warnings.join('; '));
  assert.equal(b.partitions.map((p) => p.typeName), ['esp', 'apple-hfs', 'apple-boot', 'microsoft-basic-data']);

  const exfat = await assemble('exfat.img', 60751872, [['node-gpt/gpt-primary-exfat.bin', 0], ['node-gpt/gpt-backup-exfat.bin', -16896]]);
  const e = await readFile(exfat);
  assertMatchesSfdisk(e, sfdiskJson(exfat).table!, 'exfat');
  assert.equal(e.warnings, []);
});

test('a Raspberry Pi disk head has no GPT: read as the MBR sfdisk sees', async () => {
  const path = join(IMAGES, 'node-gpt/raspberry.bin');
  const ours = await readFile(path);
  assert.is(ours.type, 'mbr');
  assertMatchesSfdisk(ours, sfdiskJson(path).table!, 'raspberry');
});

test('go-diskfs GPT entry decodes to what its sgdisk command line made', () => {
  const e = GptPartitionEntry.decode(readFileSync(join(IMAGES, 'go-diskfs/gpt/gpt_partition.dat')));
  assert.is(e.partitionTypeGuid, GPT_TYPES['esp']);
  assert.is(e.uniquePartitionGuid, '5CA3360B-5DE6-4FCF-B4CE-419CEE433B51');
  assert.is(e.startingLba, 2048n);
  assert.is(e.endingLba, 3048n);
  assert.is(e.partitionName, 'EFI System');
});

test.after(() => rmSync(dir, { recursive: true, force: true }));
test.run();
