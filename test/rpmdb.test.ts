/**
 * rpmdb.sqlite writer against Debian's rpm 4.18:
 * - the same packages installed by `rpm --justdb` give byte-identical header
 *   blobs and identical index tables (with rpm's install time and order);
 * - `rpm -qa` on our database lists exactly the packages' NVRAs (as
 *   `rpm -qp` reads them from the files), `-qi`/`-ql` work;
 * - after extracting the payloads with rpm2cpio | cpio, `rpm -Va` is silent.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { requireTool } from './helpers/tools.js';
import { SHARED } from './helpers/cli.js';
import { readRpmHeaders } from './rpmdb-util.js';
import { installedBlobs, writeRpmdbSqlite } from '../src/install/rpmdb/sqlite.js';
import { HeaderBlob, RPMTAG, installedHeaderBlob } from '../src/install/rpmdb/header-blob.js';
import { RPMDB_INDEXES, richDepNames } from '../src/install/rpmdb/index-keys.js';
import { installRpmdb, targetDbPath } from '../src/install/rpmdb/index.js';
import { StagingTree, BufferContent } from '../src/tree/tree.js';
import { ContentStore, readAll } from '../src/tree/content-store.js';

for (const t of ['rpm', 'rpm2cpio', 'cpio']) requireTool(t);

const FIX = join(SHARED, 'fixtures/rpms');
const work = mkdtempSync(join(tmpdir(), 'ingot-rpmdb-'));
const DBPATH = '/usr/lib/sysimage/rpm';

/** Varied real packages: signed/unsigned, rich and weak deps, triggers, file triggers, i18n, non-UTF-8, v6, relocatable, hard links, ghosts. */
const ALL = [
  'rpm/hello-2.0-1.x86_64.rpm', 'rpm/capstest-1.0-1.noarch.rpm', 'rpm/hlinktest-1.0-1.noarch.rpm', 'rpm/foo-1.0-1.noarch.rpm',
  'rpm/imatest-1.0-1.fc34.noarch.rpm', 'rpmlint/fuse-common-3.10.2-5.el8.x86_64.rpm', 'rpmlint/autofs-5.0.7-28.fc19.i686.rpm',
  'rpmlint/ngircd-22-2.fc22.x86_64.rpm', 'createrepo_c/Archer-3.4.5-6.x86_64.rpm', 'createrepo_c/Rimmer-1.0.2-2.x86_64.rpm',
  'rpm-rs/RPMS/v6/rpm-rich-deps-1.0-1.noarch.rpm', 'rpm-rs/RPMS/v6/rpm-scriptlets-1.0-1.noarch.rpm',
  'rpm-rs/test_assets/fixture_packages/rpm-feature-coverage-2.3.4-5.el8.x86_64.rpm', 'rpmlint/packageand-0-0.x86_64.rpm',
  'dotnet-packaging/tomcat-8.0.44-1.fc27.noarch.rpm', 'go-rpmutils/crypto-policies-20210617-1.gitc776d3e.el8.noarch.rpm',
  'rpmlint/python311-pytest-xprocess-0.23.0-2.4.noarch.rpm', 'createrepo_c/icedax-1.1.10-2.fc14.i686.rpm',
  'rpmlint/non-utf8-1.0-1.el5.centos.x86_64.rpm', 'createrepo_c/balicek-iso88591-1.1.1-1.x86_64.rpm',
  'koji/test-deps-1-1.fc24.x86_64.rpm', 'rpm-rs/RPMS/v4/rpm-basic-2.3.4-5.el9.noarch.rpm', 'rpm-rs/RPMS/v6/rpm-file-attrs-1.0-1.noarch.rpm',
  'rpm-rs/RPMS/v6/rpm-i18n-1.0-1.noarch.rpm', 'rpmlint/xrootd-devel-5.5.4-1.fc37.x86_64.rpm',
];
/** Root-owned, capability-free packages whose payloads cpio can lay down exactly (for rpm -Va). */
const VERIFY = [
  'rpm/hello-2.0-1.x86_64.rpm', 'rpm/hlinktest-1.0-1.noarch.rpm', 'rpm/foo-1.0-1.noarch.rpm', 'rpmlint/fuse-common-3.10.2-5.el8.x86_64.rpm',
  'go-rpmutils/crypto-policies-20210617-1.gitc776d3e.el8.noarch.rpm', 'rpmlint/xrootd-devel-5.5.4-1.fc37.x86_64.rpm',
  'rpm-rs/RPMS/v4/rpm-basic-2.3.4-5.el9.noarch.rpm', 'createrepo_c/Archer-3.4.5-6.x86_64.rpm', 'createrepo_c/Rimmer-1.0.2-2.x86_64.rpm',
];

const RPM_FLAGS = ['--nodeps', '--noscripts', '--notriggers', '--ignorearch', '--ignoreos', '--replacefiles', '--nosignature', '--nodigest'];
const rpm = (args: string[]): { code: number; out: string; err: string } => {
  const r = spawnSync('rpm', args, { encoding: 'utf8', maxBuffer: 1 << 26 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
};
const nvra = (file: string): string => rpm(['-qp', '--nosignature', '--nodigest', '--qf', '%{NVRA}\\n', file]).out.trim();

/** Rows of every table of an rpmdb, as comparable strings. */
function dumpDb(path: string): Record<string, string[]> {
  const db = new Database(path, { readonly: true });
  try {
    const out: Record<string, string[]> = {};
    out.Packages = (db.prepare("SELECT hnum, blob FROM 'Packages' ORDER BY hnum").all() as { hnum: number; blob: Buffer }[])
      .map((r) => `${r.hnum} ${r.blob.toString('hex')}`);
    for (const t of RPMDB_INDEXES) {
      out[t.table] = (db.prepare(`SELECT hex(key) k, typeof(key) ty, hnum, idx FROM '${t.table}'`).all() as { k: string; ty: string; hnum: number; idx: number }[])
        .map((r) => `${r.k} ${r.ty} ${r.hnum} ${r.idx}`).sort();
    }
    out.schema = (db.prepare("SELECT sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name").all() as { sql: string }[]).map((r) => r.sql);
    return out;
  } finally {
    db.close();
  }
}

test('blobs and index tables equal those rpm --justdb writes for the same packages', () => {
  const root = join(work, 'rpm-root');
  mkdirSync(root);
  const r = rpm(['--root', root, '--dbpath', DBPATH, '--justdb', '-i', ...RPM_FLAGS, ...ALL.map((p) => join(FIX, p))]);
  assert.is(r.code, 0, r.err);
  const theirsPath = join(root, DBPATH, 'rpmdb.sqlite');
  const theirs = dumpDb(theirsPath);
  // rpm's own transaction order and install time, so the comparison can be exact.
  const db = new Database(theirsPath, { readonly: true });
  const order = (db.prepare("SELECT hnum, blob FROM 'Packages' ORDER BY hnum").all() as { hnum: number; blob: Buffer }[]).map((row) => new HeaderBlob(row.blob));
  db.close();
  const headers = ALL.map((p) => ({ p, ...readRpmHeaders(join(FIX, p)) }));
  const digest = (h: HeaderBlob): string | undefined => h.string(RPMTAG.SHA256HEADER) ?? h.string(RPMTAG.SHA1HEADER);
  const blobs = order.map((h) => {
    const m = headers.find((x) => digest(new HeaderBlob(installedHeaderBlob(x.main, x.signature, { installTime: 0, color: 3 }))) === digest(h)
      && new HeaderBlob(x.main).string(RPMTAG.NAME) === h.string(RPMTAG.NAME));
    assert.ok(m, `package for ${h.string(RPMTAG.NAME)}`);
    // rpm stamps each package with time(NULL) when it is added and the transaction id once; reuse both.
    const installTime = h.numbers(RPMTAG.INSTALLTIME)[0]!, tid = h.numbers(RPMTAG.INSTALLTID)[0]!;
    return installedBlobs([{ main: m.main, signature: m.signature, name: m.p }], { installTime, tid, arch: 'x86_64' })[0]!;
  });
  assert.is(blobs.length, ALL.length);
  const mine = join(work, 'mine.sqlite');
  writeRpmdbSqlite(mine, blobs);
  const ours = dumpDb(mine);
  assert.equal(ours.schema, theirs.schema, 'schema');
  for (const k of Object.keys(theirs)) {
    if (k === 'schema') continue;
    assert.is(ours[k]!.length, theirs[k]!.length, `${k} row count`);
    const bad = theirs[k]!.findIndex((row, i) => row !== ours[k]![i]);
    assert.is(bad, -1, `table ${k}: first differing row ${bad}: ${ours[k]![bad]?.slice(0, 200)} vs ${theirs[k]![bad]?.slice(0, 200)}`);
  }
  assert.ok(theirs.Requirename!.some((r) => r.startsWith(Buffer.from('(').toString('hex'))), 'rich requires were exercised');
  assert.ok(theirs.Filetriggername!.length > 0 && theirs.Triggername!.length > 0, 'triggers were exercised');
});

const verifyRoot = join(work, 'verify-root');

test('rpm -qa lists exactly the packages; -qi and -ql read them', () => {
  mkdirSync(join(verifyRoot, DBPATH), { recursive: true });
  const pkgs = VERIFY.map((p) => ({ ...readRpmHeaders(join(FIX, p)), name: p }));
  writeRpmdbSqlite(join(verifyRoot, DBPATH, 'rpmdb.sqlite'), installedBlobs(pkgs, { installTime: 1_700_000_000, arch: 'x86_64' }));
  const qa = rpm(['--root', verifyRoot, '--dbpath', DBPATH, '-qa', '--qf', '%{NVRA}\\n']);
  assert.is(qa.err, '');
  assert.equal(qa.out.trim().split('\n').sort(), VERIFY.map((p) => nvra(join(FIX, p))).sort());
  const qi = rpm(['--root', verifyRoot, '--dbpath', DBPATH, '-qi', 'fuse-common']);
  assert.match(qi.out, /Install Date: .*2023/);
  assert.match(qi.out, /Name\s+: fuse-common/);
  const ql = rpm(['--root', verifyRoot, '--dbpath', DBPATH, '-ql', 'hlinktest']);
  const qlp = rpm(['-qlp', '--nosignature', '--nodigest', join(FIX, 'rpm/hlinktest-1.0-1.noarch.rpm')]);
  assert.is(ql.out, qlp.out);
  const whatprovides = rpm(['--root', verifyRoot, '--dbpath', DBPATH, '-qf', '/etc/fuse.conf']);
  assert.match(whatprovides.out, /^fuse-common-3\.10\.2-5\.el8\.x86_64$/m, 'Basenames/Dirnames lookups work');
});

test('rpm -Va reports nothing after the payloads are extracted', () => {
  for (const p of VERIFY) {
    execFileSync('sh', ['-c', `rpm2cpio "$1" | (cd "$2" && cpio -idmu --quiet --no-absolute-filenames)`, 'x', join(FIX, p), verifyRoot]);
  }
  const v = rpm(['--root', verifyRoot, '--dbpath', DBPATH, '-Va', '--nodeps', '--noscripts']);
  // %ghost files are not in payloads; rpm -V lists them only with -v, so any output is a real finding.
  assert.is(v.out, '', v.out);
  assert.is(v.code, 0, v.err);
  // A deliberate change is reported (the check can fail).
  execFileSync('sh', ['-c', `echo changed >> "$1/etc/fuse.conf"`, 'x', verifyRoot]);
  const v2 = rpm(['--root', verifyRoot, '--dbpath', DBPATH, '-V', '--nodeps', '--noscripts', 'fuse-common']);
  assert.match(v2.out, /S\.5.*\/etc\/fuse\.conf/);
});

test('rich dependency index names follow rpm (if/else negation, rpmlib filtered)', () => {
  const names = (s: string): string[] => richDepNames(Buffer.from(s)).map((b) => b.toString());
  // rpm sorts the prefixed names with strcmp: ' ' (plain) before '!' (negated).
  assert.equal(names('(a if b else c)'), ['a', 'b', 'c', '!b']);
  assert.equal(names('(foo >= 1.0 and (bar or rpmlib(X) = 1))'), ['bar', 'foo']);
  assert.equal(names('(perl(Foo::Bar) unless baz)'), ['perl(Foo::Bar)', '!baz']);
  assert.equal(names('(broken'), []);
});

test('headers without an immutable region and corrupt headers are typed errors', () => {
  const v3 = readRpmHeaders(join(FIX, 'rpm/hello-1.0-1.x86_64.rpm-v3'));
  assert.throws(() => installedHeaderBlob(v3.main, v3.signature, { installTime: 0, color: 0 }), /immutable region/);
  const good = readRpmHeaders(join(FIX, 'rpm/foo-1.0-1.noarch.rpm')).main;
  const short = good.subarray(0, good.length - 10);
  assert.throws(() => new HeaderBlob(short), (e: Error) => e.name === 'RpmHeaderError' && /truncated/.test(e.message));
  const badIl = Buffer.from(good); badIl.writeUInt32BE(0x7fffffff, 8);
  assert.throws(() => new HeaderBlob(badIl), /out of range/);
});

test('%_dbpath comes from the target macros (last definition wins); installRpmdb puts a readable db there', async () => {
  const tree = new StagingTree();
  assert.is(await targetDbPath(tree), '/var/lib/rpm', 'no macros, no sysimage: legacy path');
  tree.mkdirp('/usr/lib/sysimage');
  assert.is(await targetDbPath(tree), '/usr/lib/sysimage/rpm');
  tree.addFile('/usr/lib/rpm/macros', BufferContent.of('%_var /var\n%_dbpath\t\t%{_var}/lib/rpm\n%_usr /usr\n'));
  assert.is(await targetDbPath(tree), '/var/lib/rpm');
  tree.addFile('/usr/lib/rpm/macros.d/macros.sysimage', BufferContent.of('# moved\n%_dbpath %{_usr}/lib/sysimage/rpm\n'));
  assert.is(await targetDbPath(tree), '/usr/lib/sysimage/rpm');
  // Fedora keeps /var/lib/rpm as a symlink to the sysimage directory.
  tree.symlink('/var/lib/rpm', '../../usr/lib/sysimage/rpm');
  const store = ContentStore.create();
  try {
    const pkgs = ['rpm/foo-1.0-1.noarch.rpm', 'rpm/hlinktest-1.0-1.noarch.rpm'].map((p) => ({ ...readRpmHeaders(join(FIX, p)), name: p }));
    const r = await installRpmdb(tree, pkgs, { store, installTime: 1_700_000_000, arch: 'x86_64' });
    assert.is(r.dbPath, '/usr/lib/sysimage/rpm');
    const root = join(work, 'tree-root');
    mkdirSync(join(root, DBPATH), { recursive: true });
    writeFileSync(join(root, DBPATH, 'rpmdb.sqlite'), await readAll(tree.lookup('/var/lib/rpm/rpmdb.sqlite')!.content!));
    const qa = rpm(['--root', root, '--dbpath', DBPATH, '-qa', '--qf', '%{NVRA}\\n']);
    assert.equal(qa.out.trim().split('\n').sort(), ['foo-1.0-1.noarch', 'hlinktest-1.0-1.noarch']);
    assert.ok(tree.lookup('/usr/lib/sysimage/rpm/.rpm.lock'));
  } finally {
    await store.dispose();
  }
});

test('fuzz: corrupted headers give RpmHeaderError or a valid blob, never another error', () => {
  const { main, signature } = readRpmHeaders(join(FIX, 'rpmlint/fuse-common-3.10.2-5.el8.x86_64.rpm'));
  let seed = 12345;
  const rnd = (n: number): number => { seed = (seed * 1103515245 + 12345) >>> 0; return seed % n; };
  const runs = process.env.INGOT_LONG ? 20000 : 1500;
  let typed = 0;
  for (let i = 0; i < runs; i++) {
    const m = Buffer.from(main);
    for (let k = 1 + rnd(4); k > 0; k--) m[8 + rnd(Math.min(m.length - 8, 8 + 16 * 64))] = rnd(256);
    try {
      const h = new HeaderBlob(m);
      for (const e of h.entries) {
        if (e.type >= 6) h.strings(e.tag); else if (e.type >= 1 && e.type <= 5) h.numbers(e.tag); else h.raw(e.tag);
      }
      installedHeaderBlob(m, signature, { installTime: 1, color: 3 });
    } catch (e) {
      assert.is((e as Error).name, 'RpmHeaderError', `run ${i}: ${(e as Error).stack}`);
      typed++;
    }
  }
  assert.ok(typed > runs / 10, `corruptions detected: ${typed}`);
});

test.after(() => rmSync(work, { recursive: true, force: true }));
test.run();
