// Reproducibility in every output format: the same spec built twice with the
// same SOURCE_DATE_EPOCH, in different directories, at different wall-clock
// times (faketime), time zones, umasks, CPU sets (taskset: other default
// encoder thread counts) and package caches, gives byte-identical files —
// sha256sum of every image, the SBOM, the manifest and CHECKSUM. The build
// report differs only in its stage timings and absolute output paths.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WRITABLE } from '../formats/index.js';
import { requireTool } from './helpers/tools.js';
import { runIngot, sha256, writeSpec, type RunOptions } from './provenance-fixture.js';

const work = mkdtempSync(join(tmpdir(), 'ingot-repro-'));
const EPOCH = '1600000000';
// INGOT_LONG=1: the kernel package too (a ~110 MiB-data image instead of ~3 MiB; several minutes).
const spec = writeSpec(work, 'repro', { kernel: process.env.INGOT_LONG === '1' });

// Every format ingot writes (formats/index.ts WRITABLE), appliance in a build of its own: it is NAME.tar.gz too.
const FORMATS = [...WRITABLE];

const sideA: RunOptions = { env: { SOURCE_DATE_EPOCH: EPOCH, TZ: 'UTC' }, umask: '022' };
const sideB: RunOptions = {
  env: { SOURCE_DATE_EPOCH: EPOCH, TZ: 'Pacific/Kiritimati', LANG: 'de_DE.UTF-8' }, umask: '077',
  fakeTime: '2031-07-04 17:42:09', cpus: '0',
};

function build(dir: string, formats: string[], o: RunOptions, cache: string, specPath: string | null = spec): void {
  const r = runIngot(['build', ...(specPath ? [specPath] : ['--no-boot-test']), '-o', dir, '--format', formats.join(','), '--cache-dir', cache, '-q'], o);
  assert.is(r.code, 0, r.stderr);
}

interface Report { timings: Record<string, number>; outputs: { path: string }[]; bootTests: { seconds: number }[]; [k: string]: unknown }

function stripVolatile(text: string): Report {
  const r = JSON.parse(text) as Report;
  r.timings = {};
  for (const o of r.outputs) o.path = o.path.replace(/^.*\//, '');
  for (const t of r.bootTests) t.seconds = 0;
  return r;
}

function compareDirs(a: string, b: string): string[] {
  const files = readdirSync(a).sort();
  assert.equal(readdirSync(b).sort(), files);
  for (const f of files) {
    if (f.endsWith('.report.json')) {
      assert.equal(stripVolatile(readFileSync(join(b, f), 'utf8')), stripVolatile(readFileSync(join(a, f), 'utf8')), f);
    } else {
      assert.is(sha256(join(b, f)), sha256(join(a, f)), `${f} differs between the two builds`);
    }
  }
  return files;
}

test('every output format, the SBOM, manifest and CHECKSUM are byte-identical across two differently-run builds', () => {
  for (const t of ['faketime', 'sha256sum']) requireTool(t);
  requireTool('taskset', 'util-linux');
  const a = join(work, 'a');
  const b = join(work, 'some', 'other', 'place', 'b');
  build(a, FORMATS, sideA, join(work, 'cache-a'));
  build(b, FORMATS, sideB, join(work, 'cache-b'));
  const files = compareDirs(a, b);
  // Each format really was written (the comparison covered them all).
  for (const ext of ['raw', 'qcow2', 'vhd', 'vmdk', 'ova', 'raw.xz', 'raw.gz', 'raw.zst', 'tar.gz', 'tar.xz']) {
    assert.ok(files.includes(`repro.${ext}`), `repro.${ext} written`);
  }
  for (const f of ['repro.cdx.json', 'repro.manifest.json', 'CHECKSUM']) assert.ok(files.includes(f), f);
  // CHECKSUM covers all ten images and sha256sum -c accepts it.
  const c = spawnSync('sha256sum', ['-c', 'CHECKSUM'], { cwd: b, encoding: 'utf8' });
  assert.is(c.status, 0, c.stdout + c.stderr);
  assert.is(c.stdout.trim().split('\n').filter((l) => l.endsWith(': OK')).length, 10);
  // The wall clock of side B was 2031: no file carries it.
  const times = stripVolatile(readFileSync(join(b, 'repro.report.json'), 'utf8'));
  assert.is((times as unknown as { sourceDateEpoch: number }).sourceDateEpoch, Number(EPOCH));
});

test('the appliance bundle is byte-identical across the same two builds', () => {
  const a = join(work, 'app-a');
  const b = join(work, 'elsewhere', 'app-b');
  build(a, ['appliance'], sideA, join(work, 'cache-a'));
  build(b, ['appliance'], sideB, join(work, 'cache-b'));
  assert.ok(compareDirs(a, b).includes('repro.tar.gz'));
});

test('the bootable default image (GRUB BIOS+UEFI, kernel, initramfs) is byte-identical across the two builds', () => {
  const a = join(work, 'default-a');
  const b = join(work, 'yet', 'another', 'default-b');
  build(a, ['raw'], sideA, join(work, 'cache-a'), null);
  build(b, ['raw'], sideB, join(work, 'cache-b'), null);
  assert.ok(compareDirs(a, b).includes('ingot-default.raw'));
});

test('a different SOURCE_DATE_EPOCH changes the outputs (the comparison can fail)', () => {
  const c = join(work, 'c');
  build(c, ['raw', 'ova'], { env: { SOURCE_DATE_EPOCH: String(Number(EPOCH) + 86400) } }, join(work, 'cache-a'));
  assert.is.not(sha256(join(c, 'repro.raw')), sha256(join(work, 'a', 'repro.raw')));
  assert.is.not(sha256(join(c, 'repro.ova')), sha256(join(work, 'a', 'repro.ova')));
  assert.is.not(sha256(join(c, 'repro.cdx.json')), sha256(join(work, 'a', 'repro.cdx.json')));
});

test.after(() => rmSync(work, { recursive: true, force: true }));
test.run();
