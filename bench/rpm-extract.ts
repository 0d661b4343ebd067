/**
 * Benchmark: extract every package of a set with ingot (one process, the
 * library as the installer uses it) and with `rpm2cpio FILE | cpio -idm` per
 * package, on the same input in the same run. Reports wall time and peak RSS
 * (GNU time's maximum resident set size of the largest process) for both.
 *
 *   node --import tsx bench/rpm-extract.ts [DIR_WITH_RPMS] [--rounds N] [--decoders]
 *
 * Build a set first (never in the repository), e.g.:
 *   ../shared/corpus/deb2rpm-repo --out /tmp/ingot-bench-repo --level 3 --closure --list ../shared/corpus/lists/base-image.list
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

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args[0] === '--child') { await child(JSON.parse(readFileSync(args[1]!, 'utf8')) as string[], args[2]!); return; }
  const ri = args.indexOf('--rounds');
  const rounds = ri >= 0 ? Number(args[ri + 1]) || 1 : 1;
  const dirArg = args.find((a, i) => !a.startsWith('--') && (ri < 0 || i !== ri + 1)) ?? '/tmp/ingot-bench-repo';
  const dir = existsDir(join(dirArg, 'Packages')) ? join(dirArg, 'Packages') : dirArg;
  const files = readdirSync(dir).filter((f) => f.endsWith('.rpm')).sort().map((f) => resolve(dir, f));
  if (files.length === 0) throw new Error(`no .rpm files in ${dir}: build a set with ../shared/corpus/deb2rpm-repo (see the header of this file)`);
  const bytes = files.reduce((a, f) => a + statSync(f).size, 0);
  // INGOT_BENCH_TMP=/dev/shm measures the extraction itself rather than the disk.
  const work = resolve(process.env.INGOT_BENCH_TMP ?? '/tmp', `ingot-bench-rpm-${process.pid}`);
  mkdirSync(work, { recursive: true });
  const list = join(work, 'files.json');
  writeFileSync(list, JSON.stringify(files));
  for (const f of files) readFileSync(f); // warm the page cache for both sides
  console.log(`rpm extract benchmark: ${files.length} packages, ${(bytes / 2 ** 20).toFixed(1)} MiB of RPMs`);
  const rows: { round: number; native: Timed; ingot: Timed; installed: number }[] = [];
  for (let round = 1; round <= rounds; round++) {
    const nat = join(work, 'native');
    const ing = join(work, 'ingot');
    rmSync(nat, { recursive: true, force: true }); rmSync(ing, { recursive: true, force: true });
    mkdirSync(nat); mkdirSync(ing);
    const script = files.map((f, i) => `mkdir ${i} && (cd ${i} && rpm2cpio '${f}' | cpio -idm --quiet --no-absolute-filenames)`).join('\n');
    const native = timed(['bash', '-c', `set -e\n${script}`], { cwd: nat });
    const installed = du(nat);
    const ingot = timed(childCommand(list, ing));
    if (native.status !== 0 || ingot.status !== 0) console.log(`status native ${native.status} ${native.stderr}; ingot ${ingot.status} ${ingot.stderr}`);
    const ingotBytes = du(ing);
    rows.push({ round, native, ingot, installed });
    console.log(`round ${round}: native ${native.wall.toFixed(2)} s wall, ${native.cpu.toFixed(2)} s CPU, ${native.rssMB.toFixed(0)} MB peak RSS; `
      + `ingot ${ingot.wall.toFixed(2)} s wall, ${ingot.cpu.toFixed(2)} s CPU, ${ingot.rssMB.toFixed(0)} MB; wall ratio ${(ingot.wall / native.wall).toFixed(2)}x, CPU ratio ${(ingot.cpu / native.cpu).toFixed(2)}x; `
      + `extracted ${(installed / 2 ** 20).toFixed(0)} MiB (ingot ${(ingotBytes / 2 ** 20).toFixed(0)} MiB)`);
  }
  const best = (k: 'native' | 'ingot', m: 'wall' | 'cpu' = 'wall') => Math.min(...rows.map((r) => r[k][m]));
  console.log(`best of ${rounds}: native ${best('native').toFixed(2)} s, ingot ${best('ingot').toFixed(2)} s, wall ratio ${(best('ingot') / best('native')).toFixed(2)}x; `
    + `CPU native ${best('native', 'cpu').toFixed(2)} s, ingot ${best('ingot', 'cpu').toFixed(2)} s, ratio ${(best('ingot', 'cpu') / best('native', 'cpu')).toFixed(2)}x; `
    + `peak RSS ingot ${Math.max(...rows.map((r) => r.ingot.rssMB)).toFixed(0)} MB`);
  if (args.includes('--decoders')) await decoders(files);
  rmSync(work, { recursive: true, force: true });
}

function existsDir(p: string): boolean { try { return statSync(p).isDirectory(); } catch { return false; } }

await main();
