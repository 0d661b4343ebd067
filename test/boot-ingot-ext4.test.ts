/**
 * The product path with ingot's own writers only: MBR table (src/disk),
 * ext4 (src/fs/ext4, ldlinux.sys written contiguous), prepareBoot/finishBoot
 * with extlinux (MBR) and GRUB BIOS + systemd-boot on a FAT ESP (hybrid GPT) —
 * no host tool builds anything. e2fsck and qemu are the oracles.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireTool } from './helpers/tools.js';
import { kernelVersion, sh, stagedFixtureRoot } from '../fixtures/images.js';
import { treeFromDir } from '../fixtures/tree.js';
import { finishBoot, prepareBoot } from '../src/boot/plan.js';
import { bootImage } from '../src/qemu/runner.js';
import { SparseFileTarget, SubTarget } from '../src/disk/target.js';
import { writePartitionTable } from '../src/disk/table.js';
import { writeExt4 } from '../src/fs/ext4/index.js';
import { writeFat } from '../src/fs/fat/index.js';
import { BufferContent, StagingTree } from '../src/tree/tree.js';

for (const t of ['qemu-system-x86_64', 'e2fsck', 'rpm2cpio', 'cpio']) requireTool(t);
const dir = mkdtempSync(join(tmpdir(), 'ingot-own-ext4-'));
const root = stagedFixtureRoot();
const kver = kernelVersion(root);
const uuid = '4d3c2b1a-0f9e-4d8c-a7b6-5e4d3c2b1a09';
// These images are now built and booted through `ingot build` in boot-e2e.test.ts; the boots of this
// pre-integration assembly run with INGOT_LONG=1 only (the e2fsck checks always run).
const LONG = process.env.INGOT_LONG === '1';

test('own MBR + own ext4 + extlinux → e2fsck clean, boots to the marker', async () => {
  const tree = treeFromDir(root);
  const prep = await prepareBoot(tree, { firmware: 'bios', biosLoader: 'extlinux', rootUuid: uuid, append: ['quiet'] });
  for (const p of [`/usr/lib/modules/${kver}/kernel`, '/usr/lib/grub', '/usr/share/doc']) tree.remove(p);
  const MiB = 1 << 20, partStart = MiB, partSize = 96 * MiB;
  const disk = join(dir, 'disk.img');
  const target = await SparseFileTarget.create(disk, partStart + partSize);
  try {
    await writePartitionTable(target, { type: 'mbr', seed: 'boot-test', partitions: [{ start: partStart, size: partSize, type: 0x83 }] });
    const fs = new SubTarget(target, partStart, partSize);
    const res = await writeExt4(tree, fs, { uuid, contiguous: ['/boot/extlinux/ldlinux.sys'] });
    const place = res.files['/boot/extlinux/ldlinux.sys'];
    assert.ok(place, 'ext4 writer reports the placement of ldlinux.sys');
    const ranges = place!.extents.map((e) => ({ offset: e.pblk * res.blockSize, length: e.len * res.blockSize }));
    await finishBoot(target, prep, { bootFs: { fileBlocks: () => ranges, fsOffset: partStart, fsSize: res.sizeBytes }, bootPartitionIndex: 0, tree });
    await target.flush();
  } finally {
    await target.close();
  }
  const part = join(dir, 'part.ext4');
  sh('dd if="$1" of="$2" bs=1M skip=1 status=none', [disk, part]);
  const fsck = spawnSync('e2fsck', ['-fn', part], { encoding: 'utf8' });
  assert.is(fsck.status, 0, fsck.stdout + fsck.stderr);
  if (!LONG) return;
  const r = await bootImage({ image: disk, timeout: 150 });
  assert.ok(r.ok, `${r.outcome}\n${r.tail.join('\n')}`);
  assert.match(r.matchedLine!, new RegExp(`kernel=${kver} root=/dev/vda1 ext4`));
  console.log(`  own ext4 + extlinux boot: ${r.seconds.toFixed(1)} s (${r.accel})`);
});

test('own GPT + FAT ESP + ext4, hybrid plan (GRUB BIOS + systemd-boot) → boots with SeaBIOS and OVMF', async () => {
  const tree = treeFromDir(root);
  const prep = await prepareBoot(tree, { firmware: 'hybrid', rootUuid: uuid, vendor: 'ingot', append: ['quiet'] });
  for (const p of [`/usr/lib/modules/${kver}/kernel`, '/usr/share/doc']) tree.remove(p);
  const MiB = 1 << 20;
  const bios = { start: MiB, size: MiB }, esp = { start: 2 * MiB, size: 64 * MiB }, rootPart = { start: 66 * MiB, size: 128 * MiB };
  const disk = join(dir, 'hybrid.img');
  const target = await SparseFileTarget.create(disk, 195 * MiB);
  try {
    await writePartitionTable(target, { type: 'gpt', seed: 'boot-hybrid', partitions: [
      { ...bios, type: 'bios-boot', name: 'bios' }, { ...esp, type: 'esp', name: 'ESP' }, { ...rootPart, type: 'linux', name: 'root' },
    ] });
    const espTree = new StagingTree({ defaultTime: { sec: 1700000000, nsec: 0 } });
    for (const f of prep.espFiles) {
      espTree.mkdirp(f.path.slice(0, f.path.lastIndexOf('/')) || '/');
      espTree.addFile(f.path, new BufferContent(f.data), { mode: 0o644 });
    }
    await writeFat(new SubTarget(target, esp.start, esp.size), espTree, { label: 'ESP', seed: 'esp', hiddenSectors: esp.start / 512 });
    const res = await writeExt4(tree, new SubTarget(target, rootPart.start, rootPart.size), { uuid });
    await finishBoot(target, prep, { bootFs: { fileBlocks: () => [], fsOffset: rootPart.start, fsSize: res.sizeBytes }, grubCore: { sector: bios.start / 512, sectors: bios.size / 512 }, tree });
    await target.flush();
  } finally {
    await target.close();
  }
  if (!LONG) return;
  for (const firmware of ['bios', 'uefi'] as const) {
    const r = await bootImage({ image: disk, firmware, timeout: 180 });
    assert.ok(r.ok, `${firmware}: ${r.outcome}\n${r.tail.join('\n')}`);
    assert.match(r.matchedLine!, /root=\/dev\/vda3 ext4/);
    console.log(`  own GPT/FAT/ext4 hybrid, ${firmware}: ${r.seconds.toFixed(1)} s (${r.accel})`);
  }
});

test.after(() => rmSync(dir, { recursive: true, force: true }));
test.run();
