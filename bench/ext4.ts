/**
 * Benchmark: the same host directory through `ingot mkfs ext4 --from-dir`
 * and `mke2fs -t ext4 -d DIR` in the same run, at the same filesystem size
 * (the one ingot's `--size auto` picks). Reports wall time, peak RSS (GNU
 * time) and the disk blocks the image file uses (du), plus e2fsck -fn of both.
 *
 *   node --import tsx bench/ext4.ts [DIR] [--out TMPDIR] [--rounds N]
 *
 * DIR defaults to /usr/lib (on the Debian 12 builder: ~74,000 entries, ~4 GiB).
 * The CLI is run from dist/ when built (npm run build), else through tsx.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(fileURLToPath(import.meta.url), '..', '..');
const args = process.argv.slice(2);
const opt = (name: string, def: string) => { const i = args.indexOf(name); return i >= 0 ? args.splice(i, 2)[1]! : def; };
const out = resolve(opt('--out', '/tmp/ingot-bench-ext4'));
const rounds = Number(opt('--rounds', '1'));
const dir = resolve(args[0] ?? '/usr/lib');

function timed(cmd: string[], env: Record<string, string> = {}): { wall: number; rssMB: number; status: number | null; stdout: string; stderr: string } {
  const t0 = process.hrtime.bigint();
  const r = spawnSync('/usr/bin/time', ['-f', '%M', ...cmd], { encoding: 'utf8', maxBuffer: 1 << 26, env: { ...process.env, ...env } });
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const lines = r.stderr.trim().split('\n');
  return { wall, rssMB: Number(lines[lines.length - 1]) / 1024, status: r.status, stdout: r.stdout, stderr: lines.slice(0, -1).join('\n') };
}

const duBytes = (f: string) => statSync(f).blocks * 512;
const count = (d: string) => Number(spawnSync('sh', ['-c', `find ${JSON.stringify(d)} | wc -l`], { encoding: 'utf8' }).stdout.trim());
const bytesOf = (d: string) => Number(spawnSync('du', ['-sb', d], { encoding: 'utf8' }).stdout.split('\t')[0]);

mkdirSync(out, { recursive: true });
const built = join(root, 'dist/src/cli/main.js');
const ingotCmd = existsSync(built) ? ['node', built] : ['node', '--import', 'tsx', join(root, 'src/cli/main.ts')];
console.log(`tree: ${dir}: ${count(dir)} entries, ${(bytesOf(dir) / 2 ** 30).toFixed(2)} GiB; ingot CLI: ${existsSync(built) ? 'dist (compiled)' : 'tsx (source)'}`);
// Warm the page cache so neither tool pays for the first read of the tree.
spawnSync('sh', ['-c', `tar -cf - ${JSON.stringify(dir)} 2>/dev/null | cat > /dev/null`]);

const env = { SOURCE_DATE_EPOCH: '1700000000' };
for (let round = 1; round <= rounds; round++) {
  const a = join(out, 'ingot.img');
  const b = join(out, 'mke2fs.img');
  rmSync(a, { force: true });
  rmSync(b, { force: true });
  const ri = timed([...ingotCmd, 'mkfs', 'ext4', a, '--from-dir', dir, '--json', '--seed', 'bench'], env);
  if (ri.status !== 0) throw new Error(`ingot failed: ${ri.stderr}`);
  const size = (JSON.parse(ri.stdout) as { sizeBytes: number }).sizeBytes;
  const rm = timed(['mke2fs', '-q', '-F', '-t', 'ext4', '-d', dir, b, `${size / 1024}k`], env);
  if (rm.status !== 0) throw new Error(`mke2fs failed: ${rm.stderr}`);
  const fa = spawnSync('e2fsck', ['-fn', a], { encoding: 'utf8' });
  const fb = spawnSync('e2fsck', ['-fn', b], { encoding: 'utf8' });
  const row = (name: string, r: { wall: number; rssMB: number }, img: string, fsck: number | null) =>
    `| ${name} | ${r.wall.toFixed(2)} s | ${r.rssMB.toFixed(0)} MB | ${(duBytes(img) / 2 ** 20).toFixed(0)} MiB | ${fsck === 0 ? 'clean' : `rc ${fsck}`} |`;
  console.log(`\nround ${round}: filesystem size ${(size / 2 ** 20).toFixed(0)} MiB`);
  console.log('| tool | wall | peak RSS | du of image | e2fsck -fn |\n|---|---|---|---|---|');
  console.log(row('ingot mkfs ext4 --from-dir', ri, a, fa.status));
  console.log(row('mke2fs -t ext4 -d', rm, b, fb.status));
  console.log(`ratios: wall ${(ri.wall / rm.wall).toFixed(2)}x, du ${(duBytes(a) / duBytes(b)).toFixed(3)}x`);
}
rmSync(out, { recursive: true, force: true });
