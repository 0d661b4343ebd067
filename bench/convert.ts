/**
 * bench/convert: an 8 GiB-virtual raw disk holding ~1.5 GiB of data (half
 * incompressible, half text-like, in 1 MiB extents spread over the disk) is
 * converted to qcow2, compressed qcow2, vmdk, vhd and raw.xz by ingot and by
 * the native tool (qemu-img convert; xz -T2) on the same input in the same
 * run. Reports wall time, the ratio ingot/native and peak RSS (GNU time).
 *
 *   node --import tsx bench/convert.ts [--size-gib 8] [--data-gib 1.5] [--dir /tmp/ingot-bench] [--only qcow2,vhd]
 *
 * Targets (issue 4): uncompressed ≤ 1.0× qemu-img, compressed ≤ 1.2×, RSS ≤ 200 MB.
 */
import { spawnSync } from 'node:child_process';
import { createCipheriv } from 'node:crypto';
import { closeSync, existsSync, ftruncateSync, mkdirSync, openSync, rmSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(fileURLToPath(import.meta.url), '..', '..');
const arg = (name: string, def: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : def;
};
const GiB = 1024 ** 3, MiB = 1024 ** 2;
const size = Math.round(Number(arg('size-gib', '8')) * GiB);
const data = Math.round(Number(arg('data-gib', '1.5')) * GiB);
const dir = arg('dir', '/tmp/ingot-bench');
const only = arg('only', '').split(',').filter(Boolean);
mkdirSync(dir, { recursive: true });
const input = join(dir, `in-${size}-${data}.raw`);

function makeInput(): void {
  if (existsSync(input) && statSync(input).size === size) return;
  const fd = openSync(input, 'w');
  ftruncateSync(fd, size);
  const extents = Math.floor(data / MiB);
  const stride = Math.floor(size / MiB / extents) * MiB;
  const rnd = createCipheriv('aes-128-ctr', Buffer.alloc(16, 7), Buffer.alloc(16));
  const line = Buffer.from('Nov 22 03:00:00 host kernel: [    0.000000] ingot benchmark log line with some text\n');
  const text = Buffer.alloc(MiB);
  for (let i = 0; i < MiB; i += line.length) line.copy(text, i);
  for (let i = 0; i < extents; i++) {
    const chunk = i % 2 === 0 ? rnd.update(Buffer.alloc(MiB)) : text;
    writeSync(fd, chunk, 0, MiB, i * stride);
  }
  closeSync(fd);
}

interface Result { wall: number; rssMB: number }
function timed(cmd: string[], outFile?: string): Result {
  const args = ['-f', '%e %M', ...cmd];
  const r = spawnSync('/usr/bin/time', args, {
    encoding: 'utf8', stdio: ['ignore', outFile ? openSync(outFile, 'w') : 'ignore', 'pipe'],
    env: { ...process.env, SOURCE_DATE_EPOCH: '0' },
  });
  const last = r.stderr.trim().split('\n').pop() ?? '';
  const [wall, rss] = last.split(' ').map(Number);
  if (r.status !== 0 || wall === undefined || Number.isNaN(wall)) throw new Error(`${cmd.join(' ')} failed: ${r.stderr}`);
  return { wall: wall!, rssMB: Math.round(rss! / 1024) };
}

const ingot = (args: string[]) => [process.execPath, join(ROOT, 'bin', 'ingot.js'), ...args];
interface Case { name: string; compressed: boolean; ours: (out: string) => string[]; native: (out: string) => { cmd: string[]; stdout?: boolean }; ext: string }
const cases: Case[] = [
  { name: 'qcow2', compressed: false, ext: 'qcow2', ours: (o) => ingot(['convert', '-O', 'qcow2', input, o]), native: (o) => ({ cmd: ['qemu-img', 'convert', '-f', 'raw', '-O', 'qcow2', input, o] }) },
  { name: 'qcow2 -c', compressed: true, ext: 'qcow2', ours: (o) => ingot(['convert', '-c', '-O', 'qcow2', input, o]), native: (o) => ({ cmd: ['qemu-img', 'convert', '-c', '-f', 'raw', '-O', 'qcow2', input, o] }) },
  { name: 'vmdk', compressed: false, ext: 'vmdk', ours: (o) => ingot(['convert', '-O', 'vmdk', input, o]), native: (o) => ({ cmd: ['qemu-img', 'convert', '-f', 'raw', '-O', 'vmdk', input, o] }) },
  { name: 'vhd', compressed: false, ext: 'vhd', ours: (o) => ingot(['convert', '-O', 'vhd', input, o]), native: (o) => ({ cmd: ['qemu-img', 'convert', '-f', 'raw', '-O', 'vpc', input, o] }) },
  { name: 'raw.xz', compressed: true, ext: 'raw.xz', ours: (o) => ingot(['convert', '-O', 'raw.xz', '--threads', '2', input, o]), native: () => ({ cmd: ['xz', '-T2', '-c', input], stdout: true }) },
];

// Measure the compiled CLI (what `npm install` gives users), not tsx's on-the-fly compilation.
const build = spawnSync('npx', ['tsc', '-p', join(ROOT, 'tsconfig.json')], { encoding: 'utf8' });
if (build.status !== 0) throw new Error(`tsc failed: ${build.stdout}${build.stderr}`);
makeInput();
// Warm the page cache with the data once, so neither side pays the first read from disk.
spawnSync('sh', ['-c', 'cat "$1" > /dev/null', 'sh', input]);
console.log(`input: ${input} (${size / GiB} GiB virtual, ${(data / GiB).toFixed(2)} GiB data); load ${spawnSync('cat', ['/proc/loadavg'], { encoding: 'utf8' }).stdout.trim()}`);
console.log('| output | ingot s | native s | ratio | target | ingot RSS MB | native RSS MB |');
console.log('|---|---|---|---|---|---|---|');
const rows: unknown[] = [];
for (const c of cases) {
  if (only.length && !only.includes(c.name)) continue;
  const a = join(dir, `ingot.${c.ext}`), b = join(dir, `native.${c.ext}`);
  const nat = c.native(b);
  const n = timed(nat.cmd, nat.stdout ? b : undefined);
  const o = timed(c.ours(a));
  const ratio = o.wall / n.wall;
  const target = c.compressed ? 1.2 : 1.0;
  console.log(`| ${c.name} | ${o.wall.toFixed(2)} | ${n.wall.toFixed(2)} | ${ratio.toFixed(2)}× | ≤${target}× ${ratio <= target ? 'met' : 'MISSED'} | ${o.rssMB} | ${n.rssMB} |`);
  rows.push({ case: c.name, ingot: o, native: n, ratio, sizes: { ingot: statSync(a).size, native: statSync(b).size } });
  rmSync(a, { force: true }); rmSync(b, { force: true });
}
console.log(JSON.stringify(rows));
