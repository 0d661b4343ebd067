/**
 * Bad input: malformed XML, missing repomd entries, checksum mismatches,
 * unknown compression, unsatisfiable requests and unknown groups all give
 * typed errors that name the repository, the file and the element.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cpSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync, gunzipSync } from 'node:zlib';
import { createHash } from 'node:crypto';
import { loadRepos, RepoMetadataError, ChecksumMismatchError, CompressionError } from '../src/repo/index.js';
import { resolve, SelectionError } from '../src/solve/index.js';
import { UnsatisfiableError } from '../src/solve/index.js';
import { FIXTURE_REPOS } from './solve-fixtures.js';

const work = mkdtempSync(join(tmpdir(), 'ingot-repoerr-'));
let n = 0;

/** A writable copy of katello-zoo with primary.xml.gz rewritten by `edit` (repomd updated to match unless told not to). */
function zooWith(edit: (xml: string) => string, opts: { fixRepomd?: boolean; primaryName?: string; compress?: (b: Buffer) => Buffer } = {}): string {
  const dir = join(work, `zoo${n++}`);
  cpSync(join(FIXTURE_REPOS, 'katello-zoo'), dir, { recursive: true });
  const rd = join(dir, 'repodata');
  const prim = readdirSync(rd).find((f) => f.endsWith('-primary.xml.gz'))!;
  const xml = edit(gunzipSync(readFileSync(join(rd, prim))).toString('utf8'));
  const data = (opts.compress ?? gzipSync)(Buffer.from(xml));
  const newName = opts.primaryName ?? prim;
  writeFileSync(join(rd, newName), data);
  if (newName !== prim) rmSync(join(rd, prim));
  let repomd = readFileSync(join(rd, 'repomd.xml'), 'utf8');
  const oldSum = prim.split('-')[0];
  if (opts.fixRepomd !== false) repomd = repomd.replace(oldSum, createHash('sha256').update(data).digest('hex')).replace(/(<data type="primary">[\s\S]*?<size>)\d+/, `$1${data.length}`);
  repomd = repomd.replace(`repodata/${prim}`, `repodata/${newName}`);
  writeFileSync(join(rd, 'repomd.xml'), repomd);
  return dir;
}

test('malformed primary.xml: RepoMetadataError naming repo, file, line and element', async () => {
  const dir = zooWith((x) => x.replace('<name>lion</name>', '<name>lion</nam>'));
  const e = await loadRepos([{ id: 'zoo', baseurl: dir }]).catch((x) => x);
  assert.instance(e, RepoMetadataError);
  assert.match(e.message, /repo zoo/);
  assert.match(e.message, /primary\.xml\.gz:\d+/);
  assert.match(e.message, /field (name|package)/, e.message);
});

test('truncated primary.xml and a package without <location> are errors', async () => {
  const t = await loadRepos([{ id: 'zoo', baseurl: zooWith((x) => x.slice(0, x.length >> 1)) }]).catch((x) => x);
  assert.instance(t, RepoMetadataError);
  const l = await loadRepos([{ id: 'zoo', baseurl: zooWith((x) => x.replace('<location href="lion-0.3-0.8.noarch.rpm"/>', '')) }]).catch((x) => x);
  assert.instance(l, RepoMetadataError);
  assert.match(l.message, /lion without <location>/);
});

test('missing repomd entry for primary', async () => {
  const dir = zooWith((x) => x);
  const p = join(dir, 'repodata/repomd.xml');
  writeFileSync(p, readFileSync(p, 'utf8').replace('type="primary"', 'type="primary-gone"'));
  const e = await loadRepos([{ id: 'zoo', baseurl: dir }]).catch((x) => x);
  assert.instance(e, RepoMetadataError);
  assert.match(e.message, /repomd\.xml/);
  assert.match(e.message, /data\[primary\]/);
});

test('checksum mismatch of a local metadata file', async () => {
  const dir = zooWith((x) => x.replace('Fake provide', 'Fake  provide'), { fixRepomd: false });
  const e = await loadRepos([{ id: 'zoo', baseurl: dir }]).catch((x) => x);
  assert.instance(e, ChecksumMismatchError);
  assert.match(e.message, /repo zoo/);
  assert.match(e.message, /primary\.xml\.gz/);
});

test('unknown compression and a mislabelled file', async () => {
  const lz = zooWith((x) => x, { primaryName: 'primary.xml.lz4' });
  const e = await loadRepos([{ id: 'zoo', baseurl: lz }]).catch((x) => x);
  assert.instance(e, CompressionError);
  assert.match(e.message, /lz4/);
  const mis = zooWith((x) => x, { primaryName: 'primary.xml.zst' });
  const e2 = await loadRepos([{ id: 'zoo', baseurl: mis }]).catch((x) => x);
  assert.instance(e2, CompressionError);
  assert.match(e2.message, /zst/);
});

test('xz, zstd and bzip2 primaries load like gzip (decoders checked against the CLI tools)', async () => {
  const { execFileSync } = await import('node:child_process');
  const { requireTool } = await import('./helpers/tools.js');
  for (const [tool, ext] of [['xz', 'xz'], ['zstd', 'zst'], ['bzip2', 'bz2']] as const) {
    requireTool(tool);
    const dir = zooWith((x) => x, { primaryName: `primary.xml.${ext}`, compress: (b) => execFileSync(tool, ['-c'], { input: b }) });
    const set = await loadRepos([{ id: 'zoo', baseurl: dir }]);
    assert.is(set.pool.count, 19, ext);
  }
});

test('unsatisfiable request: the explanation is a chain; unknown group and no match are SelectionErrors', async () => {
  const dir = zooWith((x) => {
    const at = x.indexOf('</format>', x.indexOf('<name>lion</name>'));
    return `${x.slice(0, at)}<rpm:requires><rpm:entry name="zebra-food"/></rpm:requires>${x.slice(at)}`;
  });
  const set = await loadRepos([{ id: 'zoo', baseurl: dir }]);
  const e = await resolve(set, { specs: ['lion'] }).catch((x) => x);
  assert.instance(e, UnsatisfiableError);
  assert.match(e.message, /nothing provides zebra-food needed by lion-0\.3-0\.8\.noarch/);
  const g = await resolve(set, { specs: ['@no-such-group'] }).catch((x) => x);
  assert.instance(g, SelectionError);
  assert.match(g.message, /no-such-group/);
  const m = await resolve(set, { specs: ['no-such-package'] }).catch((x) => x);
  assert.instance(m, SelectionError);
  assert.is(m.code, 'NO_MATCH');
});

test.after(() => rmSync(work, { recursive: true, force: true }));
void renameSync;
test.run();
