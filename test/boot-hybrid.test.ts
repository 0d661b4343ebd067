/**
 * Hybrid BIOS+UEFI GPT disk (Fedora cloud style: BIOS boot partition + ESP +
 * root): GRUB BIOS core.img in the BIOS boot partition, systemd-boot with a
 * BLS type 1 entry on the ESP, everything chosen and assembled by ingot from
 * the image's packages; ESP/GPT/root made with host tools. The same disk
 * boots to the marker with SeaBIOS and with OVMF.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { aptInstall, requireTool } from './helpers/tools.js';
import { stagedKernel } from './helpers/staged-kernel.js';
import { ExistingFileTarget, espImage, gptDisk, markerRootWithKernel } from '../fixtures/images.js';
import { coreImageFor, grubPcFromTree, installGrubBios } from '../src/boot/grub-bios.js';
import { grubCfg, systemdBootEsp } from '../src/boot/uefi.js';
import { bootImage } from '../src/qemu/runner.js';

// Product-path hybrid boots (ingot build → both firmwares) are in boot-e2e.test.ts and default-build.test.ts;
// this host-tool scaffolding (mke2fs -d, mkfs.vfat, sfdisk) boots with INGOT_LONG=1 only.
if (process.env.INGOT_LONG !== '1') {
  console.log('  boot-hybrid: host-tool hybrid disk boots run with INGOT_LONG=1 (product path: boot-e2e.test.ts)');
} else {
  for (const t of ['qemu-system-x86_64', 'sfdisk', 'mke2fs', 'mkfs.vfat', 'mcopy', 'rpm2cpio', 'cpio']) requireTool(t);
  requireTool('mmd', 'mtools');
  if (!existsSync('/usr/share/OVMF/OVMF_CODE_4M.fd')) aptInstall(['ovmf']); // UEFI firmware for qemu
  const dir = mkdtempSync(join(tmpdir(), 'ingot-hybrid-'));
  const { kver, tree, initrdPath, initrd } = await stagedKernel();
  const uuid = '7e6d5c4b-3a29-4f18-9e0d-c1b2a3948576';
  const cmdline = `root=UUID=${uuid} console=ttyS0 quiet`;
  const rootImg = join(dir, 'root.ext4');
  markerRootWithKernel(rootImg, { uuid, initrd, files: { 'boot/grub/grub.cfg': grubCfg({ bootFsUuid: uuid, kernel: `/boot/vmlinuz-${kver}`, initrd: `/boot/initrd.img-${kver}`, cmdline }) } });
  const esp = join(dir, 'esp.img');
  espImage(esp, await systemdBootEsp(tree, { kernelVersion: kver, kernel: `/boot/vmlinuz-${kver}`, initrd: initrdPath, cmdline, token: 'ingot' }));
  const disk = join(dir, 'hybrid.img');
  gptDisk(disk, [
    { sizeMB: 1, type: '21686148-6449-6E6F-744E-656564454649', name: 'bios' },
    { image: esp, sizeMB: 64, type: 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B', name: 'ESP' },
    { image: rootImg, sizeMB: 48, type: '0FC63DAF-8483-4772-8E79-3D69D8477DE4', name: 'root' },
  ]);
  const grub = grubPcFromTree(tree);
  const target = await ExistingFileTarget.open(disk);
  try {
    await installGrubBios(target, await grub.read('boot.img'), await coreImageFor(grub, { bootFsUuid: uuid }), { coreSector: 2048, gapSectors: 2048 });
  } finally {
    await target.close();
  }

  test('BIOS (SeaBIOS → GRUB from the BIOS boot partition) → marker', async () => {
    const r = await bootImage({ image: disk, firmware: 'bios', timeout: 150 });
    assert.ok(r.ok, `${r.outcome}\n${r.tail.join('\n')}`);
    assert.match(r.matchedLine!, /root=\/dev\/vda3 ext4/);
    console.log(`  hybrid BIOS/GRUB: ${r.seconds.toFixed(1)} s (${r.accel})`);
  });

  test('UEFI (OVMF → systemd-boot + BLS entry on the ESP) → marker', async () => {
    const r = await bootImage({ image: disk, firmware: 'uefi', timeout: 180 });
    assert.ok(r.ok, `${r.outcome}\n${r.tail.join('\n')}`);
    assert.match(r.matchedLine!, /root=\/dev\/vda3 ext4/);
    console.log(`  hybrid UEFI/systemd-boot: ${r.seconds.toFixed(1)} s (${r.accel})`);
  });

  test.after(() => rmSync(dir, { recursive: true, force: true }));
}
test.run();
