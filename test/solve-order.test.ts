/**
 * Transaction order. Oracle: rpm itself (`rpm -ivh --test -vv` prints its
 * tsort result) on real RPMs of the deb2rpm corpus, given the packages in
 * the same transaction order: the orders must be identical. Also checked:
 * every relation outside a dependency loop is ordered provider-first by both
 * (inside loops rpm's own heuristic decides, and ingot follows it).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadRepos } from '../src/repo/index.js';
import { resolve, tsortRelations } from '../src/solve/index.js';
import { Provides } from '../src/solve/deps.js';
import { requireTool } from './helpers/tools.js';
import { corpusRepo } from './solve-corpus.js';

test('order agrees with rpm tsort on dependency edges; Requires(pre) first', async () => {
  requireTool('rpm');
  const dir = corpusRepo('cloud-server.list');
  const repos = await loadRepos([{ id: 'c', baseurl: dir }]);
  const pool = repos.pool;
  const prov = new Provides(pool, () => true);
  const report: string[] = [];
  let exact = 0;
  const requests = [['openssh-server'], ['systemd-sysv'], ['cloud-init'], ['sudo', 'cron', 'rsyslog', 'git', 'vim'], ['lvm2', 'cryptsetup', 'parted'], ['python3', 'apt']];
  for (const specs of requests) {
    const r = await resolve(repos, { specs, weakDeps: false });
    const root = mkdtempSync(join(tmpdir(), 'ingot-rpmroot-'));
    const out = spawnSync('rpm', ['-ivh', '--test', '-vv', '--root', root, '--nosignature', ...r.install.map((p) => p.location)], { cwd: dir, encoding: 'utf8', maxBuffer: 1 << 28 });
    rmSync(root, { recursive: true, force: true });
    const lines = `${out.stdout}${out.stderr}`.split('\n');
    const at = lines.findIndex((l) => l.includes('tsorting packages'));
    assert.ok(at >= 0, 'rpm printed its tsort');
    const rpmOrder: string[] = [];
    for (const l of lines.slice(at + 1)) { const m = /^D:\s+\d+\s+\d+\s+\d+\s+\d+\s+\+(\S+)$/.exec(l); if (!m) break; rpmOrder.push(m[1]); }
    assert.equal([...rpmOrder].sort(), [...r.order].sort());
    // edges: provider (first in transaction) before requirer
    const ids = new Map(r.install.map((p) => [p.nevra, p.id]));
    const edges = tsortRelations(pool, r.install.map((p) => p.id), prov);
    // reachability to find loops
    const succ = new Map<number, number[]>();
    for (const [q, p] of edges) { const l = succ.get(q) ?? []; l.push(p); succ.set(q, l); }
    const reach = (a: number, b: number) => { const seen = new Set([a]); const st = [a]; while (st.length) { const x = st.pop()!; for (const y of succ.get(x) ?? []) { if (y === b) return true; if (!seen.has(y)) { seen.add(y); st.push(y); } } } return false; };
    const pos = (order: string[]) => new Map(order.map((n, i) => [ids.get(n)!, i]));
    const mine = pos(r.order), theirs = pos(rpmOrder);
    let outside = 0;
    for (const [q, p] of edges) {
      if (reach(p, q)) continue; // inside a loop
      outside++;
      assert.ok(theirs.get(q)! < theirs.get(p)!, `rpm orders ${pool.nevra(q)} before ${pool.nevra(p)}`);
      assert.ok(mine.get(q)! < mine.get(p)!, `ingot orders ${pool.nevra(q)} before ${pool.nevra(p)}`);
    }
    const same = rpmOrder.filter((n, i) => r.order[i] === n).length;
    if (same === rpmOrder.length) exact++;
    report.push(`${specs.join('+')}: ${r.order.length} packages, ${outside} edges outside loops, ${same} identical positions`);
  }
  console.log(report.join('\n'));
  // rpm's queue also sorts by file colour, which metadata lacks; on these requests it does not matter
  assert.is(exact, requests.length, report.join('\n'));
});

test.run();
