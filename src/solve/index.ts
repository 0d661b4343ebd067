/**
 * Public API of the solver:
 *
 *   const repos = await loadRepos(configs);
 *   const r = await resolve(repos, { specs: ['@core', 'kernel', '-firewalld'], arch: 'x86_64' });
 *   r.install   // PackageRef[] (nevra, repo, location, size, checksum …)
 *   r.order     // NEVRAs in rpm's transaction order
 *
 * Throws UnsatisfiableError (with explanations), SelectionError (no match,
 * unknown group).
 */
import { IngotError } from '../errors.js';
import type { RepoSet } from '../repo/index.js';
import { DepKind, type PackageInfo } from '../repo/pool.js';
import { Provides } from './deps.js';
import { archPolicy } from './policy.js';
import { buildJobs, expandSpecs, type GroupPackageType } from './select.js';
import { Solver, type SolveStats } from './solver.js';
import { transactionOrder } from './order.js';
import { globToRegExp } from '../repo/config.js';

export { rpmvercmp, evrCompare, evrCompareStr, parseEvr, rangesOverlap } from './evr.js';
export { SelectionError } from './select.js';
export { parseRichDep, type RichDep } from './deps.js';
export { transactionOrder, tsortRelations } from './order.js';

export interface ResolveRequest {
  /** Names, globs, NEVRAs, provides, /file/paths, @group, @^environment, -exclusions. */
  specs: string[];
  /** Target architecture (default x86_64; i686 for 32-bit images). */
  arch?: string;
  /** Install Recommends/Supplements (default true, like dnf's install_weak_deps). */
  weakDeps?: boolean;
  /** Extra name globs excluded from the whole transaction. */
  excludes?: string[];
  /** Group member types installed for @group (default mandatory + default). */
  groupPackageTypes?: GroupPackageType[];
}

export interface PackageRef {
  nevra: string;
  name: string;
  epoch: string;
  version: string;
  release: string;
  arch: string;
  repo: string;
  location: string;
  size: number;
  checksum: { type: string; value: string };
  /** Pool id, for fetchPackage. */
  id: number;
}

export interface Resolution {
  install: PackageRef[];
  order: string[];
  stats: SolveStats;
}

export class UnsatisfiableError extends IngotError {
  constructor(readonly problems: string[], request: string) {
    super('UNSATISFIABLE', `cannot resolve ${request}: ${problems.join('; ')}`);
  }
}

function toRef(i: PackageInfo): PackageRef {
  return { nevra: i.nevra, name: i.name, epoch: i.epoch, version: i.version, release: i.release, arch: i.arch, repo: i.repo, location: i.location, size: i.size, checksum: i.checksum, id: i.id };
}

export async function resolve(repos: RepoSet, req: ResolveRequest): Promise<Resolution> {
  const pool = repos.pool;
  const archs = archPolicy(req.arch ?? 'x86_64');
  const archScore = new Map<number, number>();
  archs.forEach((a, i) => { const id = pool.strings.lookup(a); if (id >= 0) archScore.set(id, i + 2); });
  const noarch = pool.strings.lookup('noarch');
  if (noarch >= 0) archScore.set(noarch, 0);
  const sel = expandSpecs(req.specs, repos.comps, req.groupPackageTypes);
  const excludes = [...sel.excludes, ...(req.excludes ?? []).map(globToRegExp)];
  const excludedName = new Map<number, boolean>();
  const installable = (p: number): boolean => {
    if (!archScore.has(pool.arch.data[p])) return false;
    if (!excludes.length) return true;
    const n = pool.name.data[p];
    let x = excludedName.get(n);
    if (x === undefined) { x = excludes.some((r) => r.test(pool.str(n))); excludedName.set(n, x); }
    return !x;
  };
  const score = (p: number) => archScore.get(pool.arch.data[p]);
  // File paths asked for directly need filelists when primary's short list lacks them.
  const filePaths = sel.specs.map((s) => s.text).filter((t) => t.startsWith('/'));
  if (filePaths.length) await repos.ensureFileProviders(filePaths);
  const provides = new Provides(pool, installable);
  const jobs = buildJobs(pool, provides, sel, installable);
  const solver = new Solver(pool, provides, { weakDeps: req.weakDeps ?? true, installable, archScore: score });
  solver.prepare(jobs);
  if (solver.missingFiles.size) {
    // one pass over filelists.xml for every file path the repositories require
    // and primary.xml does not list (dnf loads all file lists, too)
    const { start } = pool.providerIndex();
    const listed = (n: number) => n >= 0 && n + 1 < start.length && start[n + 1] > start[n];
    const unlisted = [...Provides.fileDepsOf(pool, [DepKind.Requires, DepKind.Conflicts, DepKind.Recommends, DepKind.Supplements])]
      .filter((f) => !listed(pool.strings.lookup(f)));
    await repos.ensureFileProviders([...solver.missingFiles, ...unlisted]);
    solver.resumeWithFiles();
  }
  const out = solver.solve(jobs);
  if (!out.ok) throw new UnsatisfiableError(out.problems, req.specs.join(' '));
  const install = out.install.map((p) => toRef(pool.info(p)));
  const order = transactionOrder(pool, out.install, provides).map((p) => pool.nevra(p));
  return { install, order, stats: out.stats };
}
