/**
 * GRUB 2 for BIOS assembled by ingot from the image's grub-pc modules:
 * the uncompressed core image is byte-identical to grub-mkimage's (its LZMA
 * payload decoded by Python's lzma), and the installed disks boot in qemu:
 * MBR (core.img in the MBR gap); GPT with a BIOS boot partition is in
 * boot-hybrid.test.ts.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireTool } from './helpers/tools.js';
import { stagedKernel } from './helpers/staged-kernel.js';
import { sh, ExistingFileTarget, markerRootWithKernel } from '../fixtures/images.js';
import { CORE_MODULES, coreImageFor, coreImagePayload, grubPcFromTree, installGrubBios, moduleOrder, parseModdep, GrubError } from '../src/boot/grub-bios.js';
import { grubCfg } from '../src/boot/uefi.js';
import { bootImage } from '../src/qemu/runner.js';
import { StagingTree } from '../src/tree/tree.js';

for (const t of ['qemu-system-x86_64', 'sfdisk', 'mke2fs', 'rpm2cpio', 'cpio']) requireTool(t);
requireTool('python3', 'python3');
requireTool('grub-mkimage', 'grub-common');
const dir = mkdtempSync(join(tmpdir(), 'ingot-grub-'));
const { root, kver, tree, initrdPath, initrd } = await stagedKernel();
const grub = grubPcFromTree(tree);
const uuid = '5d4c3b2a-1f0e-4d9c-8b7a-6f5e4d3c2b1a';
const rootImg = join(dir, 'root.ext4');
markerRootWithKernel(rootImg, {
  uuid, initrd,
  files: { 'boot/grub/grub.cfg': grubCfg({ bootFsUuid: uuid, kernel: `/boot/vmlinuz-${kver}`, initrd: `/boot/initrd.img-${kver}`, cmdline: `root=UUID=${uuid} console=ttyS0 quiet` }) },
});

test('the uncompressed core image equals grub-mkimage -O i386-pc\'s, module for module', async () => {
  const cfg = `search.fs_uuid ${uuid} root\nset prefix=($root)'/boot/grub'\n`;
  writeFileSync(join(dir, 'load.cfg'), cfg);
  const theirs = join(dir, 'their-core.img');
  const moddir = join(root, 'usr/lib/grub/i386-pc');
  sh(`grub-mkimage -d "$1" -O i386-pc -o "$2" -c "$3" -p /boot/grub ${CORE_MODULES.join(' ')}`, [moddir, theirs, join(dir, 'load.cfg')]);
  const core = readFileSync(theirs);
  const decLen = (await grub.read('lzma_decompress.img')).length;
  const csize = core.readUInt32LE(512 + 8), usize = core.readUInt32LE(512 + 12);
  writeFileSync(join(dir, 'their.lzma'), core.subarray(512 + decLen, 512 + decLen + csize));
  sh(`python3 -c "import lzma,sys; d=lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=[{'id':lzma.FILTER_LZMA1,'dict_size':65536,'lc':3,'lp':0,'pb':2}]); open(sys.argv[2],'wb').write(d.decompress(open(sys.argv[1],'rb').read(), max_length=int(sys.argv[3])))" "$1" "$2" "$3"`, [join(dir, 'their.lzma'), join(dir, 'their.payload'), String(usize)]);
  const order = moduleOrder(parseModdep(Buffer.from(await grub.read('moddep.lst')).toString()), CORE_MODULES);
  const mods: Array<[string, Uint8Array]> = [];
  for (const m of order) mods.push([m, await grub.read(`${m}.mod`)]);
  const ours = coreImagePayload({ kernelImg: await grub.read('kernel.img'), lzmaDecompressImg: new Uint8Array(), diskbootImg: new Uint8Array(), modules: mods, config: cfg, prefix: '/boot/grub' });
  assert.is(ours.length, usize);
  assert.ok(Buffer.from(ours).equals(readFileSync(join(dir, 'their.payload'))), 'payload differs');
  // Everything around the compressed payload is the same too (sizes aside).
  const built = await coreImageFor(grub, { bootFsUuid: uuid });
  assert.ok(Buffer.from(built.subarray(512, 512 + 8)).equals(core.subarray(512, 520)));
  assert.ok(Buffer.from(built.subarray(512 + 16, 512 + decLen)).equals(core.subarray(512 + 16, 512 + decLen)));
  assert.ok(Buffer.from(built.subarray(0, 500)).equals(core.subarray(0, 500)));
});

test('BIOS + MBR: core.img in the MBR gap with Reed-Solomon codes; two sectors of it wiped, GRUB repairs them and boots to the marker', async () => {
  const disk = join(dir, 'mbr.img');
  sh('truncate -s 50M "$1" && printf "label: dos\\nstart=2048, type=83\\n" | sfdisk -q "$1" && dd if="$2" of="$1" bs=1M seek=1 conv=notrunc status=none', [disk, rootImg]);
  const core = await coreImageFor(grub, { bootFsUuid: uuid });
  const t = await ExistingFileTarget.open(disk);
  try {
    await installGrubBios(t, await grub.read('boot.img'), core, { coreSector: 1, gapSectors: 2047 });
  } finally { await t.close(); }
  assert.match(sh('sfdisk -d "$1"', [disk]), /start=\s*2048, size=\s*\d+, type=83/);
  // setup.c's embedding: twice core.img's sectors (the gap allows it), the redundancy size recorded at 0x10 of
  // lzma_decompress.img, the blocklist covering the whole area.
  const img = readFileSync(disk);
  const coreSectors = Math.ceil(core.length / 512), nsec = 2 * coreSectors;
  assert.is(img.readUInt32LE(1024 + 0x10), nsec * 512 - core.length);
  assert.is(img.readUInt16LE(1024 - 12 + 8), nsec - 1);
  assert.ok(img.subarray(512, 512 + core.length).subarray(1024).equals(Buffer.from(core).subarray(1024)), 'core.img itself unchanged after its start-up sector');
  // Wipe two sectors of the LZMA payload, in different Reed-Solomon blocks: only GRUB's decoder
  // (lzma_decompress.img runs it before decompressing) can bring them back from our codes.
  for (const sec of [1 + 40, 1 + 200]) {
    assert.ok(img.subarray(sec * 512, sec * 512 + 512).some((b) => b !== 0));
    sh('dd if=/dev/zero of="$1" bs=512 seek="$2" count=1 conv=notrunc status=none', [disk, String(sec)]);
  }
  const r = await bootImage({ image: disk, timeout: 150 });
  assert.ok(r.ok, `${r.outcome}\n${r.tail.join('\n')}`);
  assert.match(r.matchedLine!, /root=\/dev\/vda1 ext4/);
  console.log(`  GRUB BIOS+MBR: ${r.seconds.toFixed(1)} s (${r.accel})`);
});

test('bad input: gap too small, missing modules, missing package', async () => {
  const t = await ExistingFileTarget.open(join(dir, 'mbr.img'));
  try {
    await installGrubBios(t, await grub.read('boot.img'), await coreImageFor(grub, { bootFsUuid: uuid }), { coreSector: 1, gapSectors: 62 });
    assert.unreachable();
  } catch (e) { assert.instance(e, GrubError); assert.match((e as Error).message, /core.img needs \d+ sectors but only 62/); } finally { await t.close(); }
  assert.throws(() => moduleOrder(new Map([['a', ['b']]]), ['a']), /a → b is not in moddep.lst/);
  assert.throws(() => grubPcFromTree(new StagingTree()), /add grub-pc-bin/);
});

test.after(() => rmSync(dir, { recursive: true, force: true }));
test.run();
