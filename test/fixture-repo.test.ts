import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireTool } from './helpers/tools.js';
import { BOOT_MARKER, DEFAULT_PACKAGES, DEFAULT_PACKAGES_I686, fixtureRepo, unpackWithHostTools } from '../fixtures/repo.js';

requireTool('rpmbuild'); requireTool('createrepo_c'); requireTool('rpm2cpio'); requireTool('cpio');
const repo = fixtureRepo();

/** dnf's transaction (install --assumeno into an empty root) for `packages` from the fixture repository, handed to `check`. */
function dnfTransaction(arch: string, packages: readonly string[], check: (r: { stdout: string; stderr: string }) => void): void {
  requireTool('dnf');
  const root = mkdtempSync(join(tmpdir(), 'ingot-dnfroot-'));
  try {
    check(spawnSync('dnf', ['--setopt=reposdir=/dev/null', `--repofrompath=fx,${repo}`, '--repo=fx',
      `--installroot=${root}`, '--releasever=1', `--forcearch=${arch}`, '--nogpgcheck', '--setopt=metadata_expire=0',
      '--setopt=install_weak_deps=False', 'install', '--assumeno', ...packages], { encoding: 'utf8' }));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

test('every package passes rpm -K (digests)', () => {
  const files = readdirSync(join(repo, 'Packages')).map((f) => join(repo, 'Packages', f));
  assert.ok(files.length >= 10, `only ${files.length} packages`);
  const r = spawnSync('rpm', ['-K', '--nosignature', ...files], { encoding: 'utf8' });
  assert.is(r.status, 0, r.stdout + r.stderr);
  assert.is(r.stdout.trim().split('\n').filter((l) => / digests OK$/.test(l)).length, files.length, r.stdout);
});

test('dnf resolves the default package set from the repository alone', () => {
  dnfTransaction('x86_64', DEFAULT_PACKAGES, (r) => {
    // --assumeno ends with status 1 after printing the transaction; a resolution failure prints "Problem"/"No match".
    assert.not.match(r.stdout + r.stderr, /Problem|No match|nothing provides|Error:/, r.stdout + r.stderr);
    for (const p of ['ingot-base', 'ingot-marker', 'busybox-static', 'linux-image-', 'extlinux', 'syslinux-common', 'grub-pc-bin', 'grub-efi-amd64-bin', 'systemd-boot-efi']) {
      assert.match(r.stdout, new RegExp(`^ ${p}`, 'm'), `${p} not in the transaction:\n${r.stdout}`);
    }
    assert.match(r.stdout + r.stderr, /Operation aborted/);
    // The i686 builds of the same names (and the 686 kernel providing `kernel`) lose to x86_64.
    assert.not.match(r.stdout, /^ \S+\s+i686\s/m, r.stdout);
  });
});

test('dnf --forcearch=i686 resolves the i686 set from the same repository to i686 and noarch packages only', () => {
  dnfTransaction('i686', DEFAULT_PACKAGES_I686, (r) => {
    assert.not.match(r.stdout + r.stderr, /Problem|No match|nothing provides|Error:/, r.stdout + r.stderr);
    // Transaction lines: " name  arch  version  repo  size".
    const rows = [...r.stdout.matchAll(/^ (\S+)\s+(i686|x86_64|noarch)\s/gm)].map((m) => [m[1]!, m[2]!]);
    assert.ok(rows.length >= 7, r.stdout);
    for (const [name, arch] of rows) assert.ok(arch === 'i686' || arch === 'noarch', `${name}.${arch}`);
    assert.ok(rows.some(([n, a]) => /^linux-image-.*-686$/.test(n) && a === 'i686'), r.stdout);
    assert.ok(rows.some(([n, a]) => n === 'busybox-static' && a === 'i686'), r.stdout);
  });
});

test('the layout is usrmove and the marker init is a busybox script', () => {
  const root = mkdtempSync(join(tmpdir(), 'ingot-fxroot-'));
  try {
    unpackWithHostTools(['ingot-base', 'ingot-marker', 'busybox-static', 'extlinux', 'syslinux-common'], root);
    for (const d of ['bin', 'sbin', 'lib', 'lib64']) {
      const r = spawnSync('readlink', [join(root, d)], { encoding: 'utf8' });
      assert.is(r.stdout.trim(), `usr/${d}`);
    }
    const init = readFileSync(join(root, 'usr/sbin/init'), 'utf8');
    assert.ok(init.startsWith('#!/bin/busybox sh\n'));
    assert.ok(init.includes(BOOT_MARKER));
    assert.ok(readdirSync(join(root, 'usr/bin')).includes('busybox'));
    assert.ok(readdirSync(join(root, 'usr/lib/syslinux/modules/bios')).includes('ldlinux.c32'));
    assert.match(readFileSync(join(root, 'etc/os-release'), 'utf8'), /^ID=ingot$/m);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test.run();
