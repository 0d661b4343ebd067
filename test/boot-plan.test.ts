/**
 * The build's boot step end to end on the fixture packages: prepareBoot on
 * the staged tree (depmod files, initramfs, extlinux files), the tree written
 * out and made into ext4 by mke2fs -d (stand-in for ingot's ext4 writer),
 * finishBoot into the disk, and qemu boots it to the marker.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireTool } from './helpers/tools.js';
import { sh, ExistingFileTarget, debugfsFileBlocks, kernelVersion, stagedFixtureRoot } from '../fixtures/images.js';
import { treeFromDir, treeToDir } from '../fixtures/tree.js';
import { finishBoot, prepareBoot, BootPlanError } from '../src/boot/plan.js';
import { bootImage } from '../src/qemu/runner.js';
import { StagingTree } from '../src/tree/tree.js';

for (const t of ['qemu-system-x86_64', 'sfdisk', 'mke2fs', 'debugfs', 'e2fsck', 'rpm2cpio', 'cpio']) requireTool(t);
const dir = mkdtempSync(join(tmpdir(), 'ingot-plan-'));
const root = stagedFixtureRoot();
const kver = kernelVersion(root);
const uuid = '3c2b1a09-f8e7-4d6c-b5a4-938271605f4e';

test('bios/extlinux: prepareBoot → mke2fs -d → finishBoot → boots to the marker, e2fsck clean', async () => {
  const tree = treeFromDir(root);
  const prep = await prepareBoot(tree, { firmware: 'bios', biosLoader: 'extlinux', rootUuid: uuid, append: ['quiet'] });
  assert.is(prep.kernel.version, kver);
  assert.ok(tree.lookup(`/lib/modules/${kver}/modules.dep`));
  assert.ok(tree.lookup(prep.initrd));
  assert.match(prep.cmdline, new RegExp(`^root=UUID=${uuid} ro console=tty0 console=ttyS0,115200n8 quiet$`));
  // Keep the test's file system small: the module tree is in the initramfs already; GRUB/EFI files are unused here.
  for (const p of [`/usr/lib/modules/${kver}/kernel`, '/usr/lib/grub', '/usr/share/doc']) tree.remove(p);
  const out = join(dir, 'tree');
  await treeToDir(tree, out);
  const part = join(dir, 'root.ext4'), disk = join(dir, 'disk.img');
  sh('mke2fs -q -F -t ext4 -b 4096 -d "$2" -U "$3" -E root_owner=0:0 "$1" 80M', [part, out, uuid]);
  sh('truncate -s 81M "$1" && printf "label: dos\\nstart=2048, type=83\\n" | sfdisk -q "$1" && dd if="$2" of="$1" bs=1M seek=1 conv=notrunc,sparse status=none', [disk, part]);
  const ranges = debugfsFileBlocks(part, '/boot/extlinux/ldlinux.sys');
  const target = await ExistingFileTarget.open(disk);
  try {
    await finishBoot(target, prep, { bootFs: { fileBlocks: () => ranges, fsOffset: 1 << 20, fsSize: 80 << 20 }, bootPartitionIndex: 0, tree });
  } finally {
    await target.close();
  }
  sh('dd if="$1" of="$2" bs=1M skip=1 status=none', [disk, part]);
  const fsck = spawnSync('e2fsck', ['-fn', part], { encoding: 'utf8' });
  assert.is(fsck.status, 0, fsck.stdout);
  const r = await bootImage({ image: disk, timeout: 150 });
  assert.ok(r.ok, `${r.outcome}\n${r.tail.join('\n')}`);
  assert.match(r.matchedLine!, new RegExp(`kernel=${kver} root=/dev/vda1 ext4`));
  console.log(`  plan bios/extlinux boot: ${r.seconds.toFixed(1)} s (${r.accel})`);
});

test('hybrid plan: grub.cfg staged, ESP files for systemd-boot; extlinux refused on hybrid', async () => {
  const tree = treeFromDir(root);
  const prep = await prepareBoot(tree, { firmware: 'hybrid', rootUuid: uuid, vendor: 'ingot' });
  assert.ok(tree.lookup('/boot/grub/grub.cfg'));
  assert.ok(prep.espFiles.some((f) => f.path === '/EFI/BOOT/BOOTX64.EFI'));
  assert.ok(prep.espFiles.some((f) => f.path === `/loader/entries/ingot-${kver}.conf`));
  try { await prepareBoot(treeFromDir(root), { firmware: 'hybrid', biosLoader: 'extlinux', rootUuid: uuid }); assert.unreachable(); } catch (e) { assert.instance(e, BootPlanError); }
  try { await prepareBoot(new StagingTree(), { firmware: 'bios', rootUuid: uuid }); assert.unreachable(); } catch (e) { assert.match((e as Error).message, /no kernel/); }
});

test('Fedora layout (kernel only in /lib/modules/V/vmlinuz): the kernel is placed in /boot for the loader', async () => {
  const tree = treeFromDir(root);
  tree.rename(`/boot/vmlinuz-${kver}`, `/usr/lib/modules/${kver}/vmlinuz`);
  const prep = await prepareBoot(tree, { firmware: 'bios', biosLoader: 'extlinux', rootUuid: uuid });
  assert.is(prep.kernel.image, `/boot/vmlinuz-${kver}`);
  assert.is(tree.lookup(`/boot/vmlinuz-${kver}`)!.content!.size, tree.lookup(`/usr/lib/modules/${kver}/vmlinuz`)!.content!.size);
  const conf = tree.lookup('/boot/extlinux/extlinux.conf')!;
  const b = new Uint8Array(conf.content!.size);
  await conf.content!.read(b, 0);
  assert.match(Buffer.from(b).toString(), new RegExp(`LINUX /boot/vmlinuz-${kver}\\n  INITRD /boot/initrd.img-${kver}\\n`));
});

test.after(() => rmSync(dir, { recursive: true, force: true }));
test.run();
