import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, realpathSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StagingTree, BufferContent } from '../src/tree/tree.js';
import {
  renderFstab, writeTimezone, writeLocale, writeKeyboard, writeMachineId, writeSelinuxConfig, writeNetwork, renderKeyfile,
  seededUuid, prefixLength, applySysconfig, configureSystem, SysconfigError, type MountedFilesystem,
} from '../src/install/sysconfig.js';
import { parseKickstart } from '../src/spec/kickstart.js';
import { readTreeText } from '../src/install/treetext.js';
import { writeTreeToDir } from './helpers/treedisk.js';
import { requireTool } from './helpers/tools.js';

const FS: MountedFilesystem[] = [
  { mount: '/boot/efi', type: 'vfat', uuid: '7B77-95E7' },
  { mount: 'swap', type: 'swap', uuid: '0a1b2c3d-0000-4000-8000-000000000003' },
  { mount: '/', type: 'ext4', uuid: '0a1b2c3d-0000-4000-8000-000000000001' },
  { mount: '/boot', type: 'ext4', uuid: '0a1b2c3d-0000-4000-8000-000000000002' },
  { mount: '/var', type: 'xfs', label: 'var' },
];

test('fstab: libmount (findmnt --tab-file) reads every entry as given', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fstab-'));
  const file = join(dir, 'fstab');
  writeFileSync(file, renderFstab(FS));
  const r = spawnSync('findmnt', ['--tab-file', file, '--raw', '--noheadings', '-o', 'SOURCE,TARGET,FSTYPE,OPTIONS,FREQ,PASSNO'], { encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  const rows = r.stdout.trim().split('\n').map((l) => l.split(' '));
  assert.equal(rows, [
    ['UUID=0a1b2c3d-0000-4000-8000-000000000001', '/', 'ext4', 'defaults', '1', '1'],
    ['UUID=0a1b2c3d-0000-4000-8000-000000000002', '/boot', 'ext4', 'defaults', '1', '2'],
    ['LABEL=var', '/var', 'xfs', 'defaults', '0', '0'],
    ['UUID=7B77-95E7', '/boot/efi', 'vfat', 'umask=0077,shortname=winnt', '0', '2'],
    ['UUID=0a1b2c3d-0000-4000-8000-000000000003', 'none', 'swap', 'defaults', '0', '0'],
  ]);
  assert.throws(() => renderFstab([{ mount: '/', type: 'ext4' }]), (e: unknown) => e instanceof SysconfigError && /neither UUID nor label/.test((e as Error).message));
});

function treeWithZones(): StagingTree {
  const t = new StagingTree();
  for (const z of ['Europe/Berlin', 'America/New_York', 'UTC', 'Etc/UTC']) {
    t.addFile(`/usr/share/zoneinfo/${z}`, BufferContent.of(readFileSync(`/usr/share/zoneinfo/${z}`)));
  }
  return t;
}

test('localtime: relative link into the image tzdata; glibc reads the same zone through it', async () => {
  const t = treeWithZones();
  writeTimezone(t, { name: 'America/New_York', utc: false, ntp: true, ntpServers: [] });
  const dir = mkdtempSync(join(tmpdir(), 'tz-'));
  await writeTreeToDir(t, dir);
  assert.is(readlinkSync(join(dir, 'etc/localtime')), '../usr/share/zoneinfo/America/New_York');
  assert.is(realpathSync(join(dir, 'etc/localtime')), join(realpathSync(dir), 'usr/share/zoneinfo/America/New_York'));
  const date = (tz: string): string => spawnSync('date', ['-d', '@1700000000', '+%F %T %Z'], { env: { TZ: tz }, encoding: 'utf8' }).stdout;
  assert.is(date(`:${join(dir, 'etc/localtime')}`), date('America/New_York'));
  assert.is(readFileSync(join(dir, 'etc/adjtime'), 'utf8').split('\n')[2], 'LOCAL');
  assert.throws(() => writeTimezone(treeWithZones(), { name: 'Mars/Olympus', utc: true, ntp: true, ntpServers: [] }), /Mars\/Olympus is not in the image/);
  assert.throws(() => writeTimezone(treeWithZones(), { name: '../../etc/passwd', utc: true, ntp: true, ntpServers: [] }), /invalid time zone/);
});

test('locale.conf, vconsole.conf and the X11 keyboard file read back through a shell and the format localed writes', async () => {
  const t = new StagingTree();
  writeLocale(t, 'de_DE.UTF-8');
  writeKeyboard(t, { vconsole: 'de-nodeadkeys', xlayouts: ['de (nodeadkeys)', 'us'] });
  const dir = mkdtempSync(join(tmpdir(), 'loc-'));
  await writeTreeToDir(t, dir);
  const sh = spawnSync('sh', ['-c', `. ${dir}/etc/locale.conf; . ${dir}/etc/vconsole.conf; echo "$LANG|$KEYMAP"`], { encoding: 'utf8', env: {} });
  assert.is(sh.stdout.trim(), 'de_DE.UTF-8|de-nodeadkeys');
  const x = readFileSync(join(dir, 'etc/X11/xorg.conf.d/00-keyboard.conf'), 'utf8');
  assert.match(x, /Option "XkbLayout" "de,us"/);
  assert.match(x, /Option "XkbVariant" "nodeadkeys,"/);
  assert.throws(() => writeLocale(t, 'en US'), /invalid locale/);
});

test('machine-id is empty and read-only; selinux config keeps the package file and changes only SELINUX=', async () => {
  const t = new StagingTree();
  writeMachineId(t);
  const m = t.lookup('/etc/machine-id')!;
  assert.is(m.content!.size, 0);
  assert.is(m.mode, 0o444);
  t.addFile('/etc/selinux/config', BufferContent.of('# comment\nSELINUX=enforcing\n# SELINUX=disabled\nSELINUXTYPE=targeted\n'));
  await writeSelinuxConfig(t, 'permissive');
  assert.is(await readTreeText(t, '/etc/selinux/config'), '# comment\nSELINUX=permissive\n# SELINUX=disabled\nSELINUXTYPE=targeted\n');
  const fresh = new StagingTree();
  await writeSelinuxConfig(fresh, 'disabled');
  const dir = mkdtempSync(join(tmpdir(), 'se-'));
  await writeTreeToDir(fresh, dir);
  assert.is(spawnSync('sh', ['-c', `. ${dir}/etc/selinux/config; echo $SELINUX $SELINUXTYPE`], { encoding: 'utf8' }).stdout.trim(), 'disabled targeted');
});

function nmcliNormalize(text: string): { status: number; out: string; err: string } {
  const r = spawnSync('nmcli', ['--offline', 'connection', 'modify', 'connection.autoconnect-priority', '0'], { input: text, encoding: 'utf8' });
  return { status: r.status ?? -1, out: r.stdout, err: r.stderr };
}

function ini(text: string): Map<string, string> {
  const m = new Map<string, string>();
  let sec = '';
  for (const l of text.split('\n')) {
    const s = /^\[(.*)\]$/.exec(l);
    if (s) sec = s[1]!;
    else if (l.includes('=')) m.set(`${sec}.${l.slice(0, l.indexOf('='))}`, l.slice(l.indexOf('=') + 1));
  }
  return m;
}

test('NetworkManager keyfiles from kickstart network lines: nmcli --offline (NM 1.42) accepts and keeps every setting', () => {
  requireTool('nmcli', 'network-manager');
  const spec = parseKickstart([
    'network --bootproto=static --device=eth0 --ip=192.168.1.10 --netmask=255.255.255.0 --gateway=192.168.1.1 --nameserver=192.168.1.1,9.9.9.9 --mtu=9000',
    'network --bootproto=dhcp --device=52:54:00:12:34:56 --noipv6 --onboot=off',
    'network --bootproto=dhcp --device=link --activate',
  ].join('\n') + '\n', '/v/n.ks');
  const expected: Record<string, string>[] = [
    { 'connection.interface-name': 'eth0', 'ipv4.method': 'manual', 'ipv4.address1': '192.168.1.10/24,192.168.1.1', 'ipv4.dns': '192.168.1.1;9.9.9.9;', 'ethernet.mtu': '9000' },
    { 'ethernet.mac-address': '52:54:00:12:34:56', 'ipv4.method': 'auto', 'ipv6.method': 'disabled', 'connection.autoconnect': 'false' },
    { 'ipv4.method': 'auto', 'ipv6.method': 'auto' },
  ];
  spec.network.forEach((n, i) => {
    const { text } = renderKeyfile(n, seededUuid(n.device));
    const r = nmcliNormalize(text);
    assert.is(r.status, 0, r.err);
    const theirs = ini(r.out);
    for (const [k, v] of Object.entries(expected[i]!)) assert.is(theirs.get(k), v, `${n.device} ${k}`);
    for (const [k, v] of ini(text)) if (k !== 'connection.autoconnect-priority') assert.is(theirs.get(k) ?? v, v, `${n.device}: nmcli changed ${k}`);
  });
  assert.throws(() => prefixLength('255.0.255.0'), /invalid netmask/);
});

test('ifcfg for network-scripts images; keyfiles are 0600', () => {
  const t = new StagingTree();
  t.mkdirp('/etc/sysconfig/network-scripts');
  const spec = parseKickstart('network --bootproto=static --device=eth1 --ip=10.1.2.3/16 --gateway=10.1.0.1\n', '/v/n.ks');
  writeNetwork(t, spec.network);
  const dir = mkdtempSync(join(tmpdir(), 'ifcfg-'));
  return writeTreeToDir(t, dir).then(() => {
    const sh = spawnSync('sh', ['-c', `. ${dir}/etc/sysconfig/network-scripts/ifcfg-eth1; echo $DEVICE $BOOTPROTO $IPADDR $PREFIX $GATEWAY $ONBOOT`], { encoding: 'utf8' });
    assert.is(sh.stdout.trim(), 'eth1 none 10.1.2.3 16 10.1.0.1 yes');
    const k = new StagingTree();
    k.mkdirp('/usr/lib/NetworkManager');
    const [p] = writeNetwork(k, spec.network);
    assert.is(k.lookup(p!)!.mode, 0o600);
  });
});

test('applySysconfig writes every file a kickstart asks for', async () => {
  const t = treeWithZones();
  const spec = parseKickstart('timezone Europe/Berlin --utc\nlang C.UTF-8\nkeyboard us\nnetwork --hostname=vm1.example\nselinux --permissive\n', '/v/a.ks');
  await applySysconfig(t, spec, FS.slice(0, 4));
  for (const f of ['/etc/fstab', '/etc/hostname', '/etc/locale.conf', '/etc/vconsole.conf', '/etc/machine-id', '/etc/selinux/config']) assert.ok(t.lookup(f), f);
  assert.is(await readTreeText(t, '/etc/hostname'), 'vm1.example\n');
  assert.is(t.lookup('/etc/localtime', { follow: false })!.target, '../usr/share/zoneinfo/Europe/Berlin');
  assert.not.ok(t.lookup('/etc/adjtime'), 'UTC clock needs no adjtime');
  statSync('/');
});

test('configureSystem: files, native scriptlets, services, firewall zone, first-boot unit', async () => {
  const t = treeWithZones();
  const u = '/usr/lib/systemd/system';
  t.addFile(`${u}/sshd.service`, BufferContent.of('[Service]\nExecStart=/x\n[Install]\nWantedBy=multi-user.target\n'));
  t.addFile(`${u}/firewalld.service`, BufferContent.of('[Service]\nExecStart=/x\n[Install]\nWantedBy=multi-user.target\nAlias=dbus-org.fedoraproject.FirewallD1.service\n'));
  t.addFile(`${u}/multi-user.target`, BufferContent.of('[Unit]\n'));
  t.addFile('/usr/lib/systemd/system-preset/99-default-disable.preset', BufferContent.of('disable *\n'));
  t.addFile('/usr/lib/firewalld/zones/public.xml', BufferContent.of('<?xml version="1.0" encoding="utf-8"?>\n<zone>\n  <short>Public</short>\n  <service name="ssh"/>\n</zone>\n'));
  t.addFile('/usr/lib64/libz.so.1.2.13', BufferContent.of(readFileSync('/usr/lib/x86_64-linux-gnu/libz.so.1.2.13')));
  const spec = parseKickstart([
    'timezone Etc/UTC --utc', 'services --enabled=sshd', 'firstboot --reconfig', 'firewall --enabled --service=http,ssh --port=8443:tcp', 'network --hostname=box', '%post', 'echo hi', '%end',
  ].join('\n') + '\n', '/v/a.ks');
  spec.deferredScriptletsUnit = true;
  const r = await configureSystem(t, spec, {
    filesystems: FS.slice(2, 3),
    scriptlets: [
      { package: 'zlib', phase: 'post', interpreter: '/sbin/ldconfig', body: '' },
      { package: 'foo', phase: 'post', interpreter: '/bin/sh', body: 'sed -i s/a/b/ /etc/foo\n' },
    ],
  });
  assert.is(r.scriptlets.native, 1);
  assert.is(r.scriptlets.deferred, 1);
  assert.ok(t.lookup('/etc/ld.so.cache'), 'ldconfig ran natively');
  assert.is(t.lookup('/usr/lib64/libz.so.1', { follow: false })?.target, 'libz.so.1.2.13');
  assert.ok(t.lookup('/etc/systemd/system/multi-user.target.wants/sshd.service', { follow: false }), 'services --enabled beats the disable-all preset');
  assert.ok(t.lookup('/etc/systemd/system/multi-user.target.wants/firewalld.service', { follow: false }), 'firewall --enabled enables firewalld');
  const zone = (await readTreeText(t, '/etc/firewalld/zones/public.xml'))!;
  const { parseStringPromise } = await import('xml2js');
  const z = await parseStringPromise(zone);
  assert.equal(z.zone.service.map((x: { $: { name: string } }) => x.$.name), ['ssh', 'http']);
  assert.equal(z.zone.port[0].$, { port: '8443', protocol: 'tcp' });
  assert.ok(r.firstbootFiles.length >= 3);
  assert.ok(t.lookup('/etc/systemd/system/multi-user.target.wants/ingot-deferred-scriptlets.service', { follow: false }));
  assert.ok(r.warnings.every((w) => !/deferred and not run/.test(w)));
  assert.ok(t.lookup('/etc/reconfigSys'), 'firstboot --reconfig');
  assert.ok(r.warnings.some((w) => /initial-setup\.service does not exist/.test(w)), 'enabling a unit the image lacks is a warning');
});

test.run();
