/**
 * The qemu runner, on images made with the host's Debian tools (syslinux on
 * FAT, GNU cpio initramfs) from the fixture repository's real kernel and
 * busybox: qemu is the oracle that they boot; qemu-img makes the other formats.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { aptInstall, requireTool } from './helpers/tools.js';
import { ingot, ROOT } from './helpers/cli.js';
import { MARKER_INIT, hostInitramfs, kernelVersion, stagedFixtureRoot, syslinuxFatImage } from '../fixtures/images.js';
import { detectImageFormat } from '../src/qemu/format.js';
import { findOvmf, FirmwareMissingError } from '../src/qemu/firmware.js';
import { bootImage } from '../src/qemu/runner.js';

for (const t of ['qemu-system-x86_64', 'qemu-img', 'sfdisk', 'cpio', 'mkfs.vfat', 'mcopy', 'rpm2cpio']) requireTool(t);
requireTool('syslinux', 'syslinux');
if (!existsSync('/usr/share/OVMF/OVMF_CODE_4M.fd')) aptInstall(['ovmf']); // UEFI firmware for qemu
const dir = mkdtempSync(join(tmpdir(), 'ingot-qemu-test-'));
const root = stagedFixtureRoot();
const kernel = join(root, 'boot', `vmlinuz-${kernelVersion(root)}`);
const good = join(dir, 'good.img');
const panics = join(dir, 'panic.img');
const hangs = join(dir, 'hang.img');
hostInitramfs(root, MARKER_INIT, join(dir, 'initrd.img'));
syslinuxFatImage(good, { kernel, initrd: join(dir, 'initrd.img'), append: 'console=ttyS0 quiet' });
hostInitramfs(root, '#!/bin/busybox sh\n/bin/busybox echo waiting forever\n/bin/busybox sleep 100000\n', join(dir, 'hang-initrd.img'));
syslinuxFatImage(hangs, { kernel, initrd: join(dir, 'hang-initrd.img'), append: 'console=ttyS0' });
// No initramfs and no such root device: the kernel panics ("VFS: Unable to mount root fs").
syslinuxFatImage(panics, { kernel, append: 'console=ttyS0 root=/dev/nonexistent panic=0' });

function qemuStillRunning(image: string): boolean {
  return spawnSync('pgrep', ['-f', image]).status === 0;
}

test('ingot boot: the marker from a BIOS+MBR+syslinux raw image → exit 0, serial log written', () => {
  const log = join(dir, 'serial.log');
  const r = ingot(['boot', good, '--timeout', '60', '--serial-log', log, '-q']);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, /^boot ok: INGOT-BOOT-OK from-initramfs \(/);
  assert.match(readFileSync(log, 'latin1'), /SYSLINUX 6\.04[\s\S]*INGOT-BOOT-OK/);
  assert.not.ok(qemuStillRunning(good));
});

test('formats: qemu-img converted qcow2/vmdk/vhd are detected and boot', async () => {
  assert.is(await detectImageFormat(good), 'raw');
  for (const [fmt, ext] of [['qcow2', 'qcow2'], ['vmdk', 'vmdk'], ['vpc', 'vhd']] as const) {
    const out = join(dir, `good.${ext}`);
    const c = spawnSync('qemu-img', ['convert', '-O', fmt, good, out], { encoding: 'utf8' });
    assert.is(c.status, 0, c.stderr);
    assert.is(await detectImageFormat(out), fmt);
  }
  for (const ext of ['qcow2', 'vhd', 'vmdk']) {
    const res = await bootImage({ image: join(dir, `good.${ext}`), timeout: 60 });
    assert.ok(res.ok, `${ext}: ${res.outcome}\n${res.tail.join('\n')}\n${res.qemuStderr}`);
  }
});

test('timeout: non-zero, within the limit, last console lines shown, qemu killed', () => {
  const t0 = Date.now();
  const r = ingot(['boot', hangs, '--timeout', '12', '-q']);
  const took = (Date.now() - t0) / 1000;
  assert.is(r.code, 1);
  assert.match(r.stderr, /boot failed: no \/INGOT-BOOT-OK\/ within 12 s/);
  // The last console lines are shown (how far the guest got depends on the machine's load).
  assert.match(r.stderr, /^\| (SYSLINUX|waiting forever|\[)/m);
  assert.ok(took < 20, `took ${took} s`);
  assert.not.ok(qemuStillRunning(hangs));
});

test('SIGTERM to ingot boot: qemu dies with it', async () => {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), 'boot', hangs, '--timeout', '120', '-q'], { cwd: ROOT, stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 4000));
  assert.ok(qemuStillRunning(hangs), 'qemu should be running');
  child.kill('SIGTERM');
  await new Promise((r) => child.on('exit', r));
  await new Promise((r) => setTimeout(r, 500));
  assert.not.ok(qemuStillRunning(hangs));
});

test('a guest that powers off without the marker: non-zero at once', () => {
  const r = ingot(['boot', good, '--expect', 'NEVER-PRINTED', '--timeout', '60', '-q']);
  assert.is(r.code, 1);
  assert.match(r.stderr, /boot failed: qemu exited \(status 0\) before \/NEVER-PRINTED\//);
});

test('kernel panic: non-zero long before the timeout, with the panic line', () => {
  const t0 = Date.now();
  const r = ingot(['boot', panics, '--timeout', '120', '--json']);
  const took = (Date.now() - t0) / 1000;
  assert.is(r.code, 1);
  const j = JSON.parse(r.stdout) as { ok: boolean; outcome: string; tail: string[] };
  assert.is(j.outcome, 'panic');
  assert.ok(j.tail.some((l) => /Kernel panic - not syncing/.test(l)), j.tail.join('\n'));
  assert.match(r.stderr, /boot failed: kernel panic/);
  assert.ok(took < 60, `took ${took} s`);
  assert.not.ok(qemuStillRunning(panics));
});

test('UEFI firmware: found in Debian locations, or a named error', () => {
  const fw = findOvmf('x86_64');
  assert.match(fw.code, /OVMF/);
  try {
    findOvmf('x86_64', [{ code: join(dir, 'none/OVMF_CODE.fd'), vars: join(dir, 'none/OVMF_VARS.fd') }]);
    assert.unreachable();
  } catch (e) {
    assert.instance(e, FirmwareMissingError);
    assert.match((e as Error).message, /install the Debian package 'ovmf'/);
  }
});

test('usage errors exit 2', () => {
  assert.is(ingot(['boot', good, '--firmware', 'coreboot']).code, 2);
  assert.is(ingot(['boot', good, '--timeout', '-1']).code, 2);
  assert.is(ingot(['boot', good, '--format', 'iso']).code, 2);
  const missing = ingot(['boot', join(dir, 'no-such.img')]);
  assert.is(missing.code, 1);
  assert.match(missing.stderr, /no-such\.img/);
});

test.after(() => rmSync(dir, { recursive: true, force: true }));
test.run();

