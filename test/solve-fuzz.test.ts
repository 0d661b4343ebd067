/**
 * Fuzz oracle: seeded synthetic repositories full of alternatives (shared
 * virtual capabilities, several versions, rich or/if/unless/with deps,
 * conflicts, obsoletes, i686 vs x86_64, file deps only filelists satisfy,
 * recommends, supplements). For every package name, and for random
 * combinations, with weak deps on and off, Debian's dnf and ingot must
 * install the same set or both fail. INGOT_LONG=1 runs more seeds and sizes.
 *
 * Layered repositories (a distribution-like graph: a core every stack
 * depends on, virtual capabilities only the core provides, recommends) are
 * where libsolv's weak-dependency handling and branch minimisation show:
 * random single names and triples on a ≥ 1,200-package layered repository
 * must agree too.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadRepos } from '../src/repo/index.js';
import { resolve } from '../src/solve/index.js';
import { writeSynthRepo } from './solve-synth.js';
import { dnfResolve, type OracleRequest } from './solve-corpus.js';

const work = mkdtempSync(join(tmpdir(), 'ingot-fuzz-'));

/** Resolve every request with dnf (the oracle) and with ingot; the disagreements, and how many dnf could solve. */
async function compareWithDnf(dir: string, repos: Awaited<ReturnType<typeof loadRepos>>, reqs: OracleRequest[]): Promise<{ diffs: string[]; solved: number }> {
  const expected = dnfResolve([dir], 'x86_64', reqs);
  const diffs: string[] = [];
  let solved = 0;
  for (let i = 0; i < reqs.length; i++) {
    const d = expected[i]!;
    let got: string[] | undefined;
    try { got = (await resolve(repos, { specs: reqs[i]!.specs, weakDeps: reqs[i]!.weak })).install.map((p) => p.nevra).sort(); } catch { got = undefined; }
    if (d.ok) solved++;
    if (d.ok !== (got !== undefined) || (d.ok && JSON.stringify(d.install) !== JSON.stringify(got))) {
      const extra = d.ok && got ? ` (ingot also ${got.filter((q) => !d.install.includes(q)).join(' ')}; dnf also ${d.install.filter((q) => !got!.includes(q)).join(' ')})` : '';
      diffs.push(`${reqs[i]!.specs.join(' ')} weak=${reqs[i]!.weak}: dnf ${d.ok ? `${d.install.length} packages` : 'fails'}, ingot ${got ? `${got.length} packages` : 'fails'}${extra}`);
    }
  }
  return { diffs, solved };
}
const cases = process.env.INGOT_LONG ? [[1, 300], [2, 400], [3, 400], [4, 600], [5, 800]] : [[2, 400], [3, 400]];

for (const [seed, size] of cases) {
  test(`seed ${seed}, ${size} packages: every name alone and 40 random combinations agree with dnf`, async () => {
    const dir = join(work, `s${seed}`);
    await writeSynthRepo(dir, { packages: size, seed });
    const repos = await loadRepos([{ id: 'c', baseurl: dir }]);
    const names = [...new Set(Array.from({ length: repos.pool.count }, (_, p) => repos.pool.nameOf(p)))].sort();
    const reqs: OracleRequest[] = names.flatMap((n, i) => [{ specs: [n], weak: i % 2 === 0 }]);
    let x = seed * 7919;
    const next = () => { x = (x * 1103515245 + 12345) % 2147483648; return x; };
    for (let k = 0; k < 40; k++) reqs.push({ specs: [0, 1, 2].map(() => names[next() % names.length]), weak: k % 2 === 0 });
    const { diffs, solved } = await compareWithDnf(dir, repos, reqs);
    const fails = reqs.length - solved;
    assert.equal(diffs, []);
    assert.ok(fails > 0 && fails < reqs.length, 'the corpus has both solvable and unsolvable requests');
  });
}

const layered = process.env.INGOT_LONG
  ? [[71, 1200, 80], [72, 2000, 80], [73, 3000, 80], [70, 5000, 80], [74, 8000, 60], [75, 12000, 40]]
  : [[71, 1200, 30]];

for (const [seed, size, count] of layered) {
  test(`layered seed ${seed}, ${size} packages: ${count} random requests agree with dnf`, async () => {
    const dir = join(work, `l${seed}`);
    await writeSynthRepo(dir, { packages: size, seed, files: 8, layered: true, oldVersions: 0 });
    const repos = await loadRepos([{ id: 'c', baseurl: dir }]);
    const names = [...new Set(Array.from({ length: repos.pool.count }, (_, p) => repos.pool.nameOf(p)))].sort();
    let x = seed * 7919;
    const next = () => { x = (x * 1103515245 + 12345) % 2147483648; return x; };
    // mostly weak deps on (dnf's default), every fourth request without them; every third a triple
    const reqs: OracleRequest[] = Array.from({ length: count }, (_, k) => ({
      specs: k % 3 === 2 ? [0, 1, 2].map(() => names[next() % names.length]) : [names[next() % names.length]],
      weak: k % 4 !== 3,
    }));
    const { diffs, solved } = await compareWithDnf(dir, repos, reqs);
    if (process.env.INGOT_LONG) console.log(`layered seed ${seed} size ${size}: ${reqs.length - diffs.length}/${reqs.length} agree, ${solved} solvable`);
    assert.equal(diffs, []);
    assert.ok(solved >= reqs.length / 2, 'most requests are solvable');
  });
}

test.after(() => rmSync(work, { recursive: true, force: true }));
test.run();
