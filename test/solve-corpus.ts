/**
 * Test corpus and dnf oracle helpers for the solver tests.
 *  - corpusRepo(list): a realistic RPM repository made from Debian packages by
 *    ../shared/corpus/deb2rpm-repo (its closure of the list, fast zstd level),
 *    built once and cached under .cache/ keyed by the list and options.
 *  - dnfResolve(repos, arch, requests): Debian's dnf (libsolv) resolving the
 *    same requests through its Python API, one process for all requests.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './helpers/cli.js';
import { requireTool } from './helpers/tools.js';
import { SHARED } from './solve-fixtures.js';

export interface OracleRequest { specs: string[]; weak: boolean }
export type OracleResult = { ok: true; install: string[] } | { ok: false; error: string };

export function corpusRepo(listName: string, level = 1): string {
  const list = join(SHARED, 'corpus/lists', listName);
  const key = createHash('sha256').update(readFileSync(list)).update(`level=${level}`).digest('hex').slice(0, 12);
  const out = join(ROOT, '.cache', `corpus-${listName.replace(/\W/g, '_')}-${key}`);
  if (existsSync(join(out, 'repodata/repomd.xml'))) return out;
  requireTool('rpmbuild');
  requireTool('createrepo_c');
  mkdirSync(join(ROOT, '.cache'), { recursive: true });
  // test files run in parallel: one builds, the others wait for it (mkdir is the lock)
  const lock = `${out}.lock`;
  const sleep = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
  for (;;) {
    try { mkdirSync(lock); break; } catch { /* held by another test process */ }
    const deadline = Date.now() + 30 * 60_000;
    while (existsSync(lock) && !existsSync(join(out, 'repodata/repomd.xml')) && Date.now() < deadline) sleep(2000);
    if (existsSync(join(out, 'repodata/repomd.xml'))) return out;
    rmSync(lock, { recursive: true, force: true }); // stale lock of a killed run
  }
  const tmp = `${out}.building`;
  rmSync(tmp, { recursive: true, force: true });
  const r = spawnSync(join(SHARED, 'corpus/deb2rpm-repo'), ['--out', tmp, '--level', String(level), '--closure', '--list', list], { encoding: 'utf8', maxBuffer: 1 << 28 });
  try {
    if (r.status !== 0) throw new Error(`deb2rpm-repo failed (${r.status}): ${r.stderr.slice(-2000)}`);
    renameSync(tmp, out);
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
  return out;
}

const ORACLE = `
import sys, json, tempfile, dnf, dnf.rpm, dnf.exceptions
cfg = json.load(sys.stdin)
root = tempfile.mkdtemp(prefix='dnfroot-')
base = dnf.Base()
c = base.conf
c.installroot = root
c.cachedir = root + '/cache'
c.persistdir = root + '/persist'
c.logdir = root
c.reposdir = []
c.gpgcheck = False
c.arch = cfg['arch']
c.basearch = dnf.rpm.basearch(cfg['arch'])
c.ignorearch = True
c.substitutions['releasever'] = '1'
c.substitutions['arch'] = cfg['arch']
c.substitutions['basearch'] = dnf.rpm.basearch(cfg['arch'])
c.metadata_expire = 0
for i, d in enumerate(cfg['repos']):
    base.repos.add_new_repo('r%d' % i, c, baseurl=['file://' + d])
base.fill_sack(load_system_repo=False)
try:
    base.read_comps(arch_filter=True)
except Exception:
    pass
out = []
for req in cfg['requests']:
    base.reset(goal=True)
    c.install_weak_deps = req['weak']
    specs = [s for s in req['specs'] if not s.startswith('-')]
    excl = [s[1:] for s in req['specs'] if s.startswith('-')]
    try:
        if excl:
            base.sack.add_excludes(base.sack.query().filter(name__glob=excl))
        base.install_specs(specs)
        base.resolve()
        out.append({'ok': True, 'install': sorted(str(p) for p in base.transaction.install_set)})
    except dnf.exceptions.Error as e:
        out.append({'ok': False, 'error': str(e)})
    finally:
        if excl:
            base.sack.reset_excludes()
print(json.dumps(out))
`;

export function dnfResolve(repos: string[], arch: string, requests: OracleRequest[]): OracleResult[] {
  requireTool('dnf');
  const dir = join(ROOT, '.cache');
  mkdirSync(dir, { recursive: true });
  const script = join(dir, 'dnf-oracle.py');
  writeFileSync(script, ORACLE);
  // dnf's own interpreter (Debian's python3 with python3-dnf), not whatever python3 is first on PATH
  const r = spawnSync('/usr/bin/python3', [script], { input: JSON.stringify({ repos, arch, requests }), encoding: 'utf8', maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`dnf oracle failed: ${r.stderr.slice(-2000)}`);
  return JSON.parse(r.stdout) as OracleResult[];
}
