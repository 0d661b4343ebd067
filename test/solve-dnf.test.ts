/**
 * Oracle: Debian's dnf (libsolv underneath) resolving the same requests
 * against the same repositories installs exactly the same package set, or
 * fails too (and for "nothing provides" failures names the same capability).
 * Repositories: the small real ones in ../shared/fixtures/repos and a
 * 300-package closure of Debian's cloud-server set made by deb2rpm-repo
 * (versioned deps, virtual provides, alternatives as rich deps).
 * INGOT_LONG=1 also checks every package of the corpus on its own, with and
 * without weak deps.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { loadRepos, DepKind, type RepoSet } from '../src/repo/index.js';
import { resolve } from '../src/solve/index.js';
import { Provides } from '../src/solve/deps.js';
import { FIXTURE_REPOS } from './solve-fixtures.js';
import { corpusRepo, dnfResolve, type OracleRequest, type OracleResult } from './solve-corpus.js';

async function mine(repos: RepoSet, arch: string, q: OracleRequest): Promise<OracleResult> {
  try {
    const r = await resolve(repos, { specs: q.specs, weakDeps: q.weak, arch });
    return { ok: true, install: r.install.map((x) => x.nevra).sort() };
  } catch (e) {
    return { ok: false, error: (e as Error).message };
  }
}

async function compare(dirs: string[], arch: string, requests: OracleRequest[]): Promise<{ agree: number; diffs: string[] }> {
  const repos = await loadRepos(dirs.map((d, i) => ({ id: `r${i}`, baseurl: d })), { arch });
  const expected = dnfResolve(dirs, arch, requests);
  const diffs: string[] = [];
  let agree = 0;
  for (let i = 0; i < requests.length; i++) {
    const q = requests[i], d = expected[i], m = await mine(repos, arch, q);
    const label = `${q.specs.join(' ')} (weak ${q.weak ? 'on' : 'off'})`;
    if (d.ok && m.ok) {
      const extra = m.install.filter((x) => !d.install.includes(x));
      const missing = d.install.filter((x) => !m.install.includes(x));
      if (extra.length || missing.length) diffs.push(`${label}: extra ${extra.join(' ')}; missing ${missing.join(' ')}`);
      else agree++;
    } else if (!d.ok && !m.ok) {
      const want = [...d.error.matchAll(/nothing provides (\S+)/g)].map((x) => x[1]);
      const lost = want.filter((w) => !m.error.includes(`nothing provides ${w}`));
      if (lost.length) diffs.push(`${label}: both fail, but ingot does not explain "nothing provides ${lost.join(', ')}": ${m.error}`);
      else agree++;
    } else {
      diffs.push(`${label}: dnf ${d.ok ? `installs ${d.install.length}` : `fails: ${d.error.replace(/\n/g, ' | ')}`}, ingot ${m.ok ? `installs ${m.install.length}` : `fails: ${m.error}`}`);
    }
  }
  return { agree, diffs };
}

test('fixture repositories: katello-zoo, dnf-non-modular (x86_64), deltarepo (i686)', async () => {
  const zoo = join(FIXTURE_REPOS, 'katello-zoo');
  // walrus, duck and kangaroo are module artifacts there (modules.yaml): dnf's
  // modular filtering is not implemented, so they are left out on purpose.
  const zooReqs: OracleRequest[] = [
    { specs: ['lion'], weak: true }, { specs: ['penguin', 'squirrel'], weak: false }, { specs: ['@bird'], weak: true },
    { specs: ['armadillo'], weak: true }, { specs: ['armadillo-0.2'], weak: true }, { specs: ['armadillo-0.1-1.noarch'], weak: false },
    { specs: ['elephant'], weak: true }, { specs: ['cheetah', 'trout'], weak: true }, { specs: ['monkey'], weak: true },
    { specs: ['no-such-animal'], weak: true },
  ];
  const r1 = await compare([zoo], 'x86_64', zooReqs);
  const nm = join(FIXTURE_REPOS, 'dnf-non-modular-x86_64');
  const r2 = await compare([nm], 'x86_64', [
    { specs: ['httpd'], weak: true }, { specs: ['httpd-doc'], weak: false }, { specs: ['grub2'], weak: true },
    { specs: ['libnghttp2'], weak: true }, { specs: ['httpd-provides-name*'], weak: true },
  ]);
  const r3 = await compare([join(FIXTURE_REPOS, 'createrepo_c-deltarepo-repo2')], 'i686', [
    { specs: ['imsettings'], weak: true }, { specs: ['iok'], weak: false },
  ]);
  const diffs = [...r1.diffs, ...r2.diffs, ...r3.diffs];
  assert.equal(diffs, []);
  assert.is(r1.agree + r2.agree + r3.agree, 17);
});

test('deb2rpm corpus (cloud-server closure): 24 requests agree with dnf', async () => {
  const dir = corpusRepo('cloud-server.list');
  const repos = await loadRepos([{ id: 'c', baseurl: dir }]);
  const pool = repos.pool;
  const names = (await import('node:fs')).readFileSync(join(FIXTURE_REPOS, '../../corpus/lists/cloud-server.list'), 'utf8')
    .split(/\s+/).filter((w) => w && !w.startsWith('#'));
  // a virtual provide with several providers, and a pair of packages that conflict, found in the data
  const prov = new Provides(pool, () => true);
  let virtual = '';
  let conflictPair: string[] = [];
  for (const [nameId, entries] of [...pool.providesIndex()].sort((a, b) => a[0] - b[0])) {
    const n = pool.str(nameId);
    if (n.startsWith('/') || n.startsWith('deb(') || pool.byName(nameId).length) continue;
    const owners = new Set<string>();
    for (let k = 0; k < entries.length; k += 2) owners.add(pool.nameOf(entries[k]));
    if (owners.size >= 2) { virtual = n; break; }
  }
  for (let p = 0; p < pool.count && !conflictPair.length; p++) {
    for (const d of pool.depsOf(p, DepKind.Conflicts)) {
      if (conflictPair.length || d.name.startsWith('(')) continue;
      const other = prov.what(d.name, d.flags, d.evr).find((q) => pool.nameOf(q) !== pool.nameOf(p));
      if (other !== undefined) conflictPair = [pool.nameOf(p), pool.nameOf(other)];
    }
  }
  virtual ||= 'awk'; // apt's closure rarely keeps two providers of one capability
  const bash = pool.byName(pool.strings.lookup('bash'))[0];
  const reqs: OracleRequest[] = [
    ...['cloud-init', 'openssh-server', 'systemd-sysv', 'python3', 'git', 'sudo', 'lvm2', 'apt', 'rsyslog', 'chrony', 'man-db', 'locales']
      .flatMap((n, i) => [{ specs: [n], weak: i % 2 === 0 }]),
    { specs: names, weak: false },
    { specs: names, weak: true },
    { specs: ['/bin/sh'], weak: true },
    { specs: [virtual], weak: true },
    { specs: ['libsystemd*'], weak: false },
    { specs: [pool.nevra(bash)], weak: false },
    { specs: ['cloud-init', '-python3-jinja2'], weak: false },
    { specs: ['openssh-server', '-libssl3'], weak: true },
    { specs: ['no-such-package'], weak: true },
    { specs: conflictPair.length ? conflictPair : ['git', '-git-man'], weak: false },
    { specs: ['vim', 'curl', '-vim-runtime'], weak: false },
    { specs: ['cron', 'gnupg', 'tcpdump'], weak: true },
  ];
  const r = await compare([dir], 'x86_64', reqs);
  assert.equal(r.diffs, []);
  assert.is(r.agree, reqs.length);
  assert.ok(reqs.length >= 24);
});

if (process.env.INGOT_LONG) {
  test('long: every corpus package alone, weak deps on and off', async () => {
    const dir = corpusRepo('cloud-server.list');
    const repos = await loadRepos([{ id: 'c', baseurl: dir }]);
    const names = [...new Set(Array.from({ length: repos.pool.count }, (_, p) => repos.pool.nameOf(p)))].sort();
    const reqs = names.flatMap((n) => [{ specs: [n], weak: false }, { specs: [n], weak: true }]);
    const r = await compare([dir], 'x86_64', reqs);
    console.log(`long oracle: ${r.agree} of ${reqs.length} agree`);
    assert.equal(r.diffs, []);
  });
}

test.run();
