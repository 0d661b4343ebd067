import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync, execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, copyFileSync, existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { StagingTree, BufferContent } from '../src/tree/tree.js';
import { classifyScriptlet, classifyTransaction, installFirstbootUnit, transactionOrder, applyAlternatives, FIRSTBOOT_DIR, FIRSTBOOT_UNIT, type Scriptlet } from '../src/install/scriptlets.js';
import { readTreeBytes } from '../src/install/treetext.js';
import { writeTreeToDir } from './helpers/treedisk.js';
import { requireTool } from './helpers/tools.js';

const sh = (pkg: string, phase: Scriptlet['phase'], body: string): Scriptlet => ({ package: pkg, phase, interpreter: '/bin/sh', body });

test('common Fedora scriptlets are handled natively', () => {
  const cases: [Scriptlet, string, string[]][] = [
    [{ package: 'zlib', phase: 'post', interpreter: '/sbin/ldconfig', body: '' }, 'native', ['ldconfig']],
    [sh('openssh-server', 'post', 'if [ $1 -eq 1 ] && [ -x "/usr/lib/systemd/systemd-update-helper" ]; then\n    # Initial installation\n    /usr/lib/systemd/systemd-update-helper install-system-units sshd.service sshd.socket || :\nfi\n'), 'native', ['systemd-preset']],
    [sh('chrony', 'post', '\nif [ $1 -eq 1 ] ; then \n        # Initial installation \n        systemctl --no-reload preset chronyd.service &>/dev/null || : \nfi \n'), 'native', ['systemd-preset']],
    [sh('dbus', 'pre', 'getent group dbus >/dev/null || groupadd -f -g 81 -r dbus\ngetent passwd dbus >/dev/null || \\\n    useradd -r -u 81 -g 81 -d / -s /sbin/nologin -c "System message bus" dbus\nexit 0\n'), 'native', ['groupadd', 'useradd']],
    [sh('java', 'post', 'alternatives --install /usr/bin/java java /usr/lib/jvm/x/bin/java 21000 --slave /usr/bin/keytool keytool /usr/lib/jvm/x/bin/keytool\n'), 'native', ['alternatives']],
    [sh('foo', 'post', 'if [ $1 -gt 1 ]; then\n  rm -rf /var/cache/foo\nfi\n/sbin/ldconfig\n'), 'native', ['ldconfig']],
    [sh('foo', 'postun', 'rm -rf /etc/foo'), 'noop', []],
    [sh('foo', 'post', 'systemctl daemon-reload >/dev/null 2>&1 || :\nsystemd-tmpfiles --create foo.conf || :\n'), 'noop', []],
    [sh('hicolor', 'posttrans', 'gtk-update-icon-cache -q /usr/share/icons/hicolor &>/dev/null || :'), 'deferred', []],
    [sh('foo', 'post', 'sed -i s/a/b/ /etc/foo.conf'), 'deferred', []],
    [{ package: 'filesystem', phase: 'pretrans', interpreter: '<lua>', body: 'posix.mkdir("/usr")' }, 'deferred', []],
    [sh('foo', 'post', 'case "$1" in\n 1) echo x ;;\nesac'), 'deferred', []],
  ];
  for (const [s, disp, kinds] of cases) {
    const c = classifyScriptlet(s);
    assert.is(c.disposition, disp, `${s.package} %${s.phase}: ${c.reasons.join('; ')}`);
    assert.equal(c.actions.map((a) => a.kind), kinds, s.body);
  }
  assert.ok(classifyScriptlet(cases[8]![0]).cacheOnly);
  const dbus = classifyScriptlet(cases[3]![0]);
  assert.equal(dbus.actions[1], { kind: 'useradd', args: ['-r', '-u', '81', '-g', '81', '-d', '/', '-s', '/sbin/nologin', '-c', 'System message bus', 'dbus'] });
  const ssh = classifyScriptlet(cases[1]![0]);
  assert.equal(ssh.actions[0], { kind: 'systemd-preset', units: ['sshd.service', 'sshd.socket'] });
});

/** A chroot with dash as /bin/sh and the few programs the runner and the test scriptlets use. */
function miniRoot(): string {
  const root = mkdtempSync(join(tmpdir(), 'root-'));
  const progs = ['/bin/dash', '/bin/rm', '/bin/mv', '/bin/cat'];
  const libs = new Set<string>();
  for (const p of progs) {
    for (const l of execFileSync('ldd', [p]).toString().split('\n')) {
      const m = /(\/\S+)\s+\(0x/.exec(l);
      if (m) libs.add(m[1]!);
    }
  }
  for (const f of [...progs, ...libs]) { mkdirSync(join(root, dirname(f)), { recursive: true }); copyFileSync(f, join(root, f)); }
  copyFileSync('/bin/dash', join(root, 'bin/sh'));
  execFileSync('chmod', ['-R', 'a+rx', root]);
  mkdirSync(join(root, 'tmp'));
  return root;
}

const SPEC = (name: string, extra: string): string => `Name: ${name}
Version: 1
Release: 1
Summary: t
License: MIT
BuildArch: noarch
${extra}
%description
t
%files
%pretrans
echo "${name} pretrans $# $1 $2" >> /scriptlet.log
%pre
echo "${name} pre $# $1 $2" >> /scriptlet.log
%post
echo "${name} post $# $1 $2" >> /scriptlet.log
%posttrans
echo "${name} posttrans $# $1 $2" >> /scriptlet.log
`;

test('deferred scriptlets on first boot run in rpm\'s order with rpm\'s arguments (rpm --root as the oracle)', async () => {
  requireTool('rpmbuild');
  const top = mkdtempSync(join(tmpdir(), 'rpmb-'));
  writeFileSync(join(top, 'b.spec'), SPEC('bpkg', ''));
  writeFileSync(join(top, 'a.spec'), SPEC('apkg', 'Requires: bpkg') + '%triggerin -- bpkg\necho "apkg triggerin $# $1 $2" >> /scriptlet.log\n');
  for (const s of ['a.spec', 'b.spec']) {
    const r = spawnSync('rpmbuild', ['-bb', '--define', `_topdir ${top}`, '--define', '__os_install_post %{nil}', join(top, s)], { encoding: 'utf8' });
    assert.is(r.status, 0, r.stderr);
  }
  const rpms = readdirSync(join(top, 'RPMS/noarch')).map((f) => join(top, 'RPMS/noarch', f));
  const real = miniRoot();
  const r = spawnSync('rpm', ['--root', real, '--dbpath', '/var/lib/rpm', '-i', '--nodeps', '--ignorearch', '--ignoreos', ...rpms], { encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  assert.ok(existsSync(join(real, 'scriptlet.log')), `rpm ran no scriptlet: ${r.stderr} ${execFileSync('ls', ['-la', real]).toString()}`);
  const expected = readFileSync(join(real, 'scriptlet.log'), 'utf8');

  // The same scriptlets as the RPM reader hands them over (bodies from the headers), in transaction (dependency) order.
  const scriptlets: Scriptlet[] = [];
  for (const rpm of [rpms.find((p) => p.includes('bpkg'))!, rpms.find((p) => p.includes('apkg'))!]) {
    const name = rpm.includes('bpkg') ? 'bpkg' : 'apkg';
    for (const [phase, tag] of [['pretrans', 'PRETRANS'], ['pre', 'PREIN'], ['post', 'POSTIN'], ['posttrans', 'POSTTRANS']] as const) {
      const body = execFileSync('rpm', ['-qp', '--qf', `%{${tag}}`, rpm]).toString();
      scriptlets.push({ package: name, phase, interpreter: '/bin/sh', body });
    }
    if (name === 'apkg') scriptlets.push({ package: name, phase: 'triggerin', interpreter: '/bin/sh', body: execFileSync('rpm', ['-qp', '--qf', '[%{TRIGGERSCRIPTS}]', rpm]).toString(), condition: 'bpkg' });
  }
  const report = classifyTransaction(scriptlets);
  assert.is(report.deferred, 9);
  const tree = new StagingTree();
  await installFirstbootUnit(tree, report.scriptlets.filter((s) => s.disposition === 'deferred'));
  assert.is(tree.lookup(`/etc/systemd/system/multi-user.target.wants/${FIRSTBOOT_UNIT}`, { follow: false })?.target, `/usr/lib/systemd/system/${FIRSTBOOT_UNIT}`);
  const ours = miniRoot();
  await writeTreeToDir(tree, ours);
  const run = spawnSync('chroot', [ours, `${FIRSTBOOT_DIR}/run`], { encoding: 'utf8' });
  assert.is(run.status, 0, run.stderr + run.stdout);
  assert.is(readFileSync(join(ours, 'scriptlet.log'), 'utf8'), expected);
  // Runs once: the unit link is gone and the runner renamed.
  assert.not.ok(existsSync(join(ours, `etc/systemd/system/multi-user.target.wants/${FIRSTBOOT_UNIT}`)));
  assert.ok(existsSync(join(ours, `${FIRSTBOOT_DIR}/run.done`)));
  assert.not.ok(existsSync(join(ours, `${FIRSTBOOT_DIR}/run`)));
});

test('alternatives: same links and administrative file as Debian update-alternatives --root', async () => {
  requireTool('update-alternatives', 'dpkg');
  const root = mkdtempSync(join(tmpdir(), 'alt-'));
  const files = ['/opt/j1/bin/java', '/opt/j1/bin/keytool', '/opt/j2/bin/java', '/opt/j3/bin/java', '/opt/j3/bin/keytool', '/usr/bin/vim.basic', '/usr/bin/nano'];
  const tree = new StagingTree();
  for (const f of files) { mkdirSync(join(root, dirname(f)), { recursive: true }); writeFileSync(join(root, f), ''); tree.addFile(f, BufferContent.of('')); }
  for (const d of ['etc/alternatives', 'var/lib/dpkg/alternatives', 'usr/bin']) mkdirSync(join(root, d), { recursive: true });
  const installs = [
    ['--install', '/usr/bin/java', 'java', '/opt/j1/bin/java', '100', '--slave', '/usr/bin/keytool', 'keytool', '/opt/j1/bin/keytool'],
    ['--install', '/usr/bin/java', 'java', '/opt/j2/bin/java', '200'],
    ['--install', '/usr/bin/editor', 'editor', '/usr/bin/nano', '40'],
    ['--install', '/usr/bin/editor', 'editor', '/usr/bin/vim.basic', '30'],
    ['--install', '/usr/bin/java', 'java', '/opt/j3/bin/java', '50', '--slave', '/usr/bin/keytool', 'keytool', '/opt/j3/bin/keytool'],
  ];
  for (const args of installs) {
    const r = spawnSync('update-alternatives', ['--root', root, ...args], { encoding: 'utf8' });
    assert.is(r.status, 0, r.stderr);
  }
  // The same calls, as classified scriptlets, through the native path.
  const report = classifyTransaction(installs.map((a, i) => sh(`p${i}`, 'post', `alternatives ${a.join(' ')}\n`)));
  assert.is(report.native, installs.length);
  await applyAlternatives(tree, report.scriptlets.flatMap((s) => s.actions.map((a) => (a as { args: string[] }).args)), { admindir: '/var/lib/dpkg/alternatives' });
  const theirLinks = execFileSync('find', [root, '-type', 'l', '-printf', '%P -> %l\n']).toString().trim().split('\n').map((l) => `/${l}`).sort();
  const ourLinks = [...tree.walk()].filter((e) => e.inode.type === 'symlink').map((e) => `${e.path} -> ${e.inode.target}`).sort();
  assert.equal(ourLinks, theirLinks);
  for (const name of ['java', 'editor']) {
    assert.is(Buffer.from((await readTreeBytes(tree, `/var/lib/dpkg/alternatives/${name}`))!).toString(), readFileSync(join(root, 'var/lib/dpkg/alternatives', name), 'utf8'), name);
  }
});

test('transaction order: all %pretrans, then per package, then all %posttrans', () => {
  const order = transactionOrder([sh('a', 'posttrans', ''), sh('a', 'post', ''), sh('a', 'pretrans', ''), sh('b', 'pre', ''), sh('a', 'pre', ''), sh('b', 'pretrans', '')]);
  assert.equal(order.map((s) => `${s.package}:${s.phase}`), ['a:pretrans', 'b:pretrans', 'a:pre', 'a:post', 'b:pre', 'a:posttrans']);
});

test.run();
