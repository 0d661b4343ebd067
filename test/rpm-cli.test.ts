/**
 * The `ingot rpm` commands: JSON shapes (the objects the oracle tests compare
 * with rpm are exactly what the CLI prints), text output, exit codes
 * (0 ok, 1 failed, 2 usage) and one-line errors.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ingot } from './helpers/cli.js';
import { RPMS } from './helpers/rpm-oracle.js';
import { openRpm } from '../src/rpm/index.js';
import { infoJson, fileJson } from '../src/cli/rpm.js';

const work = mkdtempSync(join(tmpdir(), 'ingot-rpm-cli-'));
const HELLO = join(RPMS, 'rpm/hello-2.0-1.x86_64-signed.rpm');

test('rpm info --json prints the documented object (same as the library object the oracle checks)', async () => {
  const r = ingot(['rpm', 'info', HELLO, '--json']);
  assert.is(r.code, 0, r.stderr);
  const got = JSON.parse(r.stdout) as Record<string, unknown>;
  for (const k of ['name', 'epoch', 'version', 'release', 'arch', 'sourcerpm', 'summary', 'license', 'buildtime', 'payloadCompressor',
    'payloadFormat', 'requires', 'provides', 'conflicts', 'obsoletes', 'recommends', 'suggests', 'supplements', 'enhances', 'scripts', 'triggers', 'signatures']) {
    assert.ok(k in got, `has ${k}`);
  }
  assert.equal(got, JSON.parse(JSON.stringify(await infoJson(await openRpm(HELLO)))));
  assert.is(got.epoch, null);
  assert.equal((got.signatures as { keyId: string; algorithm: string }[]).map((s) => [s.keyId, s.algorithm]), [
    ['4344591e1964c5fc', 'RSA/SHA256'], ['4344591e1964c5fc', 'RSA/SHA256'],
  ]);
});

test('rpm ls --json prints one object per file; plain ls is an ls -l listing', async () => {
  const r = ingot(['rpm', 'ls', HELLO, '--json']);
  assert.is(r.code, 0, r.stderr);
  const got = JSON.parse(r.stdout) as Record<string, unknown>[];
  assert.equal(got, JSON.parse(JSON.stringify((await openRpm(HELLO)).files.map(fileJson))));
  for (const k of ['path', 'mode', 'user', 'group', 'size', 'mtime', 'digest', 'digestAlgo', 'linkTo', 'flags', 'rdev', 'inode', 'caps']) assert.ok(k in got[0]!, k);
  const t = ingot(['rpm', 'ls', HELLO]);
  assert.match(t.stdout, /^-rwxr-x--x root +root +7120 \S+ \S+ \/usr\/bin\/hello$/m);
});

test('rpm extract writes the tree; refuses a non-empty destination; a broken package leaves nothing', () => {
  const dest = join(work, 'x');
  const r = ingot(['rpm', 'extract', HELLO, dest]);
  assert.is(r.code, 0, r.stderr);
  assert.ok(readFileSync(join(dest, 'usr/share/doc/hello-2.0/FAQ'), 'utf8').length > 0);
  const again = ingot(['rpm', 'extract', HELLO, dest]);
  assert.is(again.code, 1);
  assert.match(again.stderr, /not empty/);
  const bad = join(work, 'bad');
  const broken = ingot(['rpm', 'extract', join(RPMS, 'rpm/hello-2.0-1.x86_64-corrupted.rpm'), bad]);
  assert.is(broken.code, 1);
  assert.not.ok(existsSync(bad));
});

test('errors are one line with file and offset; usage errors exit 2', () => {
  const r = ingot(['rpm', 'info', join(RPMS, 'scancode-toolkit/broken.rpm')]);
  assert.is(r.code, 1);
  assert.is(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, /broken\.rpm, offset 78 .*illegal signature type/);
  const notRpm = join(work, 'not.rpm');
  writeFileSync(notRpm, 'hello');
  assert.match(ingot(['rpm', 'info', notRpm]).stderr, /too short for an RPM lead/);
  assert.is(ingot(['rpm', 'info']).code, 2);
  assert.is(ingot(['rpm', 'bogus']).code, 2);
  const h = ingot(['rpm', '--help']);
  assert.is(h.code, 0);
  for (const c of ['info', 'ls', 'extract', 'verify']) assert.match(h.stdout, new RegExp(`\\b${c}\\b`));
});

test.after(() => rmSync(work, { recursive: true, force: true }));
test.run();
