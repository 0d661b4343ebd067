// A kickstart through the whole product path: parsed, resolved against the
// fixture repository, installed, configured (root password, user, groups,
// network), laid out with reqpart (BIOS boot partition) and booted by GRUB.
// Oracles: qemu boot, openssl's SHA-512 crypt for the passwords.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixtureRepo } from '../fixtures/repo.js';
import { ingot } from './helpers/cli.js';
import { requireTool } from './helpers/tools.js';

const dir = mkdtempSync(join(tmpdir(), 'ingot-ks-'));

test('a kickstart builds, boots with GRUB on BIOS, and carries its accounts', () => {
  requireTool('qemu-system-x86_64');
  requireTool('openssl', 'openssl');
  const ks = join(dir, 'small.ks');
  writeFileSync(ks, [
    `url --url=file://${fixtureRepo()}`,
    'lang en_US.UTF-8', 'keyboard us', 'timezone UTC --utc',
    'rootpw --plaintext ingot', 'user --name=alice --password=secret --plaintext --groups=wheel',
    'selinux --disabled', 'network --bootproto=dhcp --device=link --hostname=ks-test',
    'zerombr', 'clearpart --all --initlabel', 'reqpart', 'part / --fstype=ext4 --size=200 --grow --label=root',
    'bootloader --location=mbr --timeout=1 --append="console=ttyS0 panic=-1"',
    '%packages --nocore --excludeWeakdeps', 'ingot-base', 'ingot-marker', 'busybox-static', 'kernel', 'grub-pc-bin', '%end',
    '%post', 'echo never run', '%end', '',
  ].join('\n'));
  const out = join(dir, 'out');
  const r = ingot(['build', ks, '-o', out, '--format', 'qcow2', '--boot-test', '--timeout', '240', '-q'], { env: { SOURCE_DATE_EPOCH: '1700000000' } });
  assert.is(r.code, 0, r.stderr);
  const image = join(out, 'image.qcow2');
  const shadow = ingot(['cat', image, '/etc/shadow']).stdout;
  for (const [user, pw] of [['root', 'ingot'], ['alice', 'secret']] as const) {
    const field = shadow.split('\n').find((l) => l.startsWith(`${user}:`))!.split(':')[1]!;
    const salt = field.split('$')[2]!;
    assert.is(execFileSync('openssl', ['passwd', '-6', '-salt', salt, pw], { encoding: 'utf8' }).trim(), field, `${user} password`);
  }
  assert.match(ingot(['cat', image, '/etc/group']).stdout, /^wheel:x:\d+:alice$/m);
  assert.match(ingot(['cat', image, '/etc/hostname']).stdout, /^ks-test$/m);
  // alice's home exists, is hers and private (useradd -m with /etc/skel, Anaconda's mode 0700).
  const uid = Number(ingot(['cat', image, '/etc/passwd']).stdout.split('\n').find((l) => l.startsWith('alice:'))!.split(':')[2]);
  const home = (JSON.parse(ingot(['ls', '--json', image, '/home']).stdout) as { path: string; uid: number; mode: number; type: string }[]).find((e) => e.path === '/home/alice');
  assert.ok(home, '/home/alice exists');
  assert.is(home!.type, 'dir');
  assert.is(home!.uid, uid);
  assert.is(home!.mode & 0o777, 0o700);
});

test('an Oz/ImageFactory TDL builds and boots; its <files> land in the image, its <commands> are reported', () => {
  const tdl = join(dir, 'small.tdl');
  writeFileSync(tdl, `<template>
  <name>tdl-test</name>
  <os><name>Fedora</name><version>41</version><arch>x86_64</arch>
    <install type='url'><url>file://${fixtureRepo()}</url></install><rootpw>ingot</rootpw></os>
  <packages><package name='ingot-base'/><package name='ingot-marker'/><package name='busybox-static'/><package name='kernel'/><package name='grub-pc-bin'/></packages>
  <files><file name='/etc/motd' type='raw'>built from a TDL</file></files>
  <commands><command name='hello'>echo hi</command></commands>
</template>
`);
  const out = join(dir, 'tdl');
  const r = ingot(['build', tdl, '-o', out, '--format', 'qcow2', '--boot-test', '--timeout', '240', '-q']);
  assert.is(r.code, 0, r.stderr);
  assert.is(ingot(['cat', join(out, 'tdl-test.qcow2'), '/etc/motd']).stdout, 'built from a TDL');
  const report = JSON.parse(readFileSync(join(out, 'tdl-test.report.json'), 'utf8')) as { scripts: { phase: string }[]; bootTests: { ok: boolean }[] };
  assert.equal(report.scripts.map((x) => x.phase), ['command']);
  assert.ok(report.bootTests.every((b) => b.ok));
});

test.after(() => rmSync(dir, { recursive: true, force: true }));
test.run();
