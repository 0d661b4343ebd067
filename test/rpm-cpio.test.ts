/**
 * The payload reader on synthetic streams (the large-file path without
 * writing 4 GiB anywhere) and hostile payloads: corrupt cpio headers, paths
 * escaping the destination with `..` or through a symlink. Each must end in a
 * typed error, and a failed extraction leaves no directory behind.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { payloadEntries, extractRpm, openRpm, type FileInfo } from '../src/rpm/index.js';
import { RpmFormatError } from '../src/rpm/errors.js';
import { IngotError, PathEscapeError } from '../src/errors.js';
import { requireTool } from './helpers/tools.js';

const work = mkdtempSync(join(tmpdir(), 'ingot-rpm-cpio-'));

function file(index: number, path: string, size: number, mode = 0o100644): FileInfo {
  return {
    index, path, rawPath: Buffer.from(path), mode, user: 'root', group: 'root', size, mtime: 1, digest: '', digestAlgo: 'sha256',
    linkTo: '', flags: 0, verifyFlags: 0, rdev: 0, inode: index + 1, device: 1, lang: '', caps: null,
  };
}

const hex8 = (n: number) => n.toString(16).padStart(8, '0');
const pad4 = (n: number) => Buffer.alloc((4 - (n % 4)) % 4);
function newc(name: string, size: number, mode = 0o100644): Buffer {
  const nm = Buffer.from(name + '\0');
  const fields = [1, mode, 0, 0, 1, 0, size, 0, 0, 0, 0, nm.length, 0].map(hex8).join('');
  const h = Buffer.concat([Buffer.from('070701' + fields), nm]);
  return Buffer.concat([h, pad4(h.length)]);
}
const stripped = (index: number) => Buffer.from(`07070X${hex8(index)}\0\0`);
const TRAILER = newc('TRAILER!!!', 0);

test('large-file path: a stripped entry of 5 GiB (64-bit size from the header) streams in bounded memory', async () => {
  const big = 5 * 1024 ** 3 + 3; // not a multiple of 4: exercises the data padding too
  const files = [file(0, '/big', big), file(1, '/small', 3)];
  const chunk = Buffer.alloc(8 << 20);
  async function* source() {
    yield stripped(0);
    for (let left = big; left > 0; left -= chunk.length) yield chunk.subarray(0, Math.min(left, chunk.length));
    yield pad4(big);
    yield Buffer.concat([stripped(1), Buffer.from('hi\n'), pad4(3), TRAILER]);
  }
  const rss0 = process.memoryUsage().rss;
  const seen: [string, number, number][] = [];
  for await (const e of payloadEntries(source(), files)) {
    let n = 0;
    for await (const c of e.content) n += c.length;
    seen.push([e.path, e.size, n]);
  }
  assert.equal(seen, [['/big', big, big], ['/small', 3, 3]]);
  assert.ok(process.memoryUsage().rss - rss0 < 200 << 20, 'memory stays bounded');
});

test('an entry whose content is not consumed is skipped', async () => {
  const files = [file(0, '/a', 5), file(1, '/b', 2)];
  async function* source() { yield Buffer.concat([newc('./a', 5), Buffer.from('hello'), pad4(5), newc('./b', 2), Buffer.from('ok'), pad4(2), TRAILER]); }
  const got: string[] = [];
  for await (const e of payloadEntries(source(), files)) {
    if (e.path === '/b') for await (const c of e.content) got.push(c.toString());
  }
  assert.equal(got, ['ok']);
});

const hostile: [string, Buffer][] = [
  ['bad magic', Buffer.from('070799' + '0'.repeat(200))],
  ['non-hex field', Buffer.concat([Buffer.from('070701' + 'zz'.repeat(52)), Buffer.alloc(64)])],
  ['absurd name size', Buffer.from('070701' + [1, 0o100644, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0x7fffffff, 0].map(hex8).join(''))],
  ['truncated data', Buffer.concat([newc('./a', 1000), Buffer.from('short')])],
  ['no trailer', Buffer.concat([newc('./a', 0)])],
  ['stripped index out of range', Buffer.concat([stripped(7), TRAILER])],
];
for (const [name, bytes] of hostile) {
  test(`corrupt cpio (${name}) → RpmFormatError`, async () => {
    try {
      for await (const e of payloadEntries([bytes], [file(0, '/a', 1000)])) for await (const _ of e.content) { /* drain */ }
      assert.unreachable('accepted');
    } catch (e) {
      assert.instance(e, RpmFormatError, String(e));
    }
  });
}

/** Build an uncompressed package with rpmbuild, then patch same-length names (header and payload alike). */
function patchedPackage(spec: string, from: string, to: string): string {
  requireTool('rpmbuild');
  const dir = mkdtempSync(join(work, 'b-'));
  writeFileSync(join(dir, 'p.spec'), spec);
  const r = spawnSync('rpmbuild', ['-bb', '--quiet', '--define', `_topdir ${dir}/top`, '--define', '_binary_payload w.ufdio',
    '--define', '_rpmfilename p.rpm', join(dir, 'p.spec')], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  const buf = readFileSync(join(dir, 'top/RPMS/p.rpm'));
  const a = Buffer.from(from);
  let n = 0;
  for (let i = buf.indexOf(a); i >= 0; i = buf.indexOf(a, i + 1)) { Buffer.from(to).copy(buf, i); n++; }
  if (n < 2) throw new Error('nothing patched');
  const out = join(dir, 'patched.rpm');
  writeFileSync(out, buf);
  return out;
}

const SPEC = (body: string, files: string) => `Name: esc\nVersion: 1\nRelease: 1\nSummary: s\nLicense: MIT\nBuildArch: noarch\n%description\nd\n%install\n${body}\n%files\n${files}\n`;

test('extraction refuses a path with ".." and leaves nothing behind', async () => {
  const pkg = patchedPackage(SPEC('mkdir -p %{buildroot}/opt/e/zz && echo x > %{buildroot}/opt/e/zz/x', '/opt/e'), '/zz', '/..');
  assert.ok((await openRpm(pkg)).files.some((f) => f.path.includes('/../')));
  const dest = join(work, 'out-dotdot');
  try { await extractRpm(pkg, dest); assert.unreachable('extracted'); } catch (e) { assert.instance(e, PathEscapeError, String(e)); }
  assert.not.ok(existsSync(dest), 'no partial directory');
  assert.not.ok(existsSync(join(work, 'x')) || existsSync(join(work, 'opt')), 'nothing written outside');
});

test('extraction refuses to write through a symlink the package created', async () => {
  const pkg = patchedPackage(SPEC('mkdir -p %{buildroot}/opt/e/linq && echo x > %{buildroot}/opt/e/linq/ingot-escape-probe && ln -s /tmp %{buildroot}/opt/e/link',
    '/opt/e/link\n/opt/e/linq'), 'linq', 'link');
  const dest = join(work, 'out-symlink');
  try { await extractRpm(pkg, dest); assert.unreachable('extracted'); } catch (e) { assert.instance(e, IngotError, String(e)); }
  assert.not.ok(existsSync(dest), 'no partial directory');
  assert.not.ok(existsSync('/tmp/ingot-escape-probe'), 'nothing written through the link');
});

test.after(() => rmSync(work, { recursive: true, force: true }));
test.run();
