// The oracle that matters: images built by ingot from the fixture repository
// boot in qemu through their own firmware and boot loader to the marker the
// fixture init prints, then power off. The matrix (each build writes raw and
// qcow2, both are booted): BIOS+MBR+extlinux, BIOS+GPT+GRUB, UEFI+GPT with
// GRUB and with systemd-boot, hybrid GPT booted both ways (raw here; its
// qcow2 both ways in default-build.test.ts), a converted vmdk and vhd, and an
// i686 image (Debian i386's 686 kernel) on qemu-system-i386.
// `e2fsck -fn` stays clean after the boot loader install.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fixtureRepo, BOOT_MARKER } from '../fixtures/repo.js';
import { ingot } from './helpers/cli.js';
import { aptInstall, requireTool } from './helpers/tools.js';

const work = mkdtempSync(join(tmpdir(), 'ingot-boot-e2e-'));
const KARGS = ['console=ttyS0', 'panic=-1'];

interface BuildOpts { table: 'gpt' | 'mbr'; kind: string; firmware: string; extra: string[]; esp: boolean; formats: string[]; arch?: string; bootloader?: Record<string, unknown> }

function build(name: string, o: BuildOpts): string {
  const parts: unknown[] = [];
  if (o.table === 'gpt' && o.firmware !== 'uefi') parts.push({ size: '1MiB', fs: 'biosboot' });
  if (o.esp) parts.push({ mount: '/boot/efi', size: '64MiB', fs: 'efi' });
  parts.push({ mount: '/', size: '64MiB', fs: 'ext4', grow: true });
  const spec = join(work, `${name}.json`);
  writeFileSync(spec, JSON.stringify({
    name, ...(o.arch ? { arch: o.arch } : {}), repositories: [{ name: 'fixtures', baseurl: [fixtureRepo()] }],
    packages: { include: ['ingot-base', 'ingot-marker', 'busybox-static', 'kernel', ...o.extra], core: false, weakDeps: false },
    disk: { table: o.table, partitions: parts },
    bootloader: { kind: o.kind, firmware: o.firmware, timeout: 0, kernelArgs: KARGS, ...o.bootloader },
    outputs: o.formats.map((format) => ({ format })),
  }));
  const out = join(work, name);
  const r = ingot(['build', spec, '-o', out, '-q'], { env: { SOURCE_DATE_EPOCH: '1700000000' } });
  assert.is(r.code, 0, r.stderr);
  return out;
}

/** `ingot boot`: the marker line, with the kernel and root device the guest saw. */
function boot(image: string, firmware: 'bios' | 'uefi', arch = 'x86_64'): string {
  const r = ingot(['boot', image, '--firmware', firmware, '--arch', arch, '--timeout', '240', '-q']);
  assert.is(r.code, 0, `${image} (${firmware}) did not boot:\n${r.stdout}\n${r.stderr}`);
  const line = new RegExp(`${BOOT_MARKER}.*`).exec(r.stdout)?.[0];
  assert.ok(line, r.stdout);
  console.log(`  ${basename(image)} ${firmware}: ${r.stdout.trim()}`);
  return line!;
}

/** Boot every written raw/qcow2 output of a build with each firmware. */
function bootAll(out: string, name: string, formats: string[], firmwares: ('bios' | 'uefi')[], arch?: string): string[] {
  const lines: string[] = [];
  for (const f of formats) for (const fw of firmwares) lines.push(boot(join(out, `${name}.${f}`), fw, arch));
  return lines;
}

function sgdiskClean(raw: string): void {
  assert.match(execFileSync('sgdisk', ['-v', raw], { encoding: 'utf8' }), /No problems found/);
}

/** The root file system (last partition) cut out of a raw disk, for host tools. */
function withRootFs<T>(raw: string, f: (img: string) => T): T {
  const j = JSON.parse(execFileSync('sfdisk', ['--json', raw], { encoding: 'utf8' })) as { partitiontable: { partitions: { start: number; size: number }[] } };
  const p = j.partitiontable.partitions[j.partitiontable.partitions.length - 1]!;
  const img = join(work, 'rootcheck.img');
  execFileSync('dd', [`if=${raw}`, `of=${img}`, 'bs=512', `skip=${p.start}`, `count=${p.size}`, 'status=none', 'conv=sparse']);
  try {
    return f(img);
  } finally {
    rmSync(img);
  }
}

function rootFsck(raw: string): void {
  withRootFs(raw, (img) => {
    const r = spawnSync('e2fsck', ['-fn', img], { encoding: 'utf8' });
    assert.is(r.status, 0, r.stdout + r.stderr);
  });
}

test.before(() => {
  for (const t of ['qemu-system-x86_64', 'qemu-img', 'sfdisk', 'e2fsck']) requireTool(t);
  requireTool('qemu-system-i386', 'qemu-system-x86');
  requireTool('sgdisk');
  requireTool('debugfs');
  // OVMF for UEFI boots: a firmware file, not a program.
  const ovmf = () => spawnSync('sh', ['-c', 'ls /usr/share/OVMF/OVMF_CODE*.fd'], { encoding: 'utf8' }).stdout.trim();
  if (!ovmf()) aptInstall(['ovmf']);
  assert.ok(ovmf(), 'OVMF firmware missing: install the Debian package ovmf');
});

const RAW_QCOW2 = ['raw', 'qcow2'];

test('BIOS + MBR + extlinux: raw and qcow2 boot, converted vmdk boots, e2fsck clean after the install', () => {
  const out = build('extlinux', { table: 'mbr', kind: 'extlinux', firmware: 'bios', extra: ['extlinux'], esp: false, formats: RAW_QCOW2 });
  rootFsck(join(out, 'extlinux.raw'));
  for (const l of bootAll(out, 'extlinux', RAW_QCOW2, ['bios'])) assert.match(l, /root=\/dev\/vda1 ext4/);
  const vmdk = join(out, 'extlinux.vmdk');
  const c = ingot(['convert', join(out, 'extlinux.raw'), vmdk]);
  assert.is(c.code, 0, c.stderr);
  boot(vmdk, 'bios');
});

test('BIOS + GPT + GRUB (core.img in the BIOS boot partition): raw and qcow2 boot', () => {
  const out = build('grub-bios', { table: 'gpt', kind: 'grub', firmware: 'bios', extra: ['grub-pc-bin'], esp: false, formats: RAW_QCOW2 });
  rootFsck(join(out, 'grub-bios.raw'));
  sgdiskClean(join(out, 'grub-bios.raw'));
  for (const l of bootAll(out, 'grub-bios', RAW_QCOW2, ['bios'])) assert.match(l, /root=\/dev\/vda2 ext4/);
});

test('UEFI + GPT + GRUB EFI: raw and qcow2 boot, converted vhd boots', () => {
  const out = build('grub-uefi', { table: 'gpt', kind: 'grub', firmware: 'uefi', extra: ['grub-efi-amd64-signed'], esp: true, formats: RAW_QCOW2 });
  rootFsck(join(out, 'grub-uefi.raw'));
  sgdiskClean(join(out, 'grub-uefi.raw'));
  bootAll(out, 'grub-uefi', RAW_QCOW2, ['uefi']);
  const vhd = join(out, 'grub-uefi.vhd');
  const c = ingot(['convert', join(out, 'grub-uefi.qcow2'), vhd]);
  assert.is(c.code, 0, c.stderr);
  boot(vhd, 'uefi');
});

test('UEFI + GPT + systemd-boot: raw and qcow2 boot', () => {
  const out = build('sdboot', { table: 'gpt', kind: 'systemd-boot', firmware: 'uefi', extra: ['systemd-boot-efi'], esp: true, formats: RAW_QCOW2 });
  bootAll(out, 'sdboot', RAW_QCOW2, ['uefi']);
});

test('hybrid GPT (BIOS boot + ESP + root), GRUB with BLS entries: the raw image boots with SeaBIOS (GRUB BIOS) and OVMF (GRUB EFI)', () => {
  const out = build('hybrid', { table: 'gpt', kind: 'grub', firmware: 'hybrid', extra: ['grub-pc-bin', 'grub-efi-amd64-signed'], esp: true, formats: ['raw'], bootloader: { bls: true } });
  rootFsck(join(out, 'hybrid.raw'));
  // debugfs reads the BLS entry and grub.cfg from our ext4: Debian's GRUB has no blscfg, so the menu is the entry translated.
  const [entry, cfg] = withRootFs(join(out, 'hybrid.raw'), (img) => {
    const ls = execFileSync('debugfs', ['-R', 'ls -l /boot/loader/entries', img], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const name = /\S+\.conf/.exec(ls)?.[0];
    assert.ok(name, ls);
    const cat = (p: string) => execFileSync('debugfs', ['-R', `cat ${p}`, img], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    return [cat(`/boot/loader/entries/${name}`), cat('/boot/grub/grub.cfg')];
  });
  const linux = /^linux (\S+)$/m.exec(entry)?.[1], options = /^options (.+)$/m.exec(entry)?.[1];
  assert.ok(linux && options, entry);
  assert.ok(cfg.includes(`linux ${linux} ${options}`), cfg);
  sgdiskClean(join(out, 'hybrid.raw'));
  for (const l of bootAll(out, 'hybrid', ['raw'], ['bios', 'uefi'])) assert.match(l, /root=\/dev\/vda3 ext4/);
});

test('i686 (spec arch: i686): Debian i386 686 kernel + i686 busybox, GRUB i386-pc on GPT; boots on qemu-system-i386', () => {
  const out = build('i686', { table: 'gpt', kind: 'grub', firmware: 'bios', extra: ['grub-pc-bin'], esp: false, formats: ['raw'], arch: 'i686' });
  const report = JSON.parse(readFileSync(join(out, 'i686.report.json'), 'utf8')) as { arch: string; packages: { nevra: string }[] };
  assert.is(report.arch, 'i686');
  for (const p of report.packages) assert.match(p.nevra, /\.(i686|noarch)$/);
  assert.ok(report.packages.some((p) => p.nevra.startsWith('linux-image-') && p.nevra.includes('-686-')), JSON.stringify(report.packages));
  rootFsck(join(out, 'i686.raw'));
  assert.match(boot(join(out, 'i686.raw'), 'bios', 'i686'), /kernel=\S+-686 root=\/dev\/vda2 ext4/);
});

test('a boot loader whose package is missing fails naming the package; nothing is left behind', () => {
  const spec = join(work, 'missing.json');
  writeFileSync(spec, JSON.stringify({
    name: 'missing', repositories: [{ name: 'fixtures', baseurl: [fixtureRepo()] }],
    packages: { include: ['ingot-base', 'ingot-marker', 'busybox-static', 'kernel'], core: false, weakDeps: false },
    disk: { table: 'mbr', partitions: [{ mount: '/', size: '64MiB', fs: 'ext4', grow: true }] },
    bootloader: { kind: 'extlinux', firmware: 'bios' },
  }));
  const out = join(work, 'missing');
  const r = ingot(['build', spec, '-o', out]);
  assert.is(r.code, 1);
  assert.match(r.stderr, /extlinux/);
  assert.match(r.stderr, /add the extlinux package/);
  const left = spawnSync('sh', ['-c', `ls -A ${out} 2>/dev/null`], { encoding: 'utf8' }).stdout.trim();
  assert.is(left, '');
});

test.after(() => rmSync(work, { recursive: true, force: true }));
test.run();
