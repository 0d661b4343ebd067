/**
 * bench/resolve: a Fedora-scale synthetic repository (70,000 packages,
 * createrepo-like primary/filelists with provides, sonames, virtual
 * capabilities, versioned and rich requires, file requires, recommends) —
 * time to load the metadata and solve a cloud-image-sized request, ingot
 * against Debian's dnf (libsolv) on the same repository in the same run.
 * Each side runs in its own process; wall time and peak RSS are measured
 * from outside (getrusage of the child).
 *
 * The ingot side runs the compiled library when dist/ exists (`npm run
 * build`, what bin/ingot.js runs), else the sources under tsx (≈0.5 s and
 * ≈50 MB of loader on top). CPU time is user + sys of each child.
 *
 *   node --import tsx bench/resolve.ts [packages=70000] [seed=70]
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = join(fileURLToPath(import.meta.url), '..', '..');
const packages = Number(process.argv[2] ?? 70000);
const seed = Number(process.argv[3] ?? 70);
const repo = join(tmpdir(), `ingot-bench-resolve-v3-${packages}-${seed}`);
const work = mkdtempSync(join(tmpdir(), 'ingot-bench-'));

function run(cmd: string, args: string[], input?: string): { wall: number; cpu: number; rssMiB: number; out: string; err: string; code: number } {
  // /usr/bin/time gives the child's peak RSS and CPU time (user + sys); wall time measured here
  const t0 = performance.now();
  const r = spawnSync('/usr/bin/time', ['-f', '%M %U %S', cmd, ...args], { input, encoding: 'utf8', maxBuffer: 1 << 28, cwd: ROOT });
  const wall = (performance.now() - t0) / 1000;
  const lines = r.stderr.trim().split('\n');
  const [rss, user, sys] = lines[lines.length - 1]!.split(' ').map(Number);
  return { wall, cpu: user! + sys!, rssMiB: rss! / 1024, out: r.stdout, err: lines.slice(0, -1).join('\n'), code: r.status ?? -1 };
}

if (!existsSync(join(repo, 'repodata/repomd.xml'))) {
  console.log(`generating ${packages} packages into ${repo} …`);
  writeFileSync(join(work, 'gen.mts'), `import { writeSynthRepo } from ${JSON.stringify(join(ROOT, 'test/solve-synth.ts'))};
await writeSynthRepo(${JSON.stringify(repo)}, { packages: ${packages}, seed: ${seed}, files: 30, layered: true, oldVersions: 0 });`);
  const g = run(process.execPath, ['--import', 'tsx', join(work, 'gen.mts')]);
  if (g.code !== 0) throw new Error(g.err);
}

// The request: 25 names from the repository's core, like a cloud image's package list.
const compiled = existsSync(join(ROOT, 'dist/src/solve/index.js')) && existsSync(join(ROOT, 'dist/src/repo/index.js'));
const lib = (m: string) => JSON.stringify(compiled ? pathToFileURL(join(ROOT, `dist/src/${m}/index.js`)).href : join(ROOT, `src/${m}/index.ts`));
const script = join(work, compiled ? 'ingot.mjs' : 'ingot.mts');
writeFileSync(script, `import { loadRepos } from ${lib('repo')};
import { resolve } from ${lib('solve')};
const t0 = performance.now();
const repos = await loadRepos([{ id: 'synth', baseurl: ${JSON.stringify(repo)} }]);
const t1 = performance.now();
const specs = Array.from({ length: 25 }, (_, i) => repos.pool.nameOf(1000 + 40 * i));
let install = [], error = '';
try { install = (await resolve(repos, { specs, weakDeps: true })).install.map((p) => p.nevra).sort(); } catch (e) { error = e.message; }
const t2 = performance.now();
console.log(JSON.stringify({ load: (t1 - t0) / 1000, solve: (t2 - t1) / 1000, specs, install, error }));`);
const mine = run(process.execPath, compiled ? [script] : ['--import', 'tsx', script]);
if (mine.code !== 0) throw new Error(mine.err);
const m = JSON.parse(mine.out) as { load: number; solve: number; specs: string[]; install: string[]; error: string };

const oracle = join(ROOT, '.cache', 'dnf-oracle.py');
if (!existsSync(oracle)) {
  // written by test/solve-corpus.ts; run the dnf test once to create it
  const { dnfResolve } = await import('../test/solve-corpus.js');
  dnfResolve([repo], 'x86_64', []);
}
const dnf = run('/usr/bin/python3', [oracle], JSON.stringify({ repos: [repo], arch: 'x86_64', requests: [{ specs: m.specs, weak: true }] }));
const d = JSON.parse(dnf.out) as { ok: boolean; install?: string[]; error?: string }[];
const same = d[0].ok && !m.error && JSON.stringify(d[0].install) === JSON.stringify(m.install);

console.log(`repository: ${packages} packages (seed ${seed}) at ${repo}`);
console.log(`request: ${m.specs.length} names, weak deps on → ingot ${m.error ? `fails: ${m.error.slice(0, 200)}` : `${m.install.length} packages`}, dnf ${d[0].ok ? `${d[0].install!.length} packages` : 'fails'}; same set: ${same}`);
if (!same && d[0].ok && !m.error) {
  const extra = m.install.filter((x) => !d[0].install!.includes(x));
  const missing = d[0].install!.filter((x) => !m.install.includes(x));
  console.log(`  differences: ingot also installs ${extra.length} (${extra.slice(0, 8).join(' ')}), not ${missing.length} (${missing.slice(0, 8).join(' ')})`);
}
console.log(`ingot (${compiled ? 'compiled dist/' : 'sources under tsx'}): ${mine.wall.toFixed(2)} s wall, ${mine.cpu.toFixed(2)} s CPU (load ${m.load.toFixed(2)} s, solve ${m.solve.toFixed(2)} s), peak RSS ${mine.rssMiB.toFixed(0)} MiB`);
console.log(`dnf:   ${dnf.wall.toFixed(2)} s wall, ${dnf.cpu.toFixed(2)} s CPU (fresh cache: load + solv cache + solve), peak RSS ${dnf.rssMiB.toFixed(0)} MiB`);
console.log(`load average: ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
console.log(`ratio: ${(mine.wall / dnf.wall).toFixed(2)}× dnf wall time, ${(mine.cpu / dnf.cpu).toFixed(2)}× dnf CPU time`);
