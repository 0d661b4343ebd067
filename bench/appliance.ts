/**
 * Appliance bundle vs the native tools on the same sparse raw disk:
 * ingot's writeAppliance (sparse tar member + SHA-256 while streaming + gzip)
 * against `sha256sum disk && tar -cSzf` (GNU tar's sparse detection, gzip
 * through tar -z), which is what appliance-creator's packaging amounts to.
 *
 *   node --import tsx bench/appliance.ts [virtual GiB, default 4] [data MiB, default 768]
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, openSync, closeSync, rmSync, statSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir, loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { timed, ratio } from './lib.js';

if (process.argv[2] === '--run') {
  const { RawSource } = await import('../formats/raw.js');
  const { writeAppliance } = await import('../src/build/appliance.js');
  const src = await RawSource.open(process.argv[3]!);
  await writeAppliance(process.argv[4]!, [{ file: 'bench-sda.raw', source: src }], { name: 'bench', arch: 'x86_64', mtime: 0 });
  await src.close();
  process.exit(0);
}

const GiB = 2 ** 30, MiB = 2 ** 20;
const virtual = Number(process.argv[2] ?? 4) * GiB;
const dataMiB = Number(process.argv[3] ?? 768);
const work = mkdtempSync(join(tmpdir(), 'ingot-bench-appliance-'));
const dir = join(work, 'bench');
mkdirSync(dir);
const raw = join(dir, 'bench-sda.raw');
// 1 MiB extents spread over the disk: half random (incompressible), half text.
const fd = openSync(raw, 'w');
const text = Buffer.from('ingot appliance benchmark line of fairly compressible text 0123456789\n'.repeat(Math.ceil(MiB / 70))).subarray(0, MiB);
const stride = Math.floor(virtual / dataMiB / MiB) * MiB;
for (let i = 0; i < dataMiB; i++) writeSync(fd, i % 2 ? randomBytes(MiB) : text, 0, MiB, i * stride);
closeSync(fd);
execFileSync('truncate', ['-s', String(virtual), raw]);
execFileSync('cat', [raw], { stdio: 'ignore', maxBuffer: 1 << 20 }); // warm the page cache for both sides

const self = fileURLToPath(import.meta.url);
const load = loadavg()[0]!.toFixed(1);
const rows: [string, ReturnType<typeof timed>][] = [];
for (let run = 0; run < 2; run++) {
  const ing = timed([process.execPath, '--import', 'tsx', self, '--run', raw, join(work, `ingot${run}.tar.gz`)]);
  if (ing.status !== 0) throw new Error(ing.stderr);
  const nat = timed(['sh', '-c', `sha256sum ${raw} >/dev/null && tar -cSzf ${join(work, `native${run}.tar.gz`)} -C ${work} bench`]);
  if (nat.status !== 0) throw new Error(nat.stderr);
  rows.push([`ingot run ${run + 1}`, ing], [`sha256sum + tar -cSzf run ${run + 1}`, nat]);
}
console.log(`disk ${virtual / GiB} GiB virtual, ${dataMiB} MiB data; load average at start ${load}`);
console.log('| side | wall s | CPU s | peak RSS MB | output MB |');
console.log('|---|---|---|---|---|');
for (const [i, [name, t]] of rows.entries()) {
  const file = join(work, `${name.startsWith('ingot') ? 'ingot' : 'native'}${Math.floor(i / 2)}.tar.gz`);
  console.log(`| ${name} | ${t.wall.toFixed(1)} | ${t.cpu.toFixed(1)} | ${t.rssMB.toFixed(0)} | ${(statSync(file).size / MiB).toFixed(1)} |`);
}
const best = (k: 'wall' | 'cpu', side: number) => Math.min(rows[side]![1][k], rows[side + 2]![1][k]);
console.log(`ratio ingot/native (best of 2): wall ${ratio(best('wall', 0), best('wall', 1))}, CPU ${ratio(best('cpu', 0), best('cpu', 1))}`);
rmSync(work, { recursive: true, force: true });
