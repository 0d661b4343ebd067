#!/usr/bin/env node
// Runs every test/**/*.test.ts in its own process (a crash or hang in one file
// cannot take the others down), after installing the Debian packages the
// oracles need. Ends with the line `N passed, N failed` from uvu's counts.
//   node scripts/run-tests.mjs [filter...]    only files whose path contains a filter
//   INGOT_TEST_TIMEOUT=seconds                per-file limit (default 1200)
//   INGOT_TEST_JOBS=n                         files run in parallel (default 2)
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(fileURLToPath(import.meta.url), '..', '..');
const filters = process.argv.slice(2);
const timeout = Number(process.env.INGOT_TEST_TIMEOUT ?? 1200) * 1000;
const jobs = Number(process.env.INGOT_TEST_JOBS ?? 2);

function find(dir) {
  const out = [];
  for (const e of readdirSync(dir).sort()) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) out.push(...find(p));
    else if (e.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

// Oracle tools, installed once up front (tests also check each tool they use
// through test/helpers/tools.ts, which installs or fails naming the package).
const setup = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'test/helpers/setup.ts')], { stdio: 'inherit', cwd: root });
if (setup.status !== 0) {
  console.log('setup failed: the oracle tools could not be installed');
  console.log('0 passed, 1 failed');
  process.exit(1);
}

const files = find(join(root, 'test')).filter((f) => filters.length === 0 || filters.some((x) => relative(root, f).includes(x)));
let passed = 0, failed = 0, skipped = 0;
const failures = [];

const strip = (s) => s.replace(/\x1b\[[0-9;]*m/g, '');

function runOne(file) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const child = spawn(process.execPath, ['--import', 'tsx', file], {
      cwd: root, env: { ...process.env, FORCE_COLOR: '0', NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'], detached: true,
    });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { out += d; });
    const timer = setTimeout(() => {
      out += `\n[run-tests] ${relative(root, file)} timed out after ${timeout / 1000}s\n`;
      try { process.kill(-child.pid, 'SIGKILL'); } catch {}
    }, timeout);
    child.on('close', (code) => {
      clearTimeout(timer);
      const text = strip(out);
      const total = Number(/Total:\s+(\d+)/.exec(text)?.[1] ?? NaN);
      const ok = Number(/Passed:\s+(\d+)/.exec(text)?.[1] ?? NaN);
      const sk = Number(/Skipped:\s+(\d+)/.exec(text)?.[1] ?? 0);
      let p = 0, f = 0;
      if (Number.isNaN(total) || Number.isNaN(ok)) { f = 1; }
      else { p = ok; f = total - ok; if (code !== 0 && f === 0) f = 1; } // uvu's Total excludes skipped tests
      passed += p; failed += f; skipped += sk;
      const secs = ((Date.now() - t0) / 1000).toFixed(1);
      const status = f ? 'FAIL' : 'ok  ';
      process.stdout.write(`${status} ${relative(root, file)}  (${p} passed, ${f} failed, ${secs}s)\n`);
      if (f) { failures.push(relative(root, file)); process.stdout.write(text.split('\n').map((l) => `     | ${l}`).join('\n') + '\n'); }
      resolve();
    });
  });
}

const queue = [...files];
await Promise.all(Array.from({ length: Math.max(1, jobs) }, async () => {
  while (queue.length) await runOne(queue.shift());
}));
if (failures.length) console.log(`failed files: ${failures.join(', ')}`);
if (files.length === 0) console.log('no test files matched');
console.log(`${passed} passed, ${failed} failed` + (skipped ? `, ${skipped} skipped` : ''));
process.exit(failed || files.length === 0 ? 1 : 0);
