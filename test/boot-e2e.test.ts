// The oracle that matters: images built by ingot from the fixture repository
// boot in qemu through their own firmware and boot loader to the marker the
// fixture init prints, then power off. BIOS+MBR+extlinux, UEFI+GPT with GRUB
// and with systemd-boot; raw, qcow2, and a converted vmdk and vhd.
// `e2fsck -fn` stays clean after the boot loader install.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixtureRepo, BOOT_MARKER } from '../fixtures/repo.js';
import { ingot } from './helpers/cli.js';
import { aptInstall, requireTool } from './helpers/tools.js';

const work = mkdtempSync(join(tmpdir(), 'ingot-boot-e2e-'));
const KARGS = ['console=ttyS0', 'panic=-1'];

function build(name: string, o: { table: 'gpt' | 'mbr'; kind: string; firmware: string; extra: string[]; esp: boolean; formats: string[] }): string {
  const parts: unknown[] = [];
  if (o.table === 'gpt' && o.firmware !== 'uefi') parts.push({ size: '1MiB', fs: 'biosboot' });
  if (o.esp) parts.push({ mount: '/boot/efi', size: '64MiB', fs: 'efi' });
  parts.push({ mount: '/', size: '64MiB', fs: 'ext4', grow: true });
  const spec = join(work, `${name}.json`);
  writeFileSync(spec, JSON.stringify({
    name, repositories: [{ name: 'fixtures', baseurl: [fixtureRepo()] }],
    packages: { include: ['ingot-base', 'ingot-marker', 'busybox-static', 'kernel', ...o.extra], core: false, weakDeps: false },
    disk: { table: o.table, partitions: parts },
    bootloader: { kind: o.kind, firmware: o.firmware, timeout: 0, kernelArgs: KARGS },
    outputs: o.formats.map((format) => ({ format })),
  }));
  const out = join(work, name);
  const r = ingot(['build', spec, '-o', out, '-q'], { env: { SOURCE_DATE_EPOCH: '1700000000' } });
  assert.is(r.code, 0, r.stderr);
  return out;
}

function boot(image: string, firmware: 'bios' | 'uefi'): void {
  const r = ingot(['boot', image, '--firmware', firmware, '--timeout', '240']);
  assert.is(r.code, 0, `${image} (${firmware}) did not boot:\n${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout + r.stderr, new RegExp(BOOT_MARKER));
}

function rootFsck(raw: string): void {
  const j = JSON.parse(execFileSync('sfdisk', ['--json', raw], { encoding: 'utf8' })) as { partitiontable: { partitions: { start: number; size: number }[] } };
  const p = j.partitiontable.partitions[j.partitiontable.partitions.length - 1]!;
  const img = join(work, 'rootcheck.img');
  execFileSync('dd', [`if=${raw}`, `of=${img}`, 'bs=512', `skip=${p.start}`, `count=${p.size}`, 'status=none', 'conv=sparse']);
  const r = spawnSync('e2fsck', ['-fn', img], { encoding: 'utf8' });
  assert.is(r.status, 0, r.stdout + r.stderr);
  rmSync(img);
}

test.before(() => {
  for (const t of ['qemu-system-x86_64', 'qemu-img', 'sfdisk', 'e2fsck']) requireTool(t);
  requireTool('sgdisk');
  // OVMF for UEFI boots: a firmware file, not a program.
  const ovmf = () => spawnSync('sh', ['-c', 'ls /usr/share/OVMF/OVMF_CODE*.fd'], { encoding: 'utf8' }).stdout.trim();
  if (!ovmf()) aptInstall(['ovmf']);
  assert.ok(ovmf(), 'OVMF firmware missing: install the Debian package ovmf');
});

test('BIOS + MBR + extlinux: raw boots, converted vmdk boots, e2fsck clean after the install', () => {
  const out = build('extlinux', { table: 'mbr', kind: 'extlinux', firmware: 'bios', extra: ['extlinux'], esp: false, formats: ['raw'] });
  rootFsck(join(out, 'extlinux.raw'));
  boot(join(out, 'extlinux.raw'), 'bios');
  const vmdk = join(out, 'extlinux.vmdk');
  const c = ingot(['convert', join(out, 'extlinux.raw'), vmdk]);
  assert.is(c.code, 0, c.stderr);
  boot(vmdk, 'bios');
});

test('UEFI + GPT + GRUB EFI: qcow2 boots, converted vhd boots', () => {
  const out = build('grub-uefi', { table: 'gpt', kind: 'grub', firmware: 'uefi', extra: ['grub-efi-amd64-signed'], esp: true, formats: ['qcow2', 'raw'] });
  rootFsck(join(out, 'grub-uefi.raw'));
  assert.match(execFileSync('sgdisk', ['-v', join(out, 'grub-uefi.raw')], { encoding: 'utf8' }), /No problems found/);
  boot(join(out, 'grub-uefi.qcow2'), 'uefi');
  const vhd = join(out, 'grub-uefi.vhd');
  const c = ingot(['convert', join(out, 'grub-uefi.qcow2'), vhd]);
  assert.is(c.code, 0, c.stderr);
  boot(vhd, 'uefi');
});

test('UEFI + GPT + systemd-boot: qcow2 boots', () => {
  const out = build('sdboot', { table: 'gpt', kind: 'systemd-boot', firmware: 'uefi', extra: ['systemd-boot-efi'], esp: true, formats: ['qcow2'] });
  boot(join(out, 'sdboot.qcow2'), 'uefi');
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
