/**
 * Benchmark: extract every package of a set with ingot (one process, the
 * compiled library as `bin/ingot.js` runs it) and with `rpm2cpio FILE | cpio
 * -idm` per package, on the same input in the same run. Reports wall time,
 * CPU time (user+sys incl. children and threads) and peak RSS (GNU time's
 * maximum resident set size of the largest process) for both, and the ratios.
 *
 *   node --import tsx bench/rpm-extract.ts [DIR_WITH_RPMS] [--rounds N] [--decoders] [--no-build]
 *
 * One command: it compiles dist/ first (`tsc -p .`, skipped with --no-build) and, when DIR (default
 * /tmp/ingot-bench-repo) holds no packages, builds the set (~2 min, never in the repository):
 *   ../shared/corpus/deb2rpm-repo --out /tmp/ingot-bench-repo --level 3 --closure --list ../shared/corpus/lists/base-image.list
 * Rounds alternate which side goes first, and dirty pages are synced before each timed side, so neither
 * pays for the other's writeback. INGOT_BENCH_TMP=/dev/shm measures extraction without the disk.
 * `--decoders` also times the zstd decoders considered (zstd-napi, fzstd) on the set's payloads.
 */
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { extractRpm, openRpm } from '../src/rpm/index.js';
import { timed, type Timed } from './lib.js';

const self = fileURLToPath(import.meta.url);
const compiled = join(self, '..', '..', 'dist', 'src', 'rpm', 'index.js');

/**
 * The ingot side runs the compiled library (`npm run build`), as `bin/ingot.js` does for users; without
 * dist/ it falls back to the sources under tsx (≈0.5 s and ≈50 MB of loader on top).
 */
function childCommand(list: string, out: string): string[] {
  if (!existsSync(compiled)) return [process.execPath, '--import', 'tsx', self, '--child', list, out];
  const code = `import { readFileSync } from 'node:fs'; import { join } from 'node:path';
const { extractRpm } = await import(${JSON.stringify(pathToFileURL(compiled).href)});
const [list, out] = process.argv.slice(1);
for (const [i, f] of JSON.parse(readFileSync(list, 'utf8')).entries()) await extractRpm(f, join(out, String(i)));`;
  return [process.execPath, '--input-type=module', '-e', code, list, out];
}

async function child(files: string[], out: string): Promise<void> {
  for (const [i, f] of files.entries()) await extractRpm(f, join(out, String(i)));
}

function du(dir: string): number {
  const r = spawnSync('du', ['-sb', dir], { encoding: 'utf8' });
  return Number(r.stdout.split('\t')[0]);
}

async function decoders(files: string[]): Promise<void> {
  const require = createRequire(import.meta.url);
  const zstdNapi = require('zstd-napi') as { DecompressStream: new () => NodeJS.ReadWriteStream };
  const fzstd = require('fzstd') as { Decompress: new (cb: (chunk: Uint8Array, final: boolean) => void) => { push(c: Uint8Array, final?: boolean): void } };
  const payloads: Buffer[] = [];
  for (const f of files) {
    const p = await openRpm(f);
    if (p.compression === 'zstd') payloads.push(readFileSync(f).subarray(p.layout.payloadOffset));
  }
  const total = payloads.reduce((a, b) => a + b.length, 0);
  let t0 = performance.now();
  let outBytes = 0;
  for (const b of payloads) {
    await new Promise<void>((res, rej) => {
      const d = new zstdNapi.DecompressStream();
      d.on('data', (c: Buffer) => { outBytes += c.length; });
      d.on('end', () => res()); d.on('error', rej);
      d.end(b);
    });
  }
  const napi = performance.now() - t0;
  t0 = performance.now();
  let outJs = 0;
  for (const b of payloads) {
    const d = new fzstd.Decompress((c) => { outJs += c.length; });
    for (let i = 0; i < b.length; i += 1 << 20) d.push(b.subarray(i, i + (1 << 20)), i + (1 << 20) >= b.length);
  }
  const js = performance.now() - t0;
  console.log(`zstd decoders on ${payloads.length} payloads (${(total / 2 ** 20).toFixed(1)} MiB → ${(outBytes / 2 ** 20).toFixed(1)} MiB): `
    + `zstd-napi ${(napi / 1000).toFixed(2)} s, fzstd ${(js / 1000).toFixed(2)} s (${outJs === outBytes ? 'same output size' : 'OUTPUT DIFFERS'}), ratio fzstd/napi ${(js / napi).toFixed(2)}`);
}

const root = join(self, '..', '..');

/** The default set, built once with the corpus tool when missing. */
function ensureSet(dir: string): void {
  if (existsDir(join(dir, 'Packages')) && readdirSync(join(dir, 'Packages')).some((f) => f.endsWith('.rpm'))) return;
  const corpus = resolve(root, '..', 'shared', 'corpus');
  const tool = existsSync(join(corpus, 'deb2rpm-repo')) ? corpus : '/work/shared/corpus';
  console.log(`building the benchmark set in ${dir} with deb2rpm-repo (once, ~2 min)…`);
  const r = spawnSync(join(tool, 'deb2rpm-repo'), ['--out', dir, '--level', '3', '--closure', '--list', join(tool, 'lists', 'base-image.list'), '--quiet'], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error('deb2rpm-repo failed: build the set by hand (see the header of this file)');
}

const loadavg = (): string => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
const fmt = (t: Timed): string => `${t.wall.toFixed(2)} s wall, ${t.cpu.toFixed(2)} s CPU (${t.user.toFixed(2)} user + ${t.sys.toFixed(2)} sys), ${t.rssMB.toFixed(0)} MB peak RSS`;

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args[0] === '--child') { await child(JSON.parse(readFileSync(args[1]!, 'utf8')) as string[], args[2]!); return; }
  const ri = args.indexOf('--rounds');
  const rounds = ri >= 0 ? Number(args[ri + 1]) || 1 : 2;
  const dirArg = args.find((a, i) => !a.startsWith('--') && (ri < 0 || i !== ri + 1)) ?? '/tmp/ingot-bench-repo';
  if (!args.includes('--no-build')) {
    const b = spawnSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(root, 'tsconfig.json')], { stdio: 'inherit' });
    if (b.status !== 0) throw new Error('tsc failed: the benchmark measures the compiled library');
  }
  if (dirArg === '/tmp/ingot-bench-repo') ensureSet(dirArg);
  const dir = existsDir(join(dirArg, 'Packages')) ? join(dirArg, 'Packages') : dirArg;
  const files = readdirSync(dir).filter((f) => f.endsWith('.rpm')).sort().map((f) => resolve(dir, f));
  if (files.length === 0) throw new Error(`no .rpm files in ${dir}: build a set with ../shared/corpus/deb2rpm-repo (see the header of this file)`);
  const bytes = files.reduce((a, f) => a + statSync(f).size, 0);
  const work = resolve(process.env.INGOT_BENCH_TMP ?? '/tmp', `ingot-bench-rpm-${process.pid}`);
  mkdirSync(work, { recursive: true });
  const list = join(work, 'files.json');
  writeFileSync(list, JSON.stringify(files));
  for (const f of files) readFileSync(f); // warm the page cache for both sides
  console.log(`rpm extract benchmark: ${files.length} packages, ${(bytes / 2 ** 20).toFixed(1)} MiB of RPMs, into ${work}; ingot ${existsSync(compiled) ? 'compiled (dist/)' : 'under tsx (no dist/)'}`);
  const rows: { native: Timed; ingot: Timed }[] = [];
  const nat = join(work, 'native');
  const ing = join(work, 'ingot');
  const script = files.map((f, i) => `mkdir ${i} && (cd ${i} && rpm2cpio '${f}' | cpio -idm --quiet --no-absolute-filenames)`).join('\n');
  const side = (which: 'native' | 'ingot'): Timed => {
    const out = which === 'native' ? nat : ing;
    rmSync(out, { recursive: true, force: true });
    mkdirSync(out);
    spawnSync('sync');
    return which === 'native' ? timed(['bash', '-c', `set -e\n${script}`], { cwd: nat }) : timed(childCommand(list, ing));
  };
  for (let round = 1; round <= rounds; round++) {
    const load = loadavg();
    const order: ('native' | 'ingot')[] = round % 2 === 1 ? ['native', 'ingot'] : ['ingot', 'native'];
    const t: Partial<Record<'native' | 'ingot', Timed>> = {};
    for (const which of order) t[which] = side(which);
    const native = t.native!, ingot = t.ingot!;
    if (native.status !== 0 || ingot.status !== 0) console.log(`status native ${native.status} ${native.stderr}; ingot ${ingot.status} ${ingot.stderr}`);
    const [installed, ingotBytes] = [du(nat), du(ing)];
    rows.push({ native, ingot });
    console.log(`round ${round} (${order.join(' first, then ')}; load average ${load}):\n  native ${fmt(native)}\n  ingot  ${fmt(ingot)}\n`
      + `  wall ratio ${(ingot.wall / native.wall).toFixed(2)}x, CPU ratio ${(ingot.cpu / native.cpu).toFixed(2)}x; `
      + `extracted ${(installed / 2 ** 20).toFixed(1)} MiB (ingot ${(ingotBytes / 2 ** 20).toFixed(1)} MiB${installed === ingotBytes ? ', same' : ', DIFFERENT'})`);
  }
  const best = (k: 'native' | 'ingot', m: 'wall' | 'cpu' = 'wall') => Math.min(...rows.map((r) => r[k][m]));
  // Per-round ratios pair the two sides under the same load; their median resists one disturbed round.
  const median = (m: 'wall' | 'cpu'): string => {
    const v = rows.map((r) => r.ingot[m] / r.native[m]).sort((a, b) => a - b);
    const mid = v.length >> 1;
    return (v.length % 2 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2).toFixed(2);
  };
  console.log(`median of per-round ratios: wall ${median('wall')}x, CPU ${median('cpu')}x`);
  console.log(`best of ${rounds}: wall native ${best('native').toFixed(2)} s, ingot ${best('ingot').toFixed(2)} s → ratio ${(best('ingot') / best('native')).toFixed(2)}x (target ≤ 1.0x); `
    + `CPU native ${best('native', 'cpu').toFixed(2)} s, ingot ${best('ingot', 'cpu').toFixed(2)} s → ratio ${(best('ingot', 'cpu') / best('native', 'cpu')).toFixed(2)}x; `
    + `peak RSS ingot ${Math.max(...rows.map((r) => r.ingot.rssMB)).toFixed(0)} MB (target ≤ 200 MB); load average now ${loadavg()}`);
  if (args.includes('--decoders')) await decoders(files);
  rmSync(work, { recursive: true, force: true });
}

function existsDir(p: string): boolean { try { return statSync(p).isDirectory(); } catch { return false; } }

await main();
