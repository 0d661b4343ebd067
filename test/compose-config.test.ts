// COMPOSE.json validation, the matrix and shard assignment, and merge's
// refusals on small synthetic compose directories (no image builds here:
// test/compose.test.ts builds real composes).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdirSync, mkdtempSync, rmSync, readFileSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { parseComposeConfig, ComposeConfigError, type ComposeConfig } from '../src/compose/config.js';
import { composeJobs, matrixOutputs, parseShard, shardOf, ShardError } from '../src/compose/matrix.js';
import { mergeComposes, ComposeMergeError } from '../src/compose/merge.js';
import { imagesJsonText, checksumText, type ComposeImage } from '../src/compose/metadata.js';
import { ingot } from './helpers/cli.js';

const work = mkdtempSync(join(tmpdir(), 'ingot-compose-config-'));

const base = () => ({
  name: 'Fedora-Cloud', version: '41', label: '1.4', arches: ['x86_64', 'i686'],
  repos: [{ name: 'everything', baseurl: ['repo/$basearch'] }],
  images: [
    { name: 'generic', spec: 'generic.ks', formats: ['qcow2', 'raw.xz'] },
    { name: 'ec2', spec: { packages: { include: ['kernel'] } }, formats: ['raw'] },
  ],
});

function rejects(doc: unknown, code: string, field: string): void {
  try {
    parseComposeConfig(doc, join(work, 'COMPOSE.json'));
  } catch (e) {
    assert.instance(e, ComposeConfigError);
    assert.is((e as ComposeConfigError).code, code, (e as Error).message);
    assert.is((e as ComposeConfigError).context.field, field, (e as Error).message);
    return;
  }
  assert.unreachable(`accepted: ${JSON.stringify(doc)}`);
}

test('a Fedora-shaped COMPOSE.json parses; relative paths are anchored at the compose file', () => {
  const c = parseComposeConfig(base(), join(work, 'COMPOSE.json'));
  assert.equal(c.arches, ['x86_64', 'i686']);
  assert.is(c.images[0]!.spec, join(work, 'generic.ks'));
  assert.equal(c.images[0]!.formats, ['qcow2', 'raw.xz']);
  assert.equal(c.repos[0]!.baseurl, [join(work, 'repo/$basearch')]);
  assert.is(typeof c.images[1]!.spec, 'object');
});

test('bad COMPOSE.json documents are refused with a typed error naming the field', () => {
  const b = base;
  rejects([], 'COMPOSE_INVALID', '(root)');
  rejects({ ...b(), extra: 1 }, 'COMPOSE_UNKNOWN_KEY', 'extra');
  rejects({ ...b(), name: '' }, 'COMPOSE_INVALID', 'name');
  rejects({ ...b(), name: 'a/b' }, 'COMPOSE_BAD_NAME', 'name');
  rejects({ ...b(), version: 3 }, 'COMPOSE_INVALID', 'version');
  rejects({ ...b(), arches: [] }, 'COMPOSE_INVALID', 'arches');
  rejects({ ...b(), arches: ['x86_64', 'sparc'] }, 'COMPOSE_BAD_ARCH', 'arches[1]');
  rejects({ ...b(), arches: ['x86_64', 'x86_64'] }, 'COMPOSE_DUPLICATE', 'arches[1]');
  rejects({ ...b(), sourceDateEpoch: -1 }, 'COMPOSE_BAD_EPOCH', 'sourceDateEpoch');
  rejects({ ...b(), sourceDateEpoch: '1700000000' }, 'COMPOSE_BAD_EPOCH', 'sourceDateEpoch');
  rejects({ ...b(), repos: [{ name: 'x' }] }, 'COMPOSE_REPO_NO_URL', 'repos[0]');
  rejects({ ...b(), repos: [{ name: 'x', baseurl: ['a'], priority: 1 }] }, 'COMPOSE_UNKNOWN_KEY', 'repos[0].priority');
  const img = (i: Record<string, unknown>) => ({ ...b(), images: [{ name: 'generic', spec: 'g.ks', formats: ['qcow2'], ...i }] });
  rejects(img({ formats: ['qcow2', 'floppy'] }), 'COMPOSE_BAD_FORMAT', 'images[0].formats[1]');
  rejects(img({ formats: ['qcow2', 'qcow2'] }), 'COMPOSE_DUPLICATE', 'images[0].formats[1]');
  rejects(img({ formats: [] }), 'COMPOSE_INVALID', 'images[0].formats');
  rejects(img({ spec: 7 }), 'COMPOSE_INVALID', 'images[0].spec');
  rejects(img({ arches: ['aarch64'] }), 'COMPOSE_BAD_ARCH', 'images[0].arches[0]');
  rejects(img({ name: '.hidden' }), 'COMPOSE_BAD_NAME', 'images[0].name');
  rejects({ ...b(), images: [...b().images, b().images[0]] }, 'COMPOSE_DUPLICATE', 'images[2]');
});

test('the CLI reports a bad compose file in one line with exit 1, and bad usage with exit 2', () => {
  const f = join(work, 'bad.json');
  writeFileSync(f, JSON.stringify({ ...base(), images: [{ name: 'g', spec: 'g.ks', formats: ['floppy'] }] }));
  const r = ingot(['compose', f, '-o', join(work, 'never')]);
  assert.is(r.code, 1, r.stderr);
  assert.match(r.stderr, /images\[0\]\.formats\[0\]/);
  assert.is(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.not.ok(existsSync(join(work, 'never')));
  writeFileSync(join(work, 'syntax.json'), '{ "name": "x",\n  "version": }');
  const s = ingot(['compose', join(work, 'syntax.json'), '-o', join(work, 'never')]);
  assert.is(s.code, 1);
  assert.match(s.stderr, /syntax.json.*not valid JSON/);
  assert.is(ingot(['compose', f, '-o', join(work, 'never'), '--shard', '2/2']).code, 2);
  assert.is(ingot(['compose', f, '-o', join(work, 'never'), '--jobs', '0']).code, 2);
  assert.is(ingot(['compose', f]).code, 2);
});

test('the matrix is arches × image types × formats; jobs group the formats of one image', () => {
  const c = parseComposeConfig(base(), join(work, 'COMPOSE.json'));
  assert.equal(matrixOutputs(c).map((o) => o.id), [
    'x86_64/generic/qcow2', 'x86_64/generic/raw.xz', 'x86_64/ec2/raw', 'i686/generic/qcow2', 'i686/generic/raw.xz', 'i686/ec2/raw',
  ]);
  const jobs = composeJobs(c);
  assert.equal(jobs.map((j) => [j.id, j.formats, j.baseName]), [
    ['x86_64/generic', ['qcow2', 'raw.xz'], 'Fedora-Cloud-generic-41-1.4.x86_64'],
    ['x86_64/ec2', ['raw'], 'Fedora-Cloud-ec2-41-1.4.x86_64'],
    ['i686/generic', ['qcow2', 'raw.xz'], 'Fedora-Cloud-generic-41-1.4.i686'],
    ['i686/ec2', ['raw'], 'Fedora-Cloud-ec2-41-1.4.i686'],
  ]);
  const only = parseComposeConfig({ ...base(), images: [{ ...base().images[0], arches: ['i686'] }] }, join(work, 'C.json'));
  assert.equal(matrixOutputs(only).map((o) => o.id), ['i686/generic/qcow2', 'i686/generic/raw.xz']);
});

test('shards partition the matrix by sha256 of the image identity, and stay put when the matrix grows', () => {
  const big: ComposeConfig = parseComposeConfig({
    ...base(), arches: ['x86_64', 'i686', 'aarch64', 'ppc64le', 's390x'],
    images: Array.from({ length: 12 }, (_, i) => ({ name: `img${i}`, spec: 'x.ks', formats: ['qcow2', 'raw', 'vhd', 'vmdk'] })),
  }, join(work, 'C.json'));
  const all = matrixOutputs(big).map((o) => o.id);
  for (const n of [1, 2, 3, 7]) {
    const seen: string[] = [];
    for (let i = 0; i < n; i++) for (const j of composeJobs(big, { index: i, count: n })) seen.push(...j.formats.map((f) => `${j.id}/${f}`));
    assert.equal(seen.sort(), [...all].sort(), `${n} shards cover the matrix exactly once`);
  }
  // The assignment is the documented hash, computed independently here.
  const h = (id: string) => Number(createHash('sha256').update(id).digest().readBigUInt64BE(0) % 3n);
  for (const j of composeJobs(big)) assert.is(shardOf(j.id, 3), h(j.id));
  for (let i = 0; i < 3; i++) for (const j of composeJobs(big, { index: i, count: 3 })) assert.is(h(j.id), i, j.id);
  // Adding an image type, an arch and a format moves none of the existing outputs.
  const { baseDir: _b, file: _f, ...bigDoc } = big;
  const grown = parseComposeConfig({ ...bigDoc, arches: [...big.arches, 'riscv64'], images: [{ name: 'new', spec: 'n.ks', formats: ['raw'] }, ...big.images.map((t) => ({ ...t, spec: 'x.ks', formats: [...t.formats, 'ova'] }))] }, join(work, 'C.json'));
  const where = (c: ComposeConfig) => new Map(Array.from({ length: 3 }, (_, i) => composeJobs(c, { index: i, count: 3 }).flatMap((j) => j.formats.map((f) => [`${j.id}/${f}`, i] as const))).flat());
  const before = where(big), after = where(grown);
  for (const [id, s] of before) assert.is(after.get(id), s, id);
  // Roughly balanced: no shard of 3 holds more than half of the 240 outputs (60 images).
  for (let i = 0; i < 3; i++) assert.ok([...before.values()].filter((s) => s === i).length < all.length / 2);
  assert.equal(parseShard('1/4'), { index: 1, count: 4 });
  for (const bad of ['4/4', '1', '-1/2', '1/0', 'a/b', '1/2/3']) assert.throws(() => parseShard(bad), (e: unknown) => e instanceof ShardError);
});

// ---------------------------------------------------------------- merge refusals on synthetic directories

function fakeCompose(dir: string, shard: { index: number; count: number } | undefined, files: Record<string, string>, extra: { id?: string; tamper?: string } = {}): void {
  const images: ComposeImage[] = [];
  mkdirSync(dir, { recursive: true });
  for (const [path, text] of Object.entries(files)) {
    const [arch, , name] = path.split('/') as [string, string, string];
    mkdirSync(join(dir, arch, 'images'), { recursive: true });
    writeFileSync(join(dir, path), path === extra.tamper ? `${text}!` : text);
    const [type, format] = name.split('.') as [string, string];
    images.push({ name, arch, type, format, path, size: text.length, checksums: { sha256: createHash('sha256').update(text).digest('hex') }, sourceDateEpoch: 0, buildTime: '1970-01-01T00:00:00.000Z' });
  }
  const info = { id: extra.id ?? 'T-1', name: 'T', version: '1', ...(shard ? { shard } : {}) };
  writeFileSync(join(dir, 'images.json'), imagesJsonText(info, images));
  writeFileSync(join(dir, 'CHECKSUM'), checksumText(images));
  writeFileSync(join(dir, 'STATUS'), 'FINISHED\n');
}

/** Split outputs a/b/c/d over 2 shards the way compose would. */
function shardFiles(): Record<string, string>[] {
  const out: Record<string, string>[] = [{}, {}];
  for (const [type, format] of [['a', 'raw'], ['b', 'raw'], ['c', 'qcow2'], ['d', 'vhd'], ['e', 'raw']] as const) {
    out[shardOf(`x86_64/${type}`, 2)]![`x86_64/images/${type}.${format}`] = `${type} image bytes`;
  }
  return out;
}

async function mergeRejects(dirs: string[], code: string, out = join(work, `m-${code}-${Math.random()}`)): Promise<void> {
  try {
    await mergeComposes(dirs, out);
  } catch (e) {
    assert.instance(e, ComposeMergeError, (e as Error).message);
    assert.is((e as ComposeMergeError).code, code, (e as Error).message);
    assert.not.ok(existsSync(out) && !out.endsWith('nonempty'), 'no output on refusal');
    return;
  }
  assert.unreachable(`merge accepted ${dirs.join(' ')}`);
}

test('merge joins shards and refuses duplicates, conflicts, gaps and tampered images', async () => {
  const [f0, f1] = shardFiles();
  assert.ok(Object.keys(f0!).length > 0 && Object.keys(f1!).length > 0, 'both shards hold something');
  const s0 = join(work, 's0'), s1 = join(work, 's1');
  fakeCompose(s0, { index: 0, count: 2 }, f0!);
  fakeCompose(s1, { index: 1, count: 2 }, f1!);
  const out = join(work, 'merged');
  const r = await mergeComposes([s1, s0], out);
  assert.is(r.images.length, 5);
  assert.ok(!readFileSync(join(out, 'images.json'), 'utf8').includes('shard'));
  const chk = spawnSync('sha256sum', ['-c', '--strict', 'CHECKSUM'], { cwd: out, encoding: 'utf8' });
  assert.is(chk.status, 0, chk.stdout + chk.stderr);
  assert.is(readFileSync(join(out, 'STATUS'), 'utf8'), 'FINISHED\n');

  await mergeRejects([s0, s0], 'MERGE_DUPLICATE_SHARD');
  await mergeRejects([s0], 'MERGE_MISSING_SHARD');
  const other = join(work, 'other');
  fakeCompose(other, { index: 1, count: 2 }, f1!, { id: 'T-2' });
  await mergeRejects([s0, other], 'MERGE_CONFLICT');
  const three = join(work, 'three');
  fakeCompose(three, { index: 1, count: 3 }, {});
  await mergeRejects([s0, three], 'MERGE_CONFLICT');
  const wrong = join(work, 'wrong');
  fakeCompose(wrong, { index: 1, count: 2 }, f0!);
  await mergeRejects([s0, wrong], 'MERGE_WRONG_SHARD');
  const whole1 = join(work, 'w1'), whole2 = join(work, 'w2');
  fakeCompose(whole1, undefined, { ...f0!, ...f1! });
  fakeCompose(whole2, undefined, f1!);
  await mergeRejects([whole1, whole2], 'MERGE_DUPLICATE');
  const tampered = join(work, 'tampered');
  fakeCompose(tampered, { index: 1, count: 2 }, f1!, { tamper: Object.keys(f1!)[0] });
  await mergeRejects([s0, tampered], 'MERGE_CHECKSUM_MISMATCH');
  const doomed = join(work, 'doomed');
  fakeCompose(doomed, { index: 1, count: 2 }, f1!);
  writeFileSync(join(doomed, 'STATUS'), 'DOOMED\n');
  await mergeRejects([s0, doomed], 'MERGE_NOT_FINISHED');
  const nonempty = join(work, 'nonempty');
  mkdirSync(nonempty);
  writeFileSync(join(nonempty, 'x'), '');
  await mergeRejects([s0, s1], 'MERGE_OUTPUT_NOT_EMPTY', nonempty);
});

test.after(() => { rmSync(work, { recursive: true, force: true }); });

test.run();
