// Oracle for --instLangs: rpm itself installing a package with %lang files
// under `--define '_install_langs de'` (into a scratch root, --nodeps
// --noscripts), against the Unpacker with instLangs ['de'].
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openRpm } from '../src/rpm/reader.js';
import { ContentStore } from '../src/tree/content-store.js';
import { StagingTree } from '../src/tree/tree.js';
import { Unpacker, UnknownOwnerError } from '../src/install/unpack.js';
import { requireTool } from './helpers/tools.js';

const dir = mkdtempSync(join(tmpdir(), 'ingot-langs-'));

const SPEC = `Name: langs
Version: 1
Release: 1
Summary: files in several languages
License: MIT
BuildArch: noarch
%description
test
%install
for l in de fr pt_BR; do mkdir -p %{buildroot}/usr/share/locale/$l/LC_MESSAGES; echo $l > %{buildroot}/usr/share/locale/$l/LC_MESSAGES/langs.mo; done
mkdir -p %{buildroot}/usr/bin; echo x > %{buildroot}/usr/bin/langs; echo y > %{buildroot}/usr/bin/owned
%files
/usr/bin/langs
%attr(0644,nosuchuser,nosuchgroup) /usr/bin/owned
%dir /usr/share/locale/de
%dir /usr/share/locale/de/LC_MESSAGES
%lang(de) /usr/share/locale/de/LC_MESSAGES/langs.mo
%dir /usr/share/locale/fr
%dir /usr/share/locale/fr/LC_MESSAGES
%lang(fr) /usr/share/locale/fr/LC_MESSAGES/langs.mo
%dir /usr/share/locale/pt_BR
%dir /usr/share/locale/pt_BR/LC_MESSAGES
%lang(pt_BR) /usr/share/locale/pt_BR/LC_MESSAGES/langs.mo
`;

function files(root: string, rel = ''): string[] {
  const out: string[] = [];
  for (const n of readdirSync(join(root, rel), { withFileTypes: true })) {
    const p = `${rel}/${n.name}`;
    if (/^\/(var|root|usr\/lib\/sysimage)(\/|$)/.test(p)) continue;
    out.push(p);
    if (n.isDirectory()) out.push(...files(root, p));
  }
  return out.sort();
}

test('instLangs keeps what rpm --define _install_langs keeps', async () => {
  requireTool('rpmbuild');
  requireTool('rpm');
  const top = join(dir, 'rpmbuild');
  writeFileSync(join(dir, 'langs.spec'), SPEC);
  execFileSync('rpmbuild', ['-bb', '--define', `_topdir ${top}`, join(dir, 'langs.spec')], { stdio: 'ignore', env: { ...process.env, HOME: dir } });
  const rpmFile = join(top, 'RPMS', 'noarch', 'langs-1-1.noarch.rpm');
  for (const langs of ['de', 'de:pt_BR', 'all']) {
    const root = join(dir, `root-${langs.replace(':', '-')}`);
    mkdirSync(root, { recursive: true });
    execFileSync('rpm', ['--root', root, '--dbpath', '/var/lib/rpm', '--define', `_install_langs ${langs}`, '-i', '--nodeps', '--noscripts', rpmFile], { stdio: 'ignore' });
    const tree = new StagingTree();
    const store = ContentStore.create();
    try {
      const u = new Unpacker(tree, store, () => ({ uid: () => 0, gid: () => 0 }), { lenientOwners: true, instLangs: langs === 'all' ? undefined : langs.split(':') });
      await u.install(await openRpm(rpmFile));
      const mine = [...tree.walk()].map((e) => e.path).filter((p) => p !== '/').sort();
      assert.equal(mine, files(root), `_install_langs ${langs}`);
    } finally {
      await store.dispose();
    }
  }
});

test('a file owned by a user the image does not define is a typed error naming user, path and package', async () => {
  const rpmFile = join(dir, 'rpmbuild', 'RPMS', 'noarch', 'langs-1-1.noarch.rpm');
  const store = ContentStore.create();
  try {
    const u = new Unpacker(new StagingTree(), store, () => ({ uid: () => undefined, gid: () => undefined }));
    await u.install(await openRpm(rpmFile));
    assert.unreachable('unknown owner accepted');
  } catch (e) {
    assert.instance(e, UnknownOwnerError);
    assert.match((e as Error).message, /user 'nosuchuser' owning \/usr\/bin\/owned in langs-1-1\.noarch/);
  } finally {
    await store.dispose();
  }
  // rpm's own behaviour, on request: root with a warning.
  const store2 = ContentStore.create();
  try {
    const u = new Unpacker(new StagingTree(), store2, () => ({ uid: () => undefined, gid: () => undefined }), { lenientOwners: true });
    await u.install(await openRpm(rpmFile));
    assert.ok(u.warnings.some((w) => w.includes('nosuchuser')));
  } finally {
    await store2.dispose();
  }
});

test.after(() => rmSync(dir, { recursive: true, force: true }));
test.run();
