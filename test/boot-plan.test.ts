/**
 * The build's boot step end to end on the fixture packages: prepareBoot on
 * the staged tree (depmod files, initramfs, extlinux files), the tree written
 * out and made into ext4 by mke2fs -d (stand-in for ingot's ext4 writer),
 * finishBoot into the disk, and qemu boots it to the marker.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireTool } from './helpers/tools.js';
import { sh, ExistingFileTarget, debugfsFileBlocks, kernelVersion, stagedFixtureRoot } from '../fixtures/images.js';
import { treeFromDir, treeToDir } from '../fixtures/tree.js';
import { finishBoot, prepareBoot, BootPlanError } from '../src/boot/plan.js';
import { bootImage } from '../src/qemu/runner.js';
import { BufferContent, StagingTree } from '../src/tree/tree.js';
import { parseBlsEntry } from '../src/boot/bls.js';

for (const t of ['qemu-system-x86_64', 'sfdisk', 'mke2fs', 'debugfs', 'e2fsck', 'rpm2cpio', 'cpio']) requireTool(t);
const dir = mkdtempSync(join(tmpdir(), 'ingot-plan-'));
const root = stagedFixtureRoot();
const kver = kernelVersion(root);
const uuid = '3c2b1a09-f8e7-4d6c-b5a4-938271605f4e';

// The boot itself is product-path coverage now (boot-e2e.test.ts builds and boots BIOS+MBR+extlinux); this
// mke2fs -d scaffolding boot runs with INGOT_LONG=1 only.
const LONG = process.env.INGOT_LONG === '1';

test(`bios/extlinux: prepareBoot → mke2fs -d → finishBoot → e2fsck clean${LONG ? ', boots to the marker' : ''}`, async () => {
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
  if (!LONG) return;
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

async function treeText(tree: StagingTree, path: string): Promise<string> {
  const n = tree.lookup(path);
  assert.ok(n?.content, `${path} missing`);
  const b = new Uint8Array(n!.content!.size);
  await n!.content!.read(b, 0);
  return Buffer.from(b).toString();
}

/** GRUB's own parser (grub-script-check) accepts the file. */
function grubScriptCheck(text: string): void {
  const f = join(dir, 'check.cfg');
  writeFileSync(f, text);
  const r = spawnSync('grub-script-check', [f], { encoding: 'utf8' });
  assert.is(r.status, 0, `${r.stdout}${r.stderr}\n${text}`);
}

test('BLS: entries in /boot/loader/entries; Debian GRUB (no blscfg) gets them as menuentries, a GRUB with blscfg reads them', async () => {
  requireTool('grub-script-check', 'grub-common');
  // Debian's GRUB has no blscfg module: BLS only when asked, the menu translated from the entry.
  const auto = treeFromDir(root);
  const plain = await prepareBoot(auto, { firmware: 'hybrid', uefiLoader: 'grub', rootUuid: uuid, vendor: 'ingot' });
  assert.is(plain.bls, undefined);
  assert.is(auto.lookup('/boot/loader/entries'), undefined);

  const tree = treeFromDir(root);
  const prep = await prepareBoot(tree, { firmware: 'hybrid', uefiLoader: 'grub', rootUuid: uuid, vendor: 'ingot', bls: true, append: ['console=ttyS0'] });
  assert.equal(prep.bls, { paths: [`/boot/loader/entries/ingot-${kver}.conf`], blscfg: false });
  const entry = parseBlsEntry(await treeText(tree, prep.bls!.paths[0]!))!;
  assert.is(entry.version, kver);
  assert.ok(tree.lookup(entry.linux)?.type === 'file', entry.linux);
  assert.ok(tree.lookup(entry.initrd!)?.type === 'file', entry.initrd);
  assert.match(entry.options!, new RegExp(`^root=UUID=${uuid} .*console=ttyS0`));
  const cfg = await treeText(tree, '/boot/grub/grub.cfg');
  grubScriptCheck(cfg);
  assert.ok(cfg.includes(`  linux ${entry.linux} ${entry.options}\n  initrd ${entry.initrd}\n`), cfg);
  // The EFI copy of grub.cfg on the ESP is the same file.
  assert.is(Buffer.from(prep.espFiles.find((f) => f.path === '/EFI/BOOT/grub.cfg')!.data).toString(), cfg);

  // A GRUB with blscfg (Fedora's grub2-pc-modules ships blscfg.mod): BLS by default, grub.cfg runs blscfg.
  const fedoraLike = treeFromDir(root);
  fedoraLike.addFile('/usr/lib/grub/i386-pc/blscfg.mod', new BufferContent(new Uint8Array(16)), { mode: 0o644 });
  const f = await prepareBoot(fedoraLike, { firmware: 'bios', biosLoader: 'grub', rootUuid: uuid, vendor: 'ingot' });
  assert.equal(f.bls, { paths: [`/boot/loader/entries/ingot-${kver}.conf`], blscfg: true });
  const fcfg = await treeText(fedoraLike, '/boot/grub/grub.cfg');
  grubScriptCheck(fcfg);
  assert.match(fcfg, new RegExp(`search --no-floppy --fs-uuid --set=boot ${uuid}\nset root=\\$boot\ninsmod blscfg\nblscfg\n`));
  assert.not.match(fcfg, /menuentry/);
  // A hybrid disk whose EFI GRUB (Debian's signed image) lacks it: BLS entries, but one grub.cfg serves both GRUBs, so menuentries.
  const mixed = treeFromDir(root);
  mixed.addFile('/usr/lib/grub/i386-pc/blscfg.mod', new BufferContent(new Uint8Array(16)), { mode: 0o644 });
  assert.is((await prepareBoot(mixed, { firmware: 'hybrid', uefiLoader: 'grub', rootUuid: uuid, vendor: 'ingot' })).bls?.blscfg, false);
  assert.match(await treeText(mixed, '/boot/grub/grub.cfg'), /menuentry/);
  // bls: false wins over blscfg.
  const off = treeFromDir(root);
  off.addFile('/usr/lib/grub/i386-pc/blscfg.mod', new BufferContent(new Uint8Array(16)), { mode: 0o644 });
  assert.is((await prepareBoot(off, { firmware: 'bios', biosLoader: 'grub', rootUuid: uuid, bls: false })).bls, undefined);
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
