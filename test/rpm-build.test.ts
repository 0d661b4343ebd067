/**
 * rpmbuild-made packages for what the corpus lacks (every compressor, hard
 * links, caps, device nodes, odd names incl. a newline), checked with the same
 * oracles as the corpus: rpm -qp --qf for info/ls, rpm2cpio | cpio -idm for
 * extraction, rpm -K for digests.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openRpm, extractRpm, verifyRpm } from '../src/rpm/index.js';
import { infoJson, fileJson } from '../src/cli/rpm.js';
import { compareFiles, compareInfo, rpmAnswers } from './helpers/rpm-compare.js';
import { compareTrees, cpioExtract, isRoot, linkGroups, snapshot } from './helpers/rpm-tree.js';
import { buildTestPackages, PAYLOADS } from './helpers/rpm-build.js';

const work = mkdtempSync(join(tmpdir(), 'ingot-rpm-build-'));
const pkgs = buildTestPackages(join(work, 'build'));

async function oracle(file: string, label: string): Promise<void> {
  const pkg = await openRpm(file);
  const answers = rpmAnswers(file);
  const d = [...compareInfo(answers, await infoJson(pkg)), ...compareFiles(answers, pkg.files.map(fileJson))];
  assert.equal(d, [], `${label}: info/ls vs rpm`);
  const a = join(work, `${label}-cpio`);
  const b = join(work, `${label}-ingot`);
  mkdirSync(a);
  const c = cpioExtract(file, a);
  assert.ok(c.ok, `cpio: ${c.stderr}`);
  await extractRpm(file, b);
  const mine = snapshot(b);
  assert.equal(compareTrees(mine, snapshot(a), { owners: isRoot }), [], `${label}: extraction vs cpio`);
  assert.equal(linkGroups(mine), [['opt/t/h1', 'opt/t/h2', 'opt/t/h3']], 'one hard-link set');
  rmSync(a, { recursive: true }); rmSync(b, { recursive: true });
}

for (const [mode, compressor] of Object.entries(PAYLOADS)) {
  test(`rpmbuild payload ${mode}: detected as ${compressor}; info, ls, extract agree with rpm and cpio`, async () => {
    const file = pkgs[mode]!;
    const pkg = await openRpm(file);
    assert.is(pkg.compression, compressor);
    await oracle(file, mode);
    const rep = await verifyRpm(file);
    assert.ok(rep.ok, JSON.stringify(rep.digests));
    const k = spawnSync('rpm', ['-K', file], { encoding: 'utf8' });
    assert.is(k.status, 0, 'rpm -K agrees the digests are OK');
  });
}

test('caps, set-id, devices, odd names and scriptlets are all read (non-vacuous checks)', async () => {
  const pkg = await openRpm(pkgs['w9.gzdio']!);
  const by = new Map(pkg.files.map((f) => [f.path, f]));
  assert.is(by.get('/opt/t/capped')!.caps, 'cap_net_raw=ep');
  assert.is(by.get('/opt/t/suid')!.mode & 0o7777, 0o4755);
  assert.is(by.get('/opt/t/devnull')!.rdev, 0x0103);
  assert.ok(by.has('/opt/t/ünïcødé-ファイル'));
  assert.ok(by.has('/opt/t/with space & (parens)'));
  const info = pkg.info;
  assert.is(info.epoch, 3);
  assert.is(info.scripts.postun!.interpreter, '<lua>');
  assert.is(info.scripts.pre!.interpreter, '/bin/sh');
  assert.is(info.triggers[0]!.conditions[0]!.name, 'bash');
  assert.is(info.fileTriggers[0]!.conditions[0]!.name, '/opt');
  assert.ok(info.requires.some((d) => d.name === '(foo >= 1.0 or bar)'));
  assert.ok(info.requires.some((d) => d.name === '/bin/sh' && (d.flags & (1 << 9)) !== 0), 'Requires(pre) keeps its context bit');
});

test('a file name with a newline (patched in, same length: rpmbuild refuses such names) reads and extracts as rpm2cpio | cpio does', async () => {
  const src = readFileSync(pkgs['w.ufdio']!);
  const from = Buffer.from('new@line');
  const to = Buffer.from('new\nline');
  let n = 0;
  for (let i = src.indexOf(from); i >= 0; i = src.indexOf(from, i + 1)) { to.copy(src, i); n++; }
  assert.ok(n >= 2, 'name patched in header and payload');
  const file = join(work, 'newline.rpm');
  writeFileSync(file, src);
  const pkg = await openRpm(file);
  assert.ok(pkg.files.some((f) => f.path === '/opt/t/new\nline'));
  await oracle(file, 'newline');
});

test('extraction through worker-thread decoding (shared slots, transient chunks) agrees with rpm2cpio | cpio for every compressor', async () => {
  process.env.INGOT_RPM_WORKERS = '1';
  try {
    for (const mode of Object.keys(PAYLOADS)) await oracle(pkgs[mode]!, `worker-${mode}`);
  } finally { delete process.env.INGOT_RPM_WORKERS; }
});

test('worker-thread decoding (INGOT_RPM_WORKERS=1) yields the same entries and bytes as in-process decoding', async () => {
  const digest = async () => {
    const out: string[] = [];
    for (const mode of Object.keys(PAYLOADS)) {
      for await (const e of (await openRpm(pkgs[mode]!)).entries()) {
        const h = createHash('sha256');
        for await (const c of e.content) h.update(c);
        out.push(`${mode} ${e.path} ${e.type} ${h.digest('hex')}`);
      }
    }
    return out;
  };
  const inProcess = await digest();
  process.env.INGOT_RPM_WORKERS = '1';
  try { assert.equal(await digest(), inProcess); } finally { delete process.env.INGOT_RPM_WORKERS; }
});

test.after(() => rmSync(work, { recursive: true, force: true }));
test.run();
