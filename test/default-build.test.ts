// The README's first command: `ingot build` with no spec builds the embedded
// default image (hybrid GPT: BIOS boot partition + ESP + root) from the
// fixture repository and boot-tests it on BIOS (GRUB core.img) and UEFI (GRUB
// EFI) through qemu.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { ingot } from './helpers/cli.js';
import { aptInstall, requireTool } from './helpers/tools.js';

test('ingot build (no spec) makes the default image and boots it on BIOS and UEFI', () => {
  requireTool('qemu-system-x86_64');
  requireTool('sgdisk');
  if (!existsSync('/usr/share/OVMF/OVMF_CODE.fd') && !existsSync('/usr/share/OVMF/OVMF_CODE_4M.fd')) aptInstall(['ovmf']);
  const dir = mkdtempSync(join(tmpdir(), 'ingot-default-'));
  try {
    const r = ingot(['build', '-o', join(dir, 'out'), '--timeout', '300'], { cwd: dir });
    assert.is(r.code, 0, r.stderr);
    const report = JSON.parse(readFileSync(join(dir, 'out', 'ingot-default.report.json'), 'utf8')) as { bootTests: { firmware: string; ok: boolean }[]; outputs: { format: string; path: string }[] };
    assert.equal(report.bootTests.map((b) => [b.firmware, b.ok]), [['bios', true], ['uefi', true]]);
    assert.equal(report.outputs.map((o) => o.format), ['qcow2']);
    // A hybrid GPT: BIOS boot partition, ESP, root (sgdisk reads it from the converted raw).
    const raw = join(dir, 'd.raw');
    execFileSync('qemu-img', ['convert', '-O', 'raw', report.outputs[0]!.path, raw]);
    const p = execFileSync('sgdisk', ['-p', raw], { encoding: 'utf8' });
    assert.match(p, /EF02/);
    assert.match(p, /EF00/);
    assert.match(execFileSync('sgdisk', ['-v', raw], { encoding: 'utf8' }), /No problems found/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('ingot build --arch i686 (no spec) makes the default image for i686 and boots it on qemu-system-i386', () => {
  requireTool('qemu-system-i386', 'qemu-system-x86');
  const dir = mkdtempSync(join(tmpdir(), 'ingot-default-i686-'));
  try {
    // The boot test succeeds only on the 686 kernel's marker line.
    const r = ingot(['build', '--arch', 'i686', '--format', 'raw', '-o', join(dir, 'out'), '--timeout', '300', '--expect', 'INGOT-BOOT-OK kernel=\\S+-686 root=/dev/vda2 ext4'], { cwd: dir });
    assert.is(r.code, 0, r.stderr);
    const report = JSON.parse(readFileSync(join(dir, 'out', 'ingot-default.report.json'), 'utf8')) as { arch: string; packages: { nevra: string }[]; bootTests: { firmware: string; ok: boolean }[] };
    assert.is(report.arch, 'i686');
    for (const p of report.packages) assert.match(p.nevra, /\.(i686|noarch)$/);
    assert.equal(report.bootTests.map((b) => [b.firmware, b.ok]), [['bios', true]]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
