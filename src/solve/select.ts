/**
 * Turning what a user writes into solver jobs, the way dnf's `install`
 * interprets its arguments:
 *  - `@^env` an environment, `@group` a group (or an environment of that id),
 *    giving one job per mandatory/default package (missing ones skipped, as
 *    dnf does for groups);
 *  - `-glob` excludes packages by name from everything;
 *  - a package name or name glob (one job per matching name; packages that
 *    obsolete the named one are candidates too, as with dnf's obsoletes=1);
 *  - a NEVRA form: name.arch, name-[e:]v-r.arch, name-[e:]v-r, name-[e:]v;
 *  - a provide (`foo`, `foo >= 1.2`), or a file path.
 */
import { IngotError } from '../errors.js';
import { DepKind, type Pool } from '../repo/pool.js';
import type { Comps } from '../repo/comps.js';
import { globToRegExp, isGlob } from '../repo/config.js';
import { evrCompare, parseEvr, rangesOverlap, senseFromOp } from './evr.js';
import type { Provides } from './deps.js';
import type { Job } from './solver.js';

export class SelectionError extends IngotError {
  constructor(code: string, message: string, spec: string) {
    super(code, message, { field: spec });
  }
}

export interface Selection {
  /** Package names (globs) excluded with `-name`. */
  excludes: RegExp[];
  /** Specs in order, groups expanded (for jobs). */
  specs: { text: string; optional: boolean }[];
}

export type GroupPackageType = 'mandatory' | 'default' | 'optional' | 'conditional';

/** Expand groups/environments and split off exclusions. Unknown groups are errors. */
export function expandSpecs(specs: string[], comps: Comps, types: GroupPackageType[] = ['mandatory', 'default']): Selection {
  const excludes: RegExp[] = [];
  const out: Selection['specs'] = [];
  const addGroup = (id: string, spec: string) => {
    const g = comps.groups.get(id) ?? [...comps.groups.values()].find((x) => x.name === id);
    if (!g) throw new SelectionError('UNKNOWN_GROUP', `unknown group ${JSON.stringify(id)} (known: ${[...comps.groups.keys()].join(', ') || 'none'})`, spec);
    for (const p of g.packages) if (types.includes(p.type)) out.push({ text: p.name, optional: true });
  };
  const addEnv = (id: string, spec: string) => {
    const e = comps.environments.get(id) ?? [...comps.environments.values()].find((x) => x.name === id);
    if (!e) throw new SelectionError('UNKNOWN_GROUP', `unknown environment ${JSON.stringify(id)} (known: ${[...comps.environments.keys()].join(', ') || 'none'})`, spec);
    for (const g of e.groups) addGroup(g, spec);
    for (const o of e.options) if (o.default) addGroup(o.id, spec);
  };
  for (const raw of specs) {
    const s = raw.trim();
    if (!s) continue;
    if (s.startsWith('@^')) addEnv(s.slice(2), s);
    else if (s.startsWith('@')) {
      const id = s.slice(1);
      if (comps.groups.has(id) || [...comps.groups.values()].some((x) => x.name === id)) addGroup(id, s);
      else addEnv(id, s);
    } else if (s.startsWith('-')) excludes.push(globToRegExp(s.slice(1)));
    else out.push({ text: s, optional: false });
  }
  return { excludes, specs: out };
}

/** Candidates for one spec; an empty list means "no match". */
export function matchSpec(pool: Pool, provides: Provides, spec: string, installable: (p: number) => boolean): number[][] {
  // file path
  if (spec.startsWith('/')) return [provides.what(spec, 0, '')];
  // name or name glob
  const byName = (re: RegExp | string): number[][] => {
    const ids = typeof re === 'string' ? [pool.strings.lookup(re)].filter((x) => x >= 0) : pool.names().filter((n) => re.test(pool.str(n))).sort((a, b) => (pool.str(a) < pool.str(b) ? -1 : 1));
    return ids.map((n) => [...pool.byName(n)].filter(installable)).filter((l) => l.length);
  };
  const named = byName(isGlob(spec) ? globToRegExp(spec) : spec);
  if (named.length) return named.map((l) => withObsoleters(pool, l, installable));
  // NEVRA forms
  for (const m of nevraForms(spec)) {
    const nameId = pool.strings.lookup(m.name);
    if (nameId < 0) continue;
    const l = [...pool.byName(nameId)].filter((p) => installable(p) && (!m.arch || pool.archOf(p) === m.arch) && evrMatches(pool, p, m.evr));
    if (l.length) return [l];
  }
  // provide, possibly versioned ("foo >= 1.0")
  const rel = /^(\S+)\s*(<=|>=|=|==|<|>)\s*(\S+)$/.exec(spec);
  if (rel) return [provides.what(rel[1], senseFromOp(rel[2])!, rel[3])];
  return [provides.what(spec, 0, '')];
}

function evrMatches(pool: Pool, p: number, evr: string | undefined): boolean {
  if (!evr) return true;
  const want = parseEvr(evr);
  const have = pool.pkgEvr(p);
  if (want.epoch !== undefined && (want.epoch || '0') !== (have.epoch || '0')) return false;
  if (want.release === undefined) return evrCompare({ version: want.version }, { version: have.version }) === 0;
  return rangesOverlap(8, have, 8, want) && evrCompare({ ...want, epoch: want.epoch ?? have.epoch }, have) === 0;
}

/** Possible (name, evr, arch) splits of a NEVRA-like string, most specific first. */
function nevraForms(s: string): { name: string; evr?: string; arch?: string }[] {
  const out: { name: string; evr?: string; arch?: string }[] = [];
  const dot = s.lastIndexOf('.');
  const withArch = dot > 0 ? { base: s.slice(0, dot), arch: s.slice(dot + 1) } : undefined;
  const splits = (base: string, arch?: string) => {
    const d1 = base.lastIndexOf('-');
    if (d1 > 0) {
      const d2 = base.lastIndexOf('-', d1 - 1);
      if (d2 > 0) out.push({ name: base.slice(0, d2), evr: base.slice(d2 + 1), arch });
      out.push({ name: base.slice(0, d1), evr: base.slice(d1 + 1), arch });
    }
    if (arch) out.push({ name: base, arch });
  };
  if (withArch) splits(withArch.base, withArch.arch);
  splits(s);
  return out;
}

/** Add packages whose Obsoletes match one of the named packages (dnf adds obsoleters to a name's candidates). */
function withObsoleters(pool: Pool, named: number[], installable: (p: number) => boolean): number[] {
  const nameId = pool.name.data[named[0]];
  const out = new Set(named);
  const d = pool.deps.data;
  for (const p of pool.obsoletersOf(nameId)) {
    if (out.has(p) || !installable(p)) continue;
    const [s, e] = pool.depRange(p, DepKind.Obsoletes);
    for (let i = s; i < e; i++) {
      if (d[3 * i] !== nameId) continue;
      const flags = d[3 * i + 1];
      if (named.some((q) => !(flags & 14) || rangesOverlap(8, pool.pkgEvr(q), flags, pool.evrParsed(d[3 * i + 2])))) { out.add(p); break; }
    }
  }
  return [...out].sort((a, b) => a - b);
}

/** Build jobs; a non-optional spec without any match is a SelectionError ("no match for argument"). */
export function buildJobs(pool: Pool, provides: Provides, sel: Selection, installable: (p: number) => boolean): Job[] {
  const jobs: Job[] = [];
  const missing: string[] = [];
  for (const { text, optional } of sel.specs) {
    const lists = matchSpec(pool, provides, text, installable).filter((l) => l.length);
    if (!lists.length) { if (!optional) missing.push(text); continue; }
    for (const l of lists) jobs.push({ candidates: l, text });
  }
  if (missing.length) throw new SelectionError('NO_MATCH', `no package matches ${missing.map((m) => JSON.stringify(m)).join(', ')}`, missing.join(' '));
  return jobs;
}
