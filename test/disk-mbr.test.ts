import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execSync } from 'node:child_process';
import {
  computeLayout, writePartitionTable, readPartitionTable, SparseFileTarget, FileSource, BytesSource, MiB,
  PartitionTableError, LayoutError, encodeMbrSector, type PartitionTable, type PartitionTableInfo,
} from '../src/disk/index.js';
import { MbrPartitionRecord } from '../src/disk/mbr.js';
import { requireTool } from './helpers/tools.js';
import { assertMatchesSfdisk, IMAGES, readTableFile, run, sfdiskJson, writeTableImage } from './helpers/disk.js';

const dir = mkdtempSync(join(tmpdir(), 'ingot-mbr-'));

const writeImage = (name: string, size: number, table: PartitionTable) => writeTableImage(dir, name, size, table);
const readFile = readTableFile;

/** fdisk -l must list the table without complaint. */
function fdiskClean(path: string): string {
  requireTool('fdisk');
  const r = run('fdisk', ['-l', '-o', 'Device,Boot,Start,End,Sectors,Id,Start-C/H/S,End-C/H/S', path]);
  assert.is(r.code, 0, r.stderr);
  assert.is(r.stderr, '');
  assert.not.match(r.stdout, /does not start on|overlap|exceeds|invalid|Failed/i, r.stdout);
  return r.stdout;
}

/** fdisk's C/H/S columns decode the CHS bytes we wrote; they must match the 255×63 translation of each LBA. */
function chsOf(lba: number): string {
  const c = Math.floor(lba / (255 * 63));
  return c > 1023 ? '1023/254/63' : `${c}/${Math.floor(lba / 63) % 255}/${(lba % 63) + 1}`;
}

test('four primaries with a boot flag: sfdisk agrees field by field, fdisk -l is clean and decodes sane CHS', async () => {
  const size = 256 * MiB;
  const layout = computeLayout([
    { size: 64 * MiB, type: 'esp', bootable: true }, { size: 16 * MiB, type: 'swap' }, { size: 32 * MiB, type: 'fat32-lba' }, { grow: true, type: 'linux' },
  ], size, { table: 'mbr' });
  const { path, info } = await writeImage('p4.img', size, { type: 'mbr', partitions: layout.partitions, seed: 'm' });
  assertMatchesSfdisk(info, sfdiskJson(path).table!, 'four primaries');
  const out = fdiskClean(path);
  for (const p of info.partitions) {
    const s = p.start / 512;
    const e = s + p.size / 512 - 1;
    assert.match(out, new RegExp(`img${p.index}\\s+${p.bootable ? '\\*\\s+' : ''}${s}\\s+${e}\\s+\\d+\\s+${p.type}\\s+${chsOf(s)}\\s+${chsOf(e)}\\s*$`, 'm'), `p${p.index}: ${out}`);
  }
  assert.equal(await readFile(path), info);
});

test('extended + logical chain: sfdisk lists p5.. with the right geometry; fdisk clean', async () => {
  const size = 128 * MiB;
  const layout = computeLayout([
    { size: 8 * MiB, type: 'fat16', bootable: true }, { size: 4 * MiB }, { size: 2 * MiB, logical: true }, { size: 3 * MiB, logical: true, type: 'swap' },
    { size: 5 * MiB, logical: true, type: 'lvm' }, { grow: true, logical: true },
  ], size, { table: 'mbr' });
  const { path, info } = await writeImage('ext.img', size, { type: 'mbr', partitions: layout.partitions, seed: 'e' });
  const sf = sfdiskJson(path);
  assert.is(sf.stderr, '');
  assertMatchesSfdisk(info, sf.table!, 'logicals');
  assert.equal(info.partitions.map((p) => p.index), [1, 2, 3, 5, 6, 7, 8]);
  assert.is(info.partitions[2]!.type, '5');
  const out = fdiskClean(path);
  for (const p of info.partitions.filter((q) => q.logical)) {
    const s = p.start / 512;
    assert.match(out, new RegExp(`img${p.index}\\s+${s}\\s+\\d+\\s+\\d+\\s+\\w+\\s+${chsOf(s)}\\s`, 'm'), `absolute CHS for p${p.index}`);
  }
});

test('beyond the CHS limit the CHS fields are 0xFEFFFF', async () => {
  const size = 10 * 1024 * MiB; // 10 GiB sparse
  const layout = computeLayout([{ size: 9 * 1024 * MiB }, { grow: true }], size, { table: 'mbr' });
  const { path, info } = await writeImage('big.img', size, { type: 'mbr', partitions: layout.partitions, seed: 'b' });
  const src = await FileSource.open(path);
  const sector = new Uint8Array(512);
  await src.read(sector, 0);
  await src.close();
  const p2 = MbrPartitionRecord.decode(sector, 446 + 16);
  assert.equal([...p2.startingChs], [0xfe, 0xff, 0xff]);
  assert.equal([...p2.endingChs], [0xfe, 0xff, 0xff]);
  const p1 = MbrPartitionRecord.decode(sector, 446);
  assert.equal([...p1.startingChs], [0x20, 0x21, 0x00]); // LBA 2048 = C0/H32/S33
  assertMatchesSfdisk(info, sfdiskJson(path).table!, 'big');
  fdiskClean(path);
});

test('disk signature: explicit, seeded (deterministic) and random; boot code kept in bytes 0..439', async () => {
  const boot = new Uint8Array(440).fill(0x90);
  const parts = [{ start: MiB, size: MiB }];
  const a = await writeImage('s1.img', 8 * MiB, { type: 'mbr', partitions: parts, diskSignature: 0xdeadbeef, bootCode: boot });
  assert.is(a.info.diskId, '0xdeadbeef');
  assert.is(sfdiskJson(a.path).table!.id, '0xdeadbeef');
  assert.equal(new Uint8Array(readFileSync(a.path).subarray(0, 440)), boot);
  const s1 = await writeImage('s2.img', 8 * MiB, { type: 'mbr', partitions: parts, seed: 'k' });
  const s2 = await writeImage('s3.img', 8 * MiB, { type: 'mbr', partitions: parts, seed: 'k' });
  assert.ok(readFileSync(s1.path).equals(readFileSync(s2.path)));
  const r1 = await writeImage('r1.img', 8 * MiB, { type: 'mbr', partitions: parts });
  const r2 = await writeImage('r2.img', 8 * MiB, { type: 'mbr', partitions: parts });
  assert.is.not(r1.info.diskId, r2.info.diskId);
  // blkid's PARTUUID for MBR is signature-index
  assert.is(a.info.partitions[0]!.uuid, 'deadbeef-01');
});

test('bad requests are typed errors', async () => {
  await assert.throws(() => encodeMbrSector([], { bootCode: new Uint8Array(441) }), (e: unknown) => e instanceof PartitionTableError);
  await writeImage('t.img', 4 * MiB, { type: 'mbr', partitions: [{ start: MiB, size: MiB, type: 'no-such-type' }] })
    .then(() => assert.unreachable(), (e: unknown) => assert.ok(e instanceof PartitionTableError && e.code === 'MBR_BAD_TYPE'));
  await writeImage('t2.img', 4 * MiB, { type: 'mbr', partitions: [{ start: MiB, size: 8 * MiB }] })
    .then(() => assert.unreachable(), (e: unknown) => assert.ok(e instanceof PartitionTableError && e.code === 'TABLE_RANGE'));
  await writeImage('t3.img', 8 * MiB, { type: 'mbr', partitions: [{ start: MiB, size: 2 * MiB }, { start: 2 * MiB, size: MiB }] })
    .then(() => assert.unreachable(), (e: unknown) => assert.ok(e instanceof PartitionTableError && e.code === 'MBR_OVERLAP'));
  assert.throws(() => computeLayout([{ size: MiB }, { size: MiB }, { size: MiB }, { size: MiB }, { size: MiB, logical: true }], 64 * MiB, { table: 'mbr' }),
    (e: unknown) => e instanceof LayoutError);
});

test('reader agrees with sfdisk on MBRs sfdisk wrote (primaries, extended, logicals, boot flag)', async () => {
  const path = join(dir, 'sf.img');
  writeFileSync(path, '');
  run('truncate', ['-s', '64M', path]);
  execSync(`sfdisk -q ${path}`, { input: 'label: dos\nlabel-id: 0x12345678\n2048,8192,c,*\n,4096,82\n,,5\n,2048,83\n,4096,8e\n,,83\n' });
  const ours = await readFile(path);
  assertMatchesSfdisk(ours, sfdiskJson(path).table!, 'sfdisk-made');
  assert.equal(ours.partitions.map((p) => p.index), [1, 2, 3, 5, 6, 7]);
});

test('an EBR chain that loops or leaves the disk ends with a warning, never a hang', async () => {
  // MBR: extended partition at LBA 10; EBR at 10 links back to itself.
  const disk = new Uint8Array(64 * 512);
  disk.set(encodeMbrSector([{ type: 0x05, startLba: 10, sectors: 50 }], { diskSignature: 1 }), 0);
  disk.set(encodeMbrSector([{ type: 0x83, startLba: 1, sectors: 2 }, { type: 0x05, startLba: 0 + 20, sectors: 5 }]), 10 * 512);
  disk.set(encodeMbrSector([{ type: 0x83, startLba: 1, sectors: 2 }, { type: 0x05, startLba: 20, sectors: 5 }]), 30 * 512);
  // the second EBR (LBA 30) links to 10 + 20 → itself: a loop
  const r = await readPartitionTable(new BytesSource(disk));
  assert.equal(r.partitions.map((p) => p.index), [1, 5, 6]);
  assert.ok(r.warnings.some((w) => /loops/.test(w)), r.warnings.join(';'));
  const loopPath = join(dir, 'loop.img');
  writeFileSync(loopPath, disk);
  // sfdisk follows the loop until its cap of 60 partitions, repeating p6; its first entries are ours.
  const sf = sfdiskJson(loopPath);
  assert.match(sf.stderr, /Omitting partitions/);
  assertMatchesSfdisk(r, { ...sf.table!, partitions: sf.table!.partitions!.slice(0, 3) }, 'loop prefix');
});

test('peer MBRs (mbrman, node-mbr, grub, raspberry) read as sfdisk reads them', async () => {
  const files = ['mbrman/disk1.img', 'mbrman/disk2.img', 'node-mbr/rpi.bin', 'node-mbr/rpi3.bin', 'node-mbr/rufus.bin',
    'node-mbr/syslinux.bin', 'node-gpt/raspberry.bin'];
  for (const f of files) {
    const path = join(IMAGES, f);
    assertMatchesSfdisk(await readFile(path), sfdiskJson(path).table!, f);
  }
  // rpi.bin's extended partition points past the 512-byte file: sfdisk says it failed to read the EBR; so do we.
  const rpi = await readFile(join(IMAGES, 'node-mbr/rpi.bin'));
  assert.ok(rpi.warnings.some((w) => /failed to read extended partition table/.test(w)));
  // The hybrid Boot Camp MBR alone: 0xEE record but no GPT in a 512-byte file → typed error (sfdisk cannot list it as GPT either).
  await readFile(join(IMAGES, 'node-mbr/bootcamp-hybrid.bin')).then((r) => assert.unreachable(JSON.stringify(r)),
    (e: unknown) => assert.ok(e instanceof PartitionTableError && e.code === 'GPT_CORRUPT', String(e)));
  // A FAT boot sector carries 0x55AA: sfdisk reads it as an MBR (empty, or the one partition of the "mbr" variant).
  for (const x of ['referenceFAT16.xxd', 'referenceFAT32mbr.xxd']) {
    const img = join(dir, `${x}.img`);
    execSync(`xxd -r '${join(IMAGES, 'dosfstools', x)}' > '${img}'`);
    assertMatchesSfdisk(await readFile(img), sfdiskJson(img).table!, x);
  }
  const grub = join(dir, 'grub_mbr.raw');
  writeFileSync(grub, execSync(`bzcat ${join(IMAGES, 'qemu-iotests/grub_mbr.raw.bz2')}`));
  assertMatchesSfdisk(await readFile(grub), sfdiskJson(grub).table!, 'grub_mbr');
});

test('go-diskfs MBR entry decodes to what its sfdisk command made', () => {
  const e = MbrPartitionRecord.decode(readFileSync(join(IMAGES, 'go-diskfs/mbr/mbr_partition.dat')));
  assert.is(e.osType, 0x83);
  assert.is(e.startingLba, 2048);
  assert.is(e.sizeInLba, 20480);
  assert.equal([...e.startingChs], [0x20, 0x21, 0x00]);
});

test.after(() => rmSync(dir, { recursive: true, force: true }));
test.run();
