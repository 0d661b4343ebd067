/**
 * Our initramfs boots a real kernel to a real ext4 root: the boot partition
 * (FAT + SYSLINUX) and the root file system (mke2fs -d) are made with host
 * tools here, the initramfs by ingot; qemu is the oracle.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireTool } from './helpers/tools.js';
import { kernelVersion, markerRootExt4, stagedFixtureRoot, syslinuxFatImage } from '../fixtures/images.js';
import { treeFromDir } from '../fixtures/tree.js';
import { buildInitramfs } from '../src/boot/initramfs.js';
import { bootImage } from '../src/qemu/runner.js';

for (const t of ['qemu-system-x86_64', 'sfdisk', 'mkfs.vfat', 'mcopy', 'mke2fs', 'rpm2cpio', 'cpio']) requireTool(t);
requireTool('syslinux', 'syslinux');
const dir = mkdtempSync(join(tmpdir(), 'ingot-boot-initramfs-'));
const root = stagedFixtureRoot();
const kver = kernelVersion(root);
const kernel = join(root, 'boot', `vmlinuz-${kver}`);
const uuid = '6f1d8c2e-5a4b-4c3d-9e8f-0123456789ab';
const ir = await buildInitramfs(treeFromDir(root), { compression: 'xz' });
writeFileSync(join(dir, 'initrd'), ir.image);
markerRootExt4(join(dir, 'root.ext4'), { uuid, label: 'ingotroot' });

function image(name: string, append: string): string {
  const out = join(dir, name);
  syslinuxFatImage(out, { kernel, initrd: join(dir, 'initrd'), append: `console=ttyS0 quiet ${append}`, rootImage: join(dir, 'root.ext4') });
  return out;
}

// Every product-path boot (boot-e2e.test.ts) is virtio + root=UUID= through this initramfs: this one runs with INGOT_LONG=1.
if (process.env.INGOT_LONG === '1') test('virtio disk, root=UUID= → the marker from the ext4 root', async () => {
  const r = await bootImage({ image: image('uuid.img', `root=UUID=${uuid}`), timeout: 90 });
  assert.ok(r.ok, `${r.outcome}\n${r.tail.join('\n')}`);
  assert.match(r.matchedLine!, new RegExp(`kernel=${kver} root=/dev/vda2 ext4`));
  console.log(`  virtio+UUID boot: ${r.seconds.toFixed(1)} s (${r.accel})`);
});

test('IDE disk (ata_piix), root=LABEL= → the marker', async () => {
  const r = await bootImage({ image: image('label.img', 'root=LABEL=ingotroot'), bus: 'ide', timeout: 90 });
  assert.ok(r.ok, `${r.outcome}\n${r.tail.join('\n')}`);
  assert.match(r.matchedLine!, /root=\/dev\/sda2 ext4/);
  console.log(`  ide+LABEL boot: ${r.seconds.toFixed(1)} s (${r.accel})`);
});

test('a root that is not there: the initramfs says so and the boot fails fast', async () => {
  // The whole console, not the tail: a newer kernel's panic dump alone can fill the tail.
  const serialLog = join(dir, 'none.console');
  const r = await bootImage({ image: image('none.img', 'root=UUID=00000000-0000-4000-8000-000000000000 rootdelay=2'), timeout: 90, serialLog });
  assert.not.ok(r.ok);
  assert.is(r.outcome, 'panic');
  const text = readFileSync(serialLog, 'utf8');
  assert.match(text, /ingot-initramfs: root device UUID=00000000-0000-4000-8000-000000000000 not found \(disks: .*vda2/, r.tail.join('\n'));
  assert.ok(r.seconds < 60);
});

test.after(() => rmSync(dir, { recursive: true, force: true }));
test.run();
