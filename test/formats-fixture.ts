/** Shared helpers for the formats tests: a deterministic sparse test disk and the qemu-img oracle. */
import { spawnSync } from 'node:child_process';
import { createCipheriv } from 'node:crypto';
import { mkdtempSync, openSync, writeSync, closeSync, ftruncateSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireTool } from './helpers/tools.js';

export const MiB = 1024 * 1024;

/** Deterministic pseudo-random bytes (AES-CTR keystream of `seed`). */
export function prng(seed: string, n: number): Buffer {
  const key = Buffer.alloc(16); key.write(seed.padEnd(16, '.').slice(0, 16));
  const c = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  return c.update(Buffer.alloc(n));
}

/**
 * A sparse raw disk of `size` bytes with data of several kinds: random
 * (incompressible), text (compressible), an unaligned small write, a zero
 * block inside data, and data in the last (partial) cluster.
 */
export function makeDisk(path: string, size = 64 * MiB, seed = 'disk'): void {
  const fd = openSync(path, 'w');
  try {
    ftruncateSync(fd, size);
    writeSync(fd, prng(seed, 3 * MiB), 0, 3 * MiB, 1 * MiB);
    writeSync(fd, Buffer.alloc(128 * 1024), 0, 128 * 1024, 2 * MiB); // zeros written inside data
    const text = Buffer.from('ingot disk image test line\n'.repeat(200_000)).subarray(0, Math.floor(size / 8));
    writeSync(fd, text, 0, text.length, Math.floor(size * 0.3) + 4096);
    writeSync(fd, prng(seed + 'x', 4096), 0, 4096, Math.floor(size * 0.6) + 12345);
    const tail = prng(seed + 't', 70000);
    writeSync(fd, tail, 0, tail.length, size - tail.length - 1000);
  } finally {
    closeSync(fd);
  }
}

export function tmp(prefix = 'ingot-fmt-'): { dir: string; done(): void } {
  const dir = mkdtempSync(join(process.env.INGOT_TMP ?? tmpdir(), prefix));
  return { dir, done: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface Run { code: number; stdout: string; stderr: string }
export function run(cmd: string, args: string[], opts: { cwd?: string; input?: Buffer } = {}): Run {
  const r = spawnSync(cmd, args, { encoding: 'utf8', cwd: opts.cwd, maxBuffer: 1 << 28, input: opts.input });
  return { code: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

export function qemuImg(args: string[]): Run {
  requireTool('qemu-img');
  return run('qemu-img', args);
}

/** qemu-img info --output=json (with an explicit format when given). */
export function qemuInfo(path: string, fmt?: string): { format: string; 'virtual-size': number; 'backing-filename'?: string; [k: string]: unknown } {
  const r = qemuImg(['info', '--output=json', ...(fmt ? ['-f', fmt] : []), path]);
  if (r.code !== 0) throw new Error(`qemu-img info ${path}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

/**
 * qemu-img compare: exit 0 means identical contents. Without -s it tolerates a
 * size difference whose extra bytes are zero, so callers check sizes too.
 */
export function qemuCompare(a: string, aFmt: string, b: string, bFmt: string): Run {
  const r = qemuImg(['compare', '-f', aFmt, '-F', bFmt, a, b]);
  if (r.code === 0 && /size mismatch/i.test(r.stdout + r.stderr)) return { ...r, code: 1 };
  return r;
}

/** The qemu-img driver name of an ingot format. */
export function qemuFormatOf(ingotFormat: string): string {
  return ingotFormat === 'vhd' ? 'vpc' : ingotFormat;
}
