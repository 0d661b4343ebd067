/**
 * Benchmark: a compose of 2 image types × 2 formats (2 arches × 2 formats
 * when the repository has i686 packages) against the same images built one
 * by one with `ingot build`, in the same run:
 *
 *   per-output   one `ingot build --format F` per image × format (a naive drop script)
 *   per-image    one `ingot build --format F1,F2` per image (disk written once per image)
 *   per-image ∥  the same builds as concurrent processes (parallelism without sharing)
 *   compose -j1  `ingot compose --jobs 1`: sharing (metadata, downloads, payloads) only
 *   compose      `ingot compose` with its default --jobs: sharing and parallelism
 *
 *   npm run build && node --import tsx bench/compose.ts [REPO_DIR] [--repeat N]
 *
 * REPO_DIR defaults to /tmp/corpus-base (the 137-package base image, never in
 * git: ../shared/corpus/deb2rpm-repo --out /tmp/corpus-base --closure --list
 * ../shared/corpus/lists/base-image.list), else the fixture repository.
 * Prints wall and CPU seconds of each side and the speed-ups.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadavg } from 'node:os';
import { ratio, timed, type Timed } from './lib.js';

const root = resolve(fileURLToPath(import.meta.url), '..', '..');
const args = process.argv.slice(2);
const ri = args.indexOf('--repeat');
const repeat = ri >= 0 ? Number(args.splice(ri, 2)[1]) : 1;
const cli = join(root, 'dist', 'src', 'cli', 'main.js');
if (!existsSync(cli)) { console.error('run `npm run build` first (the benchmark times the compiled CLI)'); process.exit(2); }

let repo = resolve(args[0] ?? '/tmp/corpus-base');
let include: string[];
const list = join(root, '..', 'shared', 'corpus', 'lists', 'base-image.list');
if (existsSync(join(repo, 'repodata', 'repomd.xml')) && (args[0] || existsSync(list))) {
  include = args[0] && !repo.endsWith('corpus-base')
    ? ['kernel']
    : readFileSync(list, 'utf8').split('\n').filter((l) => l.trim() && !l.startsWith('#')).flatMap((l) => l.trim().split(/\s+/));
} else {
  const { fixtureRepo } = await import('../fixtures/repo.js');
  repo = fixtureRepo();
  include = ['ingot-base', 'ingot-marker', 'busybox-static', 'kernel'];
}
const hasI686 = readdirSync(join(repo, 'Packages')).some((f) => f.endsWith('.i686.rpm'));
const arches = hasI686 ? ['x86_64', 'i686'] : ['x86_64'];

const work = join('/tmp', `ingot-bench-compose-${process.pid}`);
mkdirSync(work, { recursive: true });
const packages = { include, core: false, weakDeps: false };
const images = [
  { name: 'generic', lenientOwners: true, formats: ['qcow2', 'raw'], spec: { packages, selinux: 'disabled', bootloader: { kind: 'none', firmware: 'uefi' }, disk: { table: 'gpt', partitions: [{ mount: '/boot/efi', size: '32MiB', fs: 'efi' }, { mount: '/', size: '256MiB', fs: 'ext4', grow: true }] } } },
  { name: 'ec2', lenientOwners: true, formats: ['qcow2', 'raw'], spec: { packages, selinux: 'disabled', bootloader: { kind: 'none', firmware: 'bios' }, disk: { table: 'mbr', partitions: [{ mount: '/', size: '256MiB', fs: 'ext4', grow: true }] } } },
].slice(0, hasI686 ? 1 : 2);
const composeFile = join(work, 'COMPOSE.json');
writeFileSync(composeFile, JSON.stringify({ name: 'Bench', version: '1', arches, sourceDateEpoch: 1700000000, repos: [{ name: 'bench', baseurl: [repo] }], images }));
const specs = images.map((i) => {
  const p = join(work, `${i.name}.json`);
  writeFileSync(p, JSON.stringify({ name: i.name, repositories: [{ name: 'bench', baseurl: [repo] }], ...i.spec }));
  // Debian-made packages name groups (shadow, …) that no package of the closure creates: as bench/build.ts does.
  return { ...i, path: p };
});

const env = { ...process.env, SOURCE_DATE_EPOCH: '1700000000' };
const node = [process.execPath, cli];
function run(cmds: string[][]): Timed {
  const total: Timed = { wall: 0, cpu: 0, rssMB: 0, status: 0, stderr: '' };
  for (const c of cmds) {
    const t = timed(c[0] === '/bin/sh' ? c : [...node, ...c], { env });
    if (t.status !== 0) { console.error(`failed: ${c.join(' ')}\n${t.stderr}`); process.exit(1); }
    total.wall += t.wall; total.cpu += t.cpu; total.rssMB = Math.max(total.rssMB, t.rssMB);
  }
  return total;
}

const sides: Record<string, () => string[][]> = {
  'per-output': () => arches.flatMap((a) => specs.flatMap((s) => s.formats.map((f) => ['build', s.path, '--arch', a, '--format', f, '-o', join(work, `po-${a}-${s.name}-${f}`), '--lenient-owners', '-q']))),
  'per-image': () => arches.flatMap((a) => specs.map((s) => ['build', s.path, '--arch', a, '--format', s.formats.join(','), '-o', join(work, `pi-${a}-${s.name}`), '--lenient-owners', '-q'])),
  // The child-process alternative to compose's in-process concurrency: the per-image builds, all at once.
  'per-image ∥': () => [['/bin/sh', '-c', `${arches.flatMap((a) => specs.map((s) => [...node, 'build', s.path, '--arch', a, '--format', s.formats.join(','), '-o', join(work, `pp-${a}-${s.name}`), '--lenient-owners', '-q'].map((x) => `'${x}'`).join(' ') + ' &')).join(' ')} wait`]],
  'compose -j1': () => [['compose', composeFile, '-o', join(work, 'c1'), '--jobs', '1', '-q']],
  'compose': () => [['compose', composeFile, '-o', join(work, 'cj'), '-q']],
};

const results: Record<string, Timed[]> = {};
console.log(`repository ${repo} (${include.length} requested names), arches ${arches.join(', ')}, image types ${images.map((i) => i.name).join(', ')}, formats qcow2+raw; load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
for (let r = 0; r < repeat; r++) {
  for (const [name, cmds] of Object.entries(sides)) {
    for (const d of readdirSync(work)) if (!d.endsWith('.json')) rmSync(join(work, d), { recursive: true, force: true });
    const t = run(cmds());
    (results[name] ??= []).push(t);
    console.log(`${name.padEnd(13)} wall ${t.wall.toFixed(1).padStart(6)} s  cpu ${t.cpu.toFixed(1).padStart(6)} s  peak rss ${t.rssMB.toFixed(0)} MB`);
  }
}
const best = (n: string) => Math.min(...results[n]!.map((t) => t.wall));
const cpu = (n: string) => Math.min(...results[n]!.map((t) => t.cpu));
console.log(`speed-up (wall, best of ${repeat}): compose vs per-output ${ratio(best('per-output'), best('compose'))}, vs per-image ${ratio(best('per-image'), best('compose'))}; sharing alone (compose -j1 vs per-image) ${ratio(best('per-image'), best('compose -j1'))}; parallelism (compose -j1 vs compose) ${ratio(best('compose -j1'), best('compose'))}; in-process compose vs concurrent build processes ${ratio(best('per-image ∥'), best('compose'))}`);
console.log(`CPU saved: compose uses ${ratio(cpu('compose'), cpu('per-image'))} of per-image's CPU time, ${ratio(cpu('compose'), cpu('per-output'))} of per-output's; load average now ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
rmSync(work, { recursive: true, force: true });
