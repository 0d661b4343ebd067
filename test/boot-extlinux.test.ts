/**
 * EXTLINUX installed by ingot from the image's own extlinux package:
 * byte-for-byte what `extlinux --install` (the real one, on a loop mount)
 * writes for the same file placement, e2fsck-clean, and it boots in qemu
 * (BIOS + MBR) to the marker on the ext4 root.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireTool } from './helpers/tools.js';
import { sh, ExistingFileTarget, debugfsFileBlocks, kernelVersion, stagedFixtureRoot } from '../fixtures/images.js';
import { unpackWithHostTools } from '../fixtures/repo.js';
import { treeFromDir } from '../fixtures/tree.js';
import { buildInitramfs } from '../src/boot/initramfs.js';
import { extlinuxConf, extlinuxFromTree, installExtlinux, patchExtlinux, sectorsOf, stageExtlinuxFiles, unpatchedLdlinuxSys, ExtlinuxError, extractExtlinuxPayload } from '../src/boot/extlinux.js';
import { bootImage } from '../src/qemu/runner.js';
import { StagingTree } from '../src/tree/tree.js';

for (const t of ['qemu-system-x86_64', 'sfdisk', 'mke2fs', 'debugfs', 'dumpe2fs', 'e2fsck', 'rpm2cpio', 'cpio']) requireTool(t);
requireTool('extlinux', 'extlinux');
const dir = mkdtempSync(join(tmpdir(), 'ingot-extlinux-'));
const root = stagedFixtureRoot();
const kver = kernelVersion(root);
const uuid = '2a4f6e1c-8b3d-4f5a-9c7e-1d2b3c4d5e6f';
const { payload, mbr } = await extlinuxFromTree(treeFromDir(root));
const PART_START = 2048, PART_MB = 64;

/** Disk with one MBR partition (not active, no boot code) holding an ext4 made by mke2fs -d. */
async function makeDisk(name: string): Promise<{ disk: string; part: string }> {
  const rootDir = join(dir, `${name}-root`);
  unpackWithHostTools(['ingot-base', 'ingot-marker', 'busybox-static'], rootDir);
  copyFileSync(join(root, 'boot', `vmlinuz-${kver}`), join(rootDir, 'boot', `vmlinuz-${kver}`));
  writeFileSync(join(rootDir, 'boot', `initrd.img-${kver}`), (await buildInitramfs(treeFromDir(root))).image);
  // Stage 1 through a StagingTree, then copied out for mke2fs -d (ingot's own ext4 writer is not used here).
  const t = new StagingTree();
  stageExtlinuxFiles(t, payload, '/boot/extlinux', extlinuxConf({ kernel: `/boot/vmlinuz-${kver}`, initrd: `/boot/initrd.img-${kver}`, append: `root=UUID=${uuid} console=ttyS0 quiet` }));
  mkdirSync(join(rootDir, 'boot/extlinux'), { recursive: true });
  for (const f of ['ldlinux.sys', 'ldlinux.c32', 'extlinux.conf']) {
    const n = t.lookup(`/boot/extlinux/${f}`)!;
    const b = new Uint8Array(n.content!.size);
    await n.content!.read(b, 0);
    writeFileSync(join(rootDir, 'boot/extlinux', f), b, { mode: n.mode });
  }
  const part = join(dir, `${name}.ext4`), disk = join(dir, `${name}.img`);
  // 4 KiB blocks: mke2fs -d leaves all-zero blocks as holes, and ldlinux.sys has a zero KiB (not a zero 4 KiB block).
  sh('mke2fs -q -F -t ext4 -b 4096 -d "$2" -U "$3" -E root_owner=0:0 "$1" "$4"M', [part, rootDir, uuid, String(PART_MB)]);
  sh('truncate -s $(( $3 + 1 ))M "$1" && printf "label: dos\\nstart=2048, type=83\\n" | sfdisk -q "$1" && dd if="$2" of="$1" bs=1M seek=1 conv=notrunc status=none', [disk, part, String(PART_MB)]);
  return { disk, part };
}

test('the payload found inside the image\'s extlinux program', () => {
  assert.is(payload.bootSector.length, 512);
  assert.is(Buffer.from(payload.bootSector.subarray(3, 11)).toString(), 'SYSLINUX');
  assert.is(payload.ldlinux.length % 512, 0);
  assert.is(Buffer.from(payload.ldlinux.subarray(0, 11)).toString('latin1'), '\r\nSYSLINUX ');
  assert.is(Buffer.from(payload.ldlinuxC32.subarray(1, 4)).toString(), 'ELF');
  assert.is(mbr.length, 440);
  assert.throws(() => extractExtlinuxPayload(readFileSync(join(root, 'usr/bin/busybox'))), (e: unknown) => e instanceof ExtlinuxError);
});

test('byte-identical to `extlinux --install` for the same ldlinux.sys placement', async () => {
  const { disk } = await makeDisk('oracle');
  const mnt = join(dir, 'mnt');
  mkdirSync(mnt);
  sh('mount -o loop,offset=$(( $3 * 512 )),sizelimit=$(( $4 * 1048576 )) "$1" "$2"', [disk, mnt, String(PART_START), String(PART_MB)]);
  try {
    sh('extlinux --install "$1/boot/extlinux" 2>/dev/null', [mnt]);
  } finally {
    sh('umount "$1"', [mnt]);
  }
  const part = join(dir, 'oracle-after.ext4');
  sh('dd if="$1" of="$2" bs=1M skip=1 status=none', [disk, part]);
  const ranges = debugfsFileBlocks(part, '/boot/extlinux/ldlinux.sys');
  const theirsSys = join(dir, 'theirs.sys');
  sh('debugfs -R "dump /boot/extlinux/ldlinux.sys $2" "$1" 2>/dev/null', [part, theirsSys]);
  const ours = patchExtlinux(payload, { sectors: sectorsOf(ranges), partitionStart: PART_START, totalSectors: PART_MB * 2048, directory: '/boot/extlinux' });
  assert.ok(Buffer.from(ours.ldlinuxSys).equals(readFileSync(theirsSys)), 'ldlinux.sys differs');
  assert.ok(Buffer.from(ours.bootSector).equals(readFileSync(part).subarray(0, 512)), 'boot sector differs');
  const theirsC32 = join(dir, 'theirs.c32');
  sh('debugfs -R "dump /boot/extlinux/ldlinux.c32 $2" "$1" 2>/dev/null', [part, theirsC32]);
  assert.ok(Buffer.from(payload.ldlinuxC32).equals(readFileSync(theirsC32)), 'ldlinux.c32 differs');
});

// The BIOS+MBR+extlinux boot is product-path coverage in boot-e2e.test.ts; this mke2fs -d scaffolding
// disk boots with INGOT_LONG=1 only.
const LONG = process.env.INGOT_LONG === '1';

test(`installed in place: e2fsck clean, active flag${LONG ? ', boots BIOS+MBR to the marker on the ext4 root' : ''}`, async () => {
  const { disk, part } = await makeDisk('boot');
  const ranges = debugfsFileBlocks(part, '/boot/extlinux/ldlinux.sys');
  const target = await ExistingFileTarget.open(disk);
  try {
    await installExtlinux(target, { fileBlocks: () => ranges, fsOffset: PART_START * 512, fsSize: PART_MB * 1048576 }, payload, mbr, { dirInFs: '/boot/extlinux', partitionIndex: 0 });
  } finally {
    await target.close();
  }
  sh('dd if="$1" of="$2" bs=1M skip=1 status=none', [disk, part]);
  const fsck = spawnSync('e2fsck', ['-fn', part], { encoding: 'utf8' });
  assert.is(fsck.status, 0, fsck.stdout + fsck.stderr);
  assert.match(sh('sfdisk -d "$1"', [disk]), /start=\s*2048,.*type=83, bootable/);
  if (!LONG) return;
  const r = await bootImage({ image: disk, timeout: 120 });
  assert.ok(r.ok, `${r.outcome}\n${r.tail.join('\n')}`);
  assert.match(r.matchedLine!, /root=\/dev\/vda1 ext4/);
  console.log(`  extlinux BIOS boot: ${r.seconds.toFixed(1)} s (${r.accel})`);
});

test('fragmented placement, bad input: short sector map, long directory, missing packages', async () => {
  const n = payload.ldlinux.length / 512 + 2;
  // Fragmented placement still works: one extent per piece (at most one per sector, within the table).
  const scattered = Array.from({ length: n }, (_, i) => 1000 + i * 2);
  const frag = patchExtlinux(payload, { sectors: scattered, partitionStart: 2048, totalSectors: 131072, directory: '/' });
  assert.is(frag.ldlinuxSys.length, payload.ldlinux.length + 1024);
  assert.throws(() => patchExtlinux(payload, { sectors: scattered, partitionStart: 2048, totalSectors: 131072, directory: `/${'x'.repeat(300)}` }), /longer than/);
  assert.throws(() => patchExtlinux(payload, { sectors: [1, 2, 3], partitionStart: 2048, totalSectors: 131072, directory: '/' }), /need/);
  try { await extlinuxFromTree(new StagingTree()); assert.unreachable(); } catch (e) { assert.match((e as Error).message, /add the extlinux package/); }
  assert.is(unpatchedLdlinuxSys(payload).length, payload.ldlinux.length + 1024);
});

test.after(() => rmSync(dir, { recursive: true, force: true }));
test.run();
