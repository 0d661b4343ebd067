/**
 * Benchmark: the same host directory through `ingot mkfs ext4 --from-dir`
 * and `mke2fs -t ext4 -d DIR` in the same run, at the same filesystem size
 * (the one ingot's `--size auto` picks). Reports wall time, CPU (user+sys),
 * peak RSS (GNU time), the disk blocks the image file uses (du) and the load
 * average, plus e2fsck -fn of both images, and prints the ratios. The page
 * cache is warmed with the tree before each run; rounds alternate which tool
 * goes first (default 2 rounds).
 *
 *   node --import tsx bench/ext4.ts [DIR] [--out TMPDIR] [--rounds N]
 *
 * DIR defaults to /usr/lib (on the Debian 12 builder: ~74,000 entries, ~4 GiB).
 * The CLI runs compiled (dist/, rebuilt with tsc when older than src/), so
 * neither side pays for transpiling at startup.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { timed, type Timed } from './lib.js';

const root = join(fileURLToPath(import.meta.url), '..', '..');
const args = process.argv.slice(2);
const opt = (name: string, def: string) => { const i = args.indexOf(name); return i >= 0 ? args.splice(i, 2)[1]! : def; };
const out = resolve(opt('--out', '/tmp/ingot-bench-ext4'));
const rounds = Number(opt('--rounds', '2'));
const dir = resolve(args[0] ?? '/usr/lib');
const RSS_TARGET_MB = 300;

/** Newest modification time below `d` (ms). */
function newest(d: string): number {
  let t = 0;
  for (const e of readdirSync(d, { withFileTypes: true })) {
    const p = join(d, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

const built = join(root, 'dist/src/cli/main.js');
if (!existsSync(built) || statSync(built).mtimeMs < newest(join(root, 'src'))) {
  console.log('compiling the CLI (tsc -p tsconfig.json) …');
  const r = spawnSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) throw new Error('tsc failed');
}

const duBytes = (f: string) => statSync(f).blocks * 512;
const sh = (cmd: string) => spawnSync('sh', ['-c', cmd], { encoding: 'utf8' }).stdout.trim();
const load = () => loadavg().map((x) => x.toFixed(1)).join(' ');
mkdirSync(out, { recursive: true });
console.log(`tree: ${dir}: ${sh(`find ${JSON.stringify(dir)} | wc -l`)} entries, ` +
  `${(Number(sh(`du -sb ${JSON.stringify(dir)}`).split('\t')[0]) / 2 ** 30).toFixed(2)} GiB`);
// Warm the page cache before each run, so neither tool pays for the first read of the tree
// (the other tool's 4-5 GB image may have pushed parts of it out).
const warm = () => sh(`tar -cf - ${JSON.stringify(dir)} 2>/dev/null | cat > /dev/null`);

const env = { ...process.env, SOURCE_DATE_EPOCH: '1700000000' };
const ratios: { wall: number; cpu: number; du: number; rss: number }[] = [];
let size = 0;
for (let round = 1; round <= rounds; round++) {
  const a = join(out, 'ingot.img');
  const b = join(out, 'mke2fs.img');
  rmSync(a, { force: true });
  rmSync(b, { force: true });
  let la = '', lb = '';
  const runIngot = () => {
    warm();
    la = load();
    const r = timed(['node', built, 'mkfs', 'ext4', a, '--from-dir', dir, '--seed', 'bench'], { env });
    if (r.status !== 0) throw new Error(`ingot failed: ${r.stderr}`);
    size = statSync(a).size;
    return r;
  };
  const runMke2fs = () => {
    warm();
    lb = load();
    const r = timed(['mke2fs', '-q', '-F', '-t', 'ext4', '-d', dir, b, `${size / 1024}k`], { env });
    if (r.status !== 0) throw new Error(`mke2fs failed: ${r.stderr}`);
    return r;
  };
  // mke2fs gets the size ingot's `--size auto` chose, so ingot runs first once; later rounds alternate.
  let ri: Timed, rm: Timed;
  if (round % 2 === 1) { ri = runIngot(); rm = runMke2fs(); } else { rm = runMke2fs(); ri = runIngot(); }
  const fa = spawnSync('e2fsck', ['-fn', a], { encoding: 'utf8' }).status;
  const fb = spawnSync('e2fsck', ['-fn', b], { encoding: 'utf8' }).status;
  const row = (name: string, r: Timed, img: string, fsck: number | null, la: string) =>
    `| ${name} | ${r.wall.toFixed(1)} s | ${r.cpu.toFixed(1)} s | ${r.rssMB.toFixed(0)} MB | ${(duBytes(img) / 2 ** 20).toFixed(0)} MiB | ` +
    `${fsck === 0 ? 'clean' : `rc ${fsck}`} | ${la} |`;
  console.log(`\nround ${round} (${round % 2 === 1 ? 'ingot' : 'mke2fs'} first): filesystem size ${(size / 2 ** 20).toFixed(0)} MiB`);
  console.log('| tool | wall | CPU user+sys | peak RSS | du of image | e2fsck -fn | load avg before |\n|---|---|---|---|---|---|---|');
  console.log(row('ingot mkfs ext4 --from-dir', ri, a, fa, la));
  console.log(row('mke2fs -t ext4 -d', rm, b, fb, lb));
  const x = { wall: ri.wall / rm.wall, cpu: ri.cpu / rm.cpu, du: duBytes(a) / duBytes(b), rss: ri.rssMB };
  ratios.push(x);
  console.log(`ratios: wall ${x.wall.toFixed(2)}x, CPU ${x.cpu.toFixed(2)}x, du ${x.du.toFixed(3)}x; ingot peak RSS ${x.rss.toFixed(0)} MB (target ≤ ${RSS_TARGET_MB})`);
  if (fa !== 0 || fb !== 0) process.exitCode = 1;
}
if (rounds > 1) {
  const best = (k: 'wall' | 'cpu' | 'du' | 'rss') => Math.min(...ratios.map((x) => x[k]));
  const worst = (k: 'wall' | 'cpu' | 'du' | 'rss') => Math.max(...ratios.map((x) => x[k]));
  console.log(`\nover ${rounds} rounds: wall ${best('wall').toFixed(2)}–${worst('wall').toFixed(2)}x, CPU ${best('cpu').toFixed(2)}–${worst('cpu').toFixed(2)}x, ` +
    `du ${best('du').toFixed(3)}–${worst('du').toFixed(3)}x, ingot RSS ${best('rss').toFixed(0)}–${worst('rss').toFixed(0)} MB`);
}
rmSync(out, { recursive: true, force: true });
