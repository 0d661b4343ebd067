/**
 * rpmdb.sqlite for the same packages: ingot's writer vs `rpm --justdb -i` (Debian rpm 4.18), same run.
 * Usage: node --import tsx bench/rpmdb.ts [N copies of the fixture set, default 8]
 * Copies get distinct names by rewriting nothing: each copy is a separate database write, so the
 * figure is per-package cost over len(fixtures) × N packages.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readRpmHeaders } from '../test/rpmdb-util.js';
import { installedBlobs, writeRpmdbSqlite } from '../src/install/rpmdb/sqlite.js';

const FIX = join(import.meta.dirname ?? '.', '..', '..', 'shared', 'fixtures', 'rpms');
const PKGS = [
  'rpm/hello-2.0-1.x86_64.rpm', 'rpm/hlinktest-1.0-1.noarch.rpm', 'rpmlint/fuse-common-3.10.2-5.el8.x86_64.rpm',
  'rpmlint/autofs-5.0.7-28.fc19.i686.rpm', 'rpmlint/ngircd-22-2.fc22.x86_64.rpm', 'dotnet-packaging/tomcat-8.0.44-1.fc27.noarch.rpm',
  'go-rpmutils/crypto-policies-20210617-1.gitc776d3e.el8.noarch.rpm', 'rpmlint/xrootd-devel-5.5.4-1.fc37.x86_64.rpm',
  'rpmfile/hello.rpm', 'createrepo_c/icedax-1.1.10-2.fc14.i686.rpm',
];
const rounds = Number(process.argv[2] ?? 8);
const work = mkdtempSync(join(tmpdir(), 'ingot-bench-rpmdb-'));
try {
  let ours = 0, theirs = 0;
  for (let r = 0; r < rounds; r++) {
    let t = performance.now();
    const pkgs = PKGS.map((p) => ({ ...readRpmHeaders(join(FIX, p)), name: p }));
    writeRpmdbSqlite(join(work, `ours-${r}.sqlite`), installedBlobs(pkgs, { installTime: 1_700_000_000, arch: 'x86_64' }));
    ours += performance.now() - t;
    const root = join(work, `root-${r}`);
    mkdirSync(root);
    t = performance.now();
    const x = spawnSync('rpm', ['--root', root, '--dbpath', '/var/lib/rpm', '--justdb', '-i', '--nodeps', '--noscripts', '--notriggers',
      '--ignorearch', '--ignoreos', '--replacefiles', '--nosignature', '--nodigest', ...PKGS.map((p) => join(FIX, p))], { stdio: 'ignore' });
    theirs += performance.now() - t;
    if (x.status !== 0) throw new Error('rpm --justdb failed');
  }
  console.log(`${PKGS.length} packages × ${rounds} databases: ingot ${(ours / rounds).toFixed(0)} ms/db, rpm --justdb ${(theirs / rounds).toFixed(0)} ms/db, ratio ${(ours / theirs).toFixed(2)}`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
