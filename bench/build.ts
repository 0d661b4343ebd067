/**
 * Benchmark: a whole image build, end to end to qcow2, against the native
 * pipeline on the same packages in the same run: `rpm2cpio | cpio -idm` for
 * each package in transaction order, `mke2fs -t ext4 -d`, `qemu-img convert
 * -O qcow2`. Reports wall time and peak RSS for both.
 *
 *   npm run build && node --import tsx bench/build.ts [REPO_DIR]
 *
 * REPO_DIR (default /tmp/corpus-base) is a deb2rpm corpus repository, never in git:
 *   ../shared/corpus/deb2rpm-repo --out /tmp/corpus-base --closure --list ../shared/corpus/lists/base-image.list
 * The request is every name of lists/base-image.list (~120 packages, ~500 MB installed).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ratio, timed } from './lib.js';

const root = resolve(fileURLToPath(import.meta.url), '..', '..');
const repo = resolve(process.argv[2] ?? '/tmp/corpus-base');
const list = join(root, '..', 'shared', 'corpus', 'lists', 'base-image.list');
if (!existsSync(join(repo, 'repodata', 'repomd.xml'))) {
  console.error(`no repository at ${repo}: make one with ../shared/corpus/deb2rpm-repo --out ${repo} --closure --list ${list}`);
  process.exit(2);
}
const cli = join(root, 'dist', 'src', 'cli', 'main.js');
if (!existsSync(cli)) { console.error('run `npm run build` first (the benchmark times the compiled CLI)'); process.exit(2); }

const work = join('/tmp', `ingot-bench-build-${process.pid}`);
mkdirSync(work, { recursive: true });
const names = readFileSync(list, 'utf8').split('\n').filter((l) => l.trim() && !l.startsWith('#')).flatMap((l) => l.trim().split(/\s+/));
const spec = join(work, 'spec.json');
writeFileSync(spec, JSON.stringify({
  name: 'bench', repositories: [{ name: 'corpus', baseurl: [repo] }],
  packages: { include: names, core: false, weakDeps: false },
  disk: { table: 'gpt', partitions: [{ mount: '/', size: '256MiB', fs: 'ext4', grow: true }] },
  bootloader: { kind: 'none', firmware: 'bios' }, selinux: 'disabled', outputs: [{ format: 'qcow2' }],
}));

const env = { ...process.env, SOURCE_DATE_EPOCH: '1700000000' };
// Warm the page cache and the repository metadata cache for both sides.
spawnSync('cat', readdirSync(join(repo, 'Packages')).map((f) => join(repo, 'Packages', f)), { stdio: 'ignore' });

const ing = timed([process.execPath, cli, 'build', spec, '-o', join(work, 'ingot'), '--lenient-owners', '-q'], { env });
if (ing.status !== 0) { console.error(ing.stderr); process.exit(1); }
const report = JSON.parse(readFileSync(join(work, 'ingot', 'bench.report.json'), 'utf8')) as {
  packages: { nevra: string }[]; order: string[]; disk: { partitions: { size: number }[] }; timings: Record<string, number>;
};

// The same packages, in the same order, as files.
const files = readdirSync(join(repo, 'Packages')).map((f) => join(repo, 'Packages', f));
const q = spawnSync('rpm', ['-qp', '--qf', '%{NEVRA}\\n', ...files], { encoding: 'utf8', maxBuffer: 1 << 26 });
const byNevra = new Map(q.stdout.trim().split('\n').map((n, i) => [n, files[i]!]));
const ordered = report.order.map((n) => byNevra.get(n) ?? byNevra.get(n.replace(/-\d+:/, '-'))).filter((f): f is string => !!f);
if (ordered.length !== report.packages.length) { console.error(`matched ${ordered.length} of ${report.packages.length} packages`); process.exit(1); }
const tree = join(work, 'native-root');
const img = join(work, 'native.ext4');
const size = report.disk.partitions[0]!.size;
const script = [
  'set -e', `mkdir -p ${tree}`, `cd ${tree}`,
  ...ordered.map((f) => `rpm2cpio ${f} | cpio -idm --quiet --no-absolute-filenames`),
  `mke2fs -q -t ext4 -d ${tree} ${img} ${Math.floor(size / 1024)}k`,
  `qemu-img convert -O qcow2 ${img} ${join(work, 'native.qcow2')}`,
].join('\n');
writeFileSync(join(work, 'native.sh'), script);
const nat = timed(['bash', join(work, 'native.sh')], { env });
if (nat.status !== 0) { console.error(nat.stderr); process.exit(1); }

console.log(`packages: ${ordered.length}; root filesystem ${Math.round(size / 2 ** 20)} MiB`);
console.log('| pipeline | wall s | CPU s | peak RSS MB |');
console.log('|---|---|---|---|');
console.log(`| ingot build → qcow2 | ${ing.wall.toFixed(1)} | ${ing.cpu.toFixed(1)} | ${ing.rssMB.toFixed(0)} |`);
console.log(`| rpm2cpio\\|cpio ×${ordered.length} + mke2fs -d + qemu-img convert | ${nat.wall.toFixed(1)} | ${nat.cpu.toFixed(1)} | ${nat.rssMB.toFixed(0)} |`);
console.log(`ratio (wall): ${ratio(ing.wall, nat.wall)}; ingot stages: ${JSON.stringify(report.timings)}`);
rmSync(work, { recursive: true, force: true });
