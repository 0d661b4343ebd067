// Real composes from the fixture repository (2 image types × 2 formats),
// checked by outside tools: coreutils `sha256sum -c` reads CHECKSUM, ajv
// validates images.json against its schema, `qemu-img info` recognises every
// image. Shards 0/2 + 1/2 merged equal the whole compose byte for byte; a
// failing image and an abort leave no partial output.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createHash } from 'node:crypto';
import { Ajv } from 'ajv';
import { fixtureRepo } from '../fixtures/repo.js';
import { compose, ComposeError } from '../src/api.js';
import { AbortedError } from '../src/errors.js';
import { ingot, ROOT } from './helpers/cli.js';
import { requireTool } from './helpers/tools.js';

const work = mkdtempSync(join(tmpdir(), 'ingot-compose-'));
const EPOCH = 1700000000;

const packages = { include: ['ingot-base', 'ingot-marker', 'busybox-static', 'kernel'], core: false, weakDeps: false };
type Image = { name: string; spec: unknown; formats: string[] };

/** A compose of a "generic" GPT/UEFI image (spec file) and an "amazon" (EC2-style) MBR image (inline spec). */
function composeFile(name: string, extra: Image[] = [], only?: string[]): string {
  writeFileSync(join(work, 'generic.json'), JSON.stringify({
    name: 'generic', packages, hostname: 'generic', bootloader: { kind: 'none', firmware: 'uefi' },
    disk: { table: 'gpt', partitions: [{ mount: '/boot/efi', size: '32MiB', fs: 'efi' }, { mount: '/', size: '64MiB', fs: 'ext4', grow: true }] },
  }));
  const images: Image[] = [
    { name: 'generic', spec: 'generic.json', formats: ['qcow2', 'vmdk'] },
    { name: 'amazon', spec: { packages, bootloader: { kind: 'none', firmware: 'bios' }, disk: { table: 'mbr', partitions: [{ mount: '/', size: '80MiB', fs: 'ext4', grow: true }] } }, formats: ['raw', 'vhd'] },
    ...extra,
  ].filter((i) => !only || only.includes(i.name));
  const p = join(work, `${name}.json`);
  writeFileSync(p, JSON.stringify({
    name: 'Ingot-Cloud', version: '1', label: '0.1', arches: ['x86_64'], sourceDateEpoch: EPOCH, seed: 'compose-test',
    repos: [{ name: 'fixtures', baseurl: [fixtureRepo()] }], images,
  }, null, 2));
  return p;
}

/** Every path under `dir` (relative). */
function tree(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d)) {
      const p = join(d, e);
      out.push(relative(dir, p));
      if (statSync(p).isDirectory()) walk(p);
    }
  };
  if (existsSync(dir)) walk(dir);
  return out.sort();
}

/** Temporary or scratch names a finished, failed or aborted compose must not leave. */
function leftovers(dir: string): string[] {
  return tree(dir).filter((p) => /(^|\/)\.|\.tmp$|ingot-store-|ingot-/.test(p));
}

const QEMU_FORMAT: Record<string, string> = { raw: 'raw', qcow2: 'qcow2', vmdk: 'vmdk', vhd: 'vpc' };
let whole = '';
let reference = new Map<string, string>();

test('a compose of 2 image types × 2 formats: sha256sum -c, the images.json schema and qemu-img accept it', () => {
  requireTool('qemu-img');
  whole = join(work, 'whole');
  const r = ingot(['compose', composeFile('compose'), '-o', whole, '--jobs', '2', '--json']);
  assert.is(r.code, 0, r.stderr);
  // Both images use the same 4 packages from one repository: metadata loaded once, each payload decompressed once.
  const { sharing } = JSON.parse(r.stdout) as { sharing: Record<string, number> };
  assert.equal(sharing, { repoLoads: 1, repoHits: 1, fetches: 4, fetchHits: 4, payloadsExtracted: 4, payloadReplays: 4 });
  const sums = spawnSync('sha256sum', ['-c', '--strict', 'CHECKSUM'], { cwd: whole, encoding: 'utf8' });
  assert.is(sums.status, 0, sums.stdout + sums.stderr);
  assert.is(sums.stdout.split('\n').filter((l) => l.endsWith(': OK')).length, 4, sums.stdout);

  const doc = JSON.parse(readFileSync(join(whole, 'images.json'), 'utf8')) as { images: { path: string; format: string; size: number; type: string; arch: string; sourceDateEpoch: number; checksums: { sha256: string } }[] };
  const ajv = new Ajv({ allErrors: true });
  const validate = ajv.compile(JSON.parse(readFileSync(join(ROOT, 'src/compose/images.schema.json'), 'utf8')) as object);
  assert.ok(validate(doc), ajv.errorsText(validate.errors));
  // The schema is not vacuous: a record without its checksum, or with an escaping path, is refused.
  const broken = structuredClone(doc);
  delete (broken.images[0] as { checksums?: unknown }).checksums;
  assert.not.ok(validate(broken));
  const escaping = structuredClone(doc);
  escaping.images[0]!.path = '../x86_64/images/x.raw';
  assert.not.ok(validate(escaping));

  assert.equal(doc.images.map((i) => `${i.type}/${i.format}`).sort(), ['amazon/raw', 'amazon/vhd', 'generic/qcow2', 'generic/vmdk']);
  for (const i of doc.images) {
    assert.is(i.arch, 'x86_64');
    assert.is(i.sourceDateEpoch, EPOCH);
    assert.match(i.path, /^x86_64\/images\/Ingot-Cloud-(generic|amazon)-1-0\.1\.x86_64\.(qcow2|vmdk|raw|vhd)$/);
    assert.is(statSync(join(whole, i.path)).size, i.size);
    const info = JSON.parse(spawnSync('qemu-img', ['info', '--output=json', '-f', QEMU_FORMAT[i.format]!, join(whole, i.path)], { encoding: 'utf8' }).stdout) as { format: string; 'virtual-size': number };
    assert.is(info.format, QEMU_FORMAT[i.format], i.path);
    // qemu's own probe (no -f) agrees on every format but raw, which it cannot tell from data.
    if (i.format !== 'raw') {
      const probed = JSON.parse(spawnSync('qemu-img', ['info', '--output=json', join(whole, i.path)], { encoding: 'utf8' }).stdout) as { format: string };
      assert.is(probed.format, QEMU_FORMAT[i.format], i.path);
    }
    reference.set(i.path, i.checksums.sha256);
  }
  // The two formats of one image hold the same disk.
  const cmp = spawnSync('qemu-img', ['compare', '-f', 'raw', '-F', 'vpc', join(whole, 'x86_64/images/Ingot-Cloud-amazon-1-0.1.x86_64.raw'), join(whole, 'x86_64/images/Ingot-Cloud-amazon-1-0.1.x86_64.vhd')], { encoding: 'utf8' });
  assert.is(cmp.status, 0, cmp.stdout + cmp.stderr);
  for (const l of ['logs/x86_64/generic.log', 'logs/x86_64/amazon.log']) assert.match(readFileSync(join(whole, l), 'utf8'), /INFO finished in/);
  assert.ok(existsSync(join(whole, 'metadata/x86_64/Ingot-Cloud-generic-1-0.1.x86_64.manifest.json')));
  assert.is(readFileSync(join(whole, 'STATUS'), 'utf8'), 'FINISHED\n');
  assert.equal(leftovers(whole), []);
});

test('a compose image is byte-identical to `ingot build` of the same spec, seed and epoch (sharing changes nothing)', () => {
  assert.ok(whole, 'the whole compose ran');
  const name = 'Ingot-Cloud-amazon-1-0.1.x86_64';
  const spec = join(work, 'amazon-alone.json');
  const inline = (JSON.parse(readFileSync(join(work, 'compose.json'), 'utf8')) as { images: Image[] }).images.find((i) => i.name === 'amazon')!.spec as object;
  writeFileSync(spec, JSON.stringify({ ...inline, name, repositories: [{ name: 'fixtures', baseurl: [fixtureRepo()] }] }));
  // The compose derives each image's seed as sha256(seed NUL arch NUL type) (docs/compose.md).
  const seed = createHash('sha256').update('compose-test\0x86_64\0amazon').digest('hex').slice(0, 32);
  const out = join(work, 'alone');
  const r = ingot(['build', spec, '-o', out, '--format', 'raw', '--seed', seed, '-q'], { env: { SOURCE_DATE_EPOCH: String(EPOCH) } });
  assert.is(r.code, 0, r.stderr);
  const sum = spawnSync('sha256sum', [join(out, `${name}.raw`)], { encoding: 'utf8' }).stdout.split(' ')[0];
  assert.is(sum, reference.get(`x86_64/images/${name}.raw`));
});

test('shard 0/2 + shard 1/2, merged, equal the whole compose: same CHECKSUM, images.json and image bytes', () => {
  assert.ok(whole, 'the whole compose ran');
  const file = join(work, 'compose.json');
  const shards = [0, 1].map((i) => {
    const dir = join(work, `shard${i}`);
    const r = ingot(['compose', file, '-o', dir, '--shard', `${i}/2`, '--jobs', '2', '-q']);
    assert.is(r.code, 0, r.stderr);
    const doc = JSON.parse(readFileSync(join(dir, 'images.json'), 'utf8')) as { compose: { shard: unknown }; images: unknown[] };
    assert.equal(doc.compose.shard, { index: i, count: 2 });
    return { dir, n: doc.images.length };
  });
  // generic hashes to shard 0 and amazon to shard 1 (sha256, see compose-config.test.ts): both shards build.
  assert.equal([shards[0]!.n, shards[1]!.n], [2, 2]);
  const merged = join(work, 'merged');
  const m = ingot(['compose', '--merge', shards[1]!.dir, shards[0]!.dir, '-o', merged]);
  assert.is(m.code, 0, m.stderr);
  for (const f of ['CHECKSUM', 'images.json', 'STATUS']) assert.is(readFileSync(join(merged, f), 'utf8'), readFileSync(join(whole, f), 'utf8'), f);
  const sums = spawnSync('sha256sum', ['-c', '--strict', 'CHECKSUM'], { cwd: merged, encoding: 'utf8' });
  assert.is(sums.status, 0, sums.stdout + sums.stderr);
  // Merging again into the same (now non-empty) directory is refused.
  const again = ingot(['compose', '--merge', shards[0]!.dir, shards[1]!.dir, '-o', merged]);
  assert.is(again.code, 1);
  assert.match(again.stderr, /not empty/);
});

test('a failing image fails the compose: exit 1, its log kept, no partial image, no index; --keep-going indexes the rest', () => {
  assert.ok(whole, 'the whole compose ran');
  // Fail-fast: "broken" asks for a package no repository has; whatever else was in flight is stopped.
  const bad: Image = { name: 'broken', spec: { packages: { ...packages, include: [...packages.include, 'no-such-package'] }, bootloader: { kind: 'none' } }, formats: ['qcow2', 'raw'] };
  const out = join(work, 'failed');
  const r = ingot(['compose', composeFile('failing', [bad]), '-o', out, '--jobs', '2']);
  assert.is(r.code, 1, r.stderr);
  assert.match(r.stderr, /^\[\d\/3\] x86_64\/broken failed .*no-such-package/m);
  const errLine = r.stderr.trim().split('\n').pop()!;
  assert.match(errLine, /x86_64\/broken: .*no-such-package/);
  assert.match(readFileSync(join(out, 'logs/x86_64/broken.log'), 'utf8'), /ERROR .*no-such-package/);
  assert.is(readFileSync(join(out, 'STATUS'), 'utf8'), 'DOOMED\n');
  assert.not.ok(existsSync(join(out, 'images.json')) || existsSync(join(out, 'CHECKSUM')));
  assert.equal(leftovers(out), []);
  // Whatever image did finish is whole: byte-identical to the same image of the good compose.
  for (const p of tree(out).filter((x) => x.startsWith('x86_64/images/'))) {
    if (statSync(join(out, p)).isDirectory()) continue;
    assert.ok(!p.includes('broken'), p);
    const sum = spawnSync('sha256sum', [join(out, p)], { encoding: 'utf8' }).stdout.split(' ')[0];
    assert.is(sum, reference.get(p), p);
  }

  // --keep-going: an invalid inline spec fails its image; amazon still builds and is indexed.
  const invalid: Image = { name: 'invalid', spec: { disk: { table: 'zfs' } }, formats: ['raw'] };
  const kg = join(work, 'keep-going');
  const k = ingot(['compose', composeFile('keep-going', [invalid], ['amazon', 'invalid']), '-o', kg, '--keep-going', '-q']);
  assert.is(k.code, 1, k.stderr);
  assert.match(k.stderr, /1 of 2 images failed: x86_64\/invalid/);
  assert.is(readFileSync(join(kg, 'STATUS'), 'utf8'), 'FINISHED_INCOMPLETE\n');
  const sums = spawnSync('sha256sum', ['-c', '--strict', 'CHECKSUM'], { cwd: kg, encoding: 'utf8' });
  assert.is(sums.status, 0, sums.stdout + sums.stderr);
  assert.is(sums.stdout.trim().split('\n').length, 2);
  for (const line of readFileSync(join(kg, 'CHECKSUM'), 'utf8').split('\n')) {
    const m = /^SHA256 \((.*)\) = (.*)$/.exec(line);
    if (m) assert.is(m[2], reference.get(m[1]!), m[1]);
  }
  assert.match(readFileSync(join(kg, 'logs/x86_64/invalid.log'), 'utf8'), /ERROR/);
  assert.equal(leftovers(kg), []);
});

test('the matrix is arch-generic: x86_64 and i686 of a noarch image, metadata loaded once per arch, the payload unpacked once', () => {
  // The fixture repository has x86_64 and noarch packages only; a noarch-only image builds for both arches.
  const p = join(work, 'arches.json');
  writeFileSync(p, JSON.stringify({
    name: 'Two', version: '1', arches: ['x86_64', 'i686'], sourceDateEpoch: EPOCH, repos: [{ name: 'fixtures', baseurl: [fixtureRepo()] }],
    images: [{ name: 'base', formats: ['raw', 'qcow2'], spec: { packages: { include: ['ingot-base'], core: false, weakDeps: false }, bootloader: { kind: 'none' }, disk: { table: 'gpt', partitions: [{ mount: '/', size: '48MiB', fs: 'ext4' }] } } }],
  }));
  const out = join(work, 'arches');
  const r = ingot(['compose', p, '-o', out, '--json']);
  assert.is(r.code, 0, r.stderr);
  const res = JSON.parse(r.stdout) as { images: { path: string }[]; sharing: Record<string, number> };
  assert.equal(res.images.map((i) => i.path), ['i686/images/Two-base-1.i686.qcow2', 'i686/images/Two-base-1.i686.raw', 'x86_64/images/Two-base-1.x86_64.qcow2', 'x86_64/images/Two-base-1.x86_64.raw']);
  assert.is(res.sharing.repoLoads, 2);
  assert.is(res.sharing.payloadsExtracted, 1);
  assert.is(res.sharing.payloadReplays, 1);
  const sums = spawnSync('sha256sum', ['-c', '--strict', 'CHECKSUM'], { cwd: out, encoding: 'utf8' });
  assert.is(sums.status, 0, sums.stdout + sums.stderr);
  // Each arch's root partition carries its Discoverable Partitions Specification type (root-x86 / root-x86-64), read by sfdisk.
  const type = (raw: string) => (JSON.parse(spawnSync('sfdisk', ['--json', join(out, raw)], { encoding: 'utf8' }).stdout) as { partitiontable: { partitions: { type: string }[] } }).partitiontable.partitions[0]!.type;
  assert.is(type('i686/images/Two-base-1.i686.raw'), '44479540-F297-41B2-9AF7-D131D5F0458A');
  assert.is(type('x86_64/images/Two-base-1.x86_64.raw'), '4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709');
});

test('an abort mid-compose (API) and a SIGTERM mid-compose (CLI) leave nothing partial', async () => {
  const out = join(work, 'aborted');
  const ac = new AbortController();
  const stages: string[] = [];
  let err: unknown;
  try {
    await compose({
      config: composeFile('abort'), outputDir: out, jobs: 2, signal: ac.signal,
      onProgress: (e) => { stages.push(`${e.image} ${e.stage}`); if (e.stage === 'disk') ac.abort(); },
    });
  } catch (e) { err = e; }
  assert.instance(err, AbortedError, String(err));
  assert.ok(stages.some((s) => s.endsWith('disk')), stages.join(', '));
  assert.not.ok(err instanceof ComposeError);
  assert.not.ok(existsSync(join(out, 'images.json')) || existsSync(join(out, 'CHECKSUM')));
  assert.is(readFileSync(join(out, 'STATUS'), 'utf8'), 'DOOMED\n');
  assert.equal(tree(out).filter((p) => p.startsWith('x86_64/images/') && p !== 'x86_64/images'), []);
  assert.equal(leftovers(out), []);

  // The CLI killed while writing disks: the signal handler removes the scratch directory.
  const killed = join(work, 'killed');
  const loader = pathToFileURL(join(ROOT, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href;
  const child = spawn(process.execPath, ['--import', loader, join(ROOT, 'src/cli/main.ts'), 'compose', join(work, 'abort.json'), '-o', killed, '--jobs', '2'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  let seen = '';
  let killed = false;
  const code = await new Promise<number | null>((resolve) => {
    // One signal: the cleanup handler is a `once` handler, a second SIGTERM within its exit delay would take the default action.
    child.stderr.on('data', (d: Buffer) => { seen += d.toString(); if (!killed && /\[disk\]/.test(seen)) { killed = true; child.kill('SIGTERM'); } });
    child.on('exit', (c) => resolve(c));
  });
  assert.ok(/\[disk\]/.test(seen), seen);
  assert.is(code, 143, seen);
  assert.not.ok(existsSync(join(killed, 'images.json')));
  assert.equal(leftovers(killed), []);
});

test.after(() => { rmSync(work, { recursive: true, force: true }); });

test.run();
