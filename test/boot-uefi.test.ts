/**
 * UEFI boots (OVMF) of GPT disks whose ESP holds what ingot selects from the
 * image's packages: systemd-boot + BLS type 1 entry, and GRUB EFI (Debian's
 * signed grubx64.efi) + grub.cfg (systemd-boot boots in boot-hybrid.test.ts). ESP (mkfs.vfat + mtools), GPT (sfdisk) and
 * root (mke2fs -d) are made with host tools here; qemu + OVMF is the oracle.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { aptInstall, requireTool } from './helpers/tools.js';
import { stagedKernel } from './helpers/staged-kernel.js';
import { espImage, gptDisk, markerRootWithKernel } from '../fixtures/images.js';
import { grubEfiEsp, grubEfiPrefixes, systemdBootEsp, UefiError } from '../src/boot/uefi.js';
import { bootImage } from '../src/qemu/runner.js';
import { StagingTree } from '../src/tree/tree.js';

for (const t of ['qemu-system-x86_64', 'sfdisk', 'mke2fs', 'mkfs.vfat', 'mcopy', 'rpm2cpio', 'cpio']) requireTool(t);
requireTool('mmd', 'mtools');
if (!existsSync('/usr/share/OVMF/OVMF_CODE_4M.fd')) aptInstall(['ovmf']); // UEFI firmware for qemu
const dir = mkdtempSync(join(tmpdir(), 'ingot-uefi-'));
const { kver, tree, initrdPath, initrd } = await stagedKernel();
const uuid = '9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d';
const rootImg = join(dir, 'root.ext4');
markerRootWithKernel(rootImg, { uuid, initrd });

function disk(name: string, esp: string): string {
  const out = join(dir, `${name}.img`);
  gptDisk(out, [{ image: esp, sizeMB: 64, type: 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B', name: 'ESP' }, { image: rootImg, sizeMB: 48, type: '4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709', name: 'root' }]);
  return out;
}

test('systemd-boot ESP layout (booted in boot-hybrid.test.ts)', async () => {
  const files = await systemdBootEsp(tree, { kernelVersion: kver, kernel: `/boot/vmlinuz-${kver}`, initrd: initrdPath, cmdline: `root=UUID=${uuid} console=ttyS0 quiet`, token: 'ingot', title: 'ingot fixture' });
  assert.equal(files.map((f) => f.path).sort(), ['/EFI/BOOT/BOOTX64.EFI', '/EFI/systemd/systemd-bootx64.efi', `/ingot/${kver}/initrd`, `/ingot/${kver}/linux`, `/loader/entries/ingot-${kver}.conf`, '/loader/loader.conf'].sort());
  const entry = Buffer.from(files.find((f) => f.path.startsWith('/loader/entries/'))!.data).toString();
  assert.match(entry, new RegExp(`^linux /ingot/${kver}/linux$`, 'm'));
  assert.match(entry, new RegExp(`^options root=UUID=${uuid} `, 'm'));
});

// UEFI+GRUB boots through `ingot build` in boot-e2e.test.ts; this host-tool disk boots with INGOT_LONG=1 only.
const LONG = process.env.INGOT_LONG === '1';

test(`GRUB EFI (signed grubx64.efi) + grub.cfg searching the root by UUID${LONG ? ' → OVMF boots to the marker' : ': ESP files'}`, async () => {
  const files = await grubEfiEsp(tree, { vendor: 'ingot', bootFsUuid: uuid, kernel: `/boot/vmlinuz-${kver}`, initrd: `/boot/initrd.img-${kver}`, cmdline: `root=UUID=${uuid} console=ttyS0 quiet` });
  assert.ok(files.some((f) => f.path === '/EFI/BOOT/BOOTX64.EFI'));
  if (!LONG) return;
  const esp = join(dir, 'grub-esp.img');
  espImage(esp, files);
  const r = await bootImage({ image: disk('grub', esp), firmware: 'uefi', timeout: 180 });
  assert.ok(r.ok, `${r.outcome}\n${r.tail.join('\n')}\n${r.qemuStderr}`);
  console.log(`  UEFI GRUB: ${r.seconds.toFixed(1)} s (${r.accel})`);
});

test('missing packages are named', async () => {
  const empty = new StagingTree();
  try { await systemdBootEsp(empty, { kernelVersion: kver, kernel: '/boot/x', cmdline: '', token: 't' }); assert.unreachable(); } catch (e) { assert.instance(e, UefiError); assert.match((e as Error).message, /systemd-boot-efi/); }
  try { await grubEfiEsp(empty, { vendor: 'x', bootFsUuid: uuid, kernel: '/k', cmdline: '' }); assert.unreachable(); } catch (e) { assert.match((e as Error).message, /grub-efi-amd64-signed/); }
  assert.ok(grubEfiPrefixes(Buffer.from('xx/EFI/debian\0yy')).includes('debian'));
});

test.after(() => rmSync(dir, { recursive: true, force: true }));
test.run();
