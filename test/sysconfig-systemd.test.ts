import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync, readdirSync, lstatSync, readlinkSync, readFileSync, cpSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StagingTree, BufferContent } from '../src/tree/tree.js';
import { configureServices, SystemdUnits, fnmatch, parseInstallSection } from '../src/install/systemd.js';
import { requireTool } from './helpers/tools.js';
import { loadDirIntoTree } from './helpers/treedisk.js';

/** Every symlink below /etc/systemd/system on disk, as "path -> target". */
function diskLinks(root: string): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    let names: string[];
    try { names = readdirSync(join(root, rel)); } catch { return; }
    for (const n of names) {
      const r = `${rel}/${n}`;
      const st = lstatSync(join(root, r));
      if (st.isSymbolicLink()) out.push(`${r} -> ${readlinkSync(join(root, r))}`);
      else if (st.isDirectory()) walk(r);
    }
  };
  walk('/etc/systemd/system');
  return out.sort();
}

function treeLinks(tree: StagingTree): string[] {
  const base = tree.lookup('/etc/systemd/system');
  if (!base) return [];
  return [...tree.walk(base, '/etc/systemd/system')].filter((e) => e.inode.type === 'symlink').map((e) => `${e.path} -> ${e.inode.target}`).sort();
}

const unit = (install: string): string => `[Unit]\nDescription=x\n[Service]\nExecStart=/bin/true\n${install}`;

/** An image root: the host's real systemd units (Debian 12, ~240 files) plus synthetic units for each [Install] feature. */
function buildRoot(presets: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'sdroot-'));
  mkdirSync(join(root, 'usr/lib/systemd'), { recursive: true });
  cpSync('/usr/lib/systemd/system', join(root, 'usr/lib/systemd/system'), { recursive: true, verbatimSymlinks: true });
  // No /lib → usr/lib link: Debian's systemctl searches /lib/systemd/system before /usr/lib (split-usr
  // build), Fedora's only has /usr/lib; without the link both name the units /usr/lib/systemd/system/….
  mkdirSync(join(root, 'etc/systemd/system'), { recursive: true });
  mkdirSync(join(root, 'usr/lib/systemd/system-preset'), { recursive: true });
  const u = join(root, 'usr/lib/systemd/system');
  writeFileSync(join(u, 'alpha.service'), unit('[Install]\nWantedBy=multi-user.target\nAlias=alpha-alias.service\nAlso=beta.service\n'));
  writeFileSync(join(u, 'beta.service'), unit('[Install]\nRequiredBy=graphical.target\n'));
  writeFileSync(join(u, 'tpl@.service'), unit('[Install]\nWantedBy=multi-user.target %p-extra.target\nAlias=tplalias@.service\n'));
  writeFileSync(join(u, 'dflt@.service'), unit('[Install]\nWantedBy=default.target\nDefaultInstance=one\n'));
  writeFileSync(join(u, 'cont.service'), unit('[Install]\nWantedBy=multi-user.target \\\n  graphical.target\nWantedBy=\nWantedBy=sysinit.target\n'));
  writeFileSync(join(u, 'spec.socket'), '[Socket]\nListenStream=/run/x\n[Install]\nWantedBy=sockets.target\nAlias=%N-alias.socket\n');
  writeFileSync(join(u, 'onlyalso.service'), unit('[Install]\nAlso=spec.socket\n'));
  writeFileSync(join(u, 'static-only.service'), unit(''));
  symlinkSync('alpha.service', join(u, 'alpha-shipped-alias.service'));
  for (const [name, text] of Object.entries(presets)) writeFileSync(join(root, 'usr/lib/systemd/system-preset', name), text);
  return root;
}

const PRESETS = {
  '80-test.preset': [
    '# test presets (Fedora style)', 'enable alpha.service', 'disable beta.service', 'enable tpl@.service x y', 'enable dflt@.service',
    'enable cont.service', 'enable spec.*', 'disable systemd-timesyncd.service', 'enable onlyalso.service', '',
  ].join('\n'),
  '90-systemd.preset': readFileSync('/usr/lib/systemd/system-preset/90-systemd.preset', 'utf8'),
  '99-default-disable.preset': 'disable *\n',
};

function systemctl(root: string, ...args: string[]): void {
  const r = spawnSync('systemctl', [`--root=${root}`, ...args], { encoding: 'utf8' });
  assert.is(r.status, 0, `systemctl ${args.join(' ')}: ${r.stderr}`);
}

test('preset-all, disable, enable, set-default: same links as systemctl --root (systemd 252)', async () => {
  requireTool('systemctl');
  const root = buildRoot(PRESETS);
  const tree = loadDirIntoTree(root);
  systemctl(root, 'preset-all');
  systemctl(root, 'disable', 'systemd-networkd.service');
  systemctl(root, 'enable', 'systemd-timesyncd.service', 'serial-getty@ttyS0.service', 'tpl@z.service', 'beta.service');
  systemctl(root, 'set-default', 'multi-user.target');
  const expected = diskLinks(root);
  const r = await configureServices(tree, {
    enable: ['systemd-timesyncd', 'serial-getty@ttyS0.service', 'tpl@z.service', 'beta'], disable: ['systemd-networkd'], defaultTarget: 'multi-user.target',
  });
  const ours = treeLinks(tree);
  assert.equal(ours, expected);
  assert.ok(expected.length > 20, `a real amount of links (${expected.length})`);
  assert.ok(expected.some((l) => l.includes('getty.target.wants/getty@tty1.service')), 'DefaultInstance exercised');
  assert.ok(r.changes.length > 0);
  console.log(`systemd oracle: ${expected.length} links equal`);
});

test('preset-all alone on the host units with only the real Debian preset: same links', async () => {
  const root = buildRoot({ '90-systemd.preset': PRESETS['90-systemd.preset'] });
  const tree = loadDirIntoTree(root);
  systemctl(root, 'preset-all');
  await new SystemdUnits(tree).presetAll();
  assert.equal(treeLinks(tree), diskLinks(root));
});

test('disable removes aliases and Also= links; enabling a missing or masked unit warns', async () => {
  const root = buildRoot(PRESETS);
  const tree = loadDirIntoTree(root);
  systemctl(root, 'enable', 'alpha.service', 'spec.socket');
  systemctl(root, 'disable', 'alpha.service');
  const units = new SystemdUnits(tree);
  await units.enable(['alpha.service', 'spec.socket']);
  await units.disable(['alpha.service']);
  assert.equal(treeLinks(tree), diskLinks(root));
  tree.mkdirp('/etc/systemd/system');
  tree.symlink('/etc/systemd/system/cont.service', '/dev/null');
  await units.enable(['nope.service', 'cont.service']);
  assert.ok(units.warnings.some((w) => /nope\.service does not exist/.test(w)));
  assert.ok(units.warnings.some((w) => /cont\.service is masked/.test(w)));
});

test('UpheldBy= (systemd ≥ 254, newer than the 252 oracle) links into .upholds/', async () => {
  const tree = new StagingTree();
  tree.mkdirp('/usr/lib/systemd/system');
  tree.addFile('/usr/lib/systemd/system/up.service', BufferContent.of(unit('[Install]\nUpheldBy=multi-user.target\n')));
  const units = new SystemdUnits(tree);
  await units.enable(['up.service']);
  assert.is(tree.lookup('/etc/systemd/system/multi-user.target.upholds/up.service', { follow: false })?.target, '/usr/lib/systemd/system/up.service');
});

test('fnmatch and [Install] parsing details', () => {
  assert.ok(fnmatch('systemd-journal-gatewayd.*', 'systemd-journal-gatewayd.socket'));
  assert.ok(fnmatch('*', 'a/b.service'));
  assert.ok(fnmatch('foo[0-9].service', 'foo1.service'));
  assert.not.ok(fnmatch('foo[!0-9].service', 'foo1.service'));
  const i = parseInstallSection('[Install]\n# c\nWantedBy=a.target b.target\nWantedBy=\nWantedBy=c.target\nAlias=x.service\n[Service]\nWantedBy=no.target\n');
  assert.equal(i.wantedBy, ['c.target']);
  assert.equal(i.alias, ['x.service']);
});

test.run();
