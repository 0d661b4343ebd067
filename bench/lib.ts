/** Shared benchmark helpers: timing a command with GNU time (wall, CPU, peak RSS). */
import { spawnSync } from 'node:child_process';

export interface Timed { wall: number; cpu: number; user: number; sys: number; rssMB: number; status: number | null; stderr: string }

/** Wall time, CPU time (user+sys incl. children) and peak RSS of the largest process of `cmd`. */
export function timed(cmd: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Timed {
  const t0 = process.hrtime.bigint();
  const r = spawnSync('/usr/bin/time', ['-f', '%M %U %S', ...cmd], { cwd: opts.cwd, env: opts.env ?? process.env, encoding: 'utf8', maxBuffer: 1 << 26 });
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const lines = r.stderr.trim().split('\n');
  const [rss, u, s] = lines[lines.length - 1]!.split(' ').map(Number);
  return { wall, cpu: u! + s!, user: u!, sys: s!, rssMB: rss! / 1024, status: r.status, stderr: lines.slice(0, -1).join('\n') };
}

export const ratio = (a: number, b: number): string => `${(a / b).toFixed(2)}×`;
