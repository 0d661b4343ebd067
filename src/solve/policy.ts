/**
 * Choosing among alternatives, following libsolv's policy.c as dnf uses it
 * (policy_filter_unwanted), in this order:
 *  1. prune to the best repository priority (dnf's `priority`, lower wins);
 *  2. prune to the best architecture (x86_64 over i686 …; noarch is kept);
 *  3. prune to the best version per name (rpmvercmp EVR; on a tie the
 *     cheaper repository, then pool order), leaving the list sorted by name
 *     (strcmp), then drop candidates obsoleted by another candidate;
 *  4. (choose mode) prune to candidates recommended by, or supplementing,
 *     packages already chosen, when there are any;
 *  5. (choose mode) reorder: candidates that are not the newest of their name
 *     in the whole pool go to the back ("dislike old versions"); among
 *     candidates providing the same capability with `=`/`<` versions, the
 *     higher provided version goes first (libsolv's sort_by_common_dep);
 *     candidates suggested by chosen packages go to the front.
 * Supplement mode (libsolv's POLICY_MODE_SUPPLEMENT) only does the reordering.
 * The first candidate left is installed; the others are alternatives the
 * CDCL search falls back on when it leads to a conflict. A rule that is
 * already satisfied by a chosen provider is never reconsidered, which is how
 * libsolv favours providers already picked for an earlier dependency.
 */
import type { Pool } from '../repo/pool.js';
import { evrCompare, rangesOverlap, rpmvercmp, type Evr } from './evr.js';
import { DepKind } from '../repo/pool.js';

export const enum PolicyMode { Choose, ChooseNoReorder, Recommend, Supplement }

export interface PolicyContext {
  pool: Pool;
  /** Lower is better; undefined = not installable. */
  archScore(p: number): number | undefined;
  isRecommended(p: number): boolean;
  isSupplementing(p: number): boolean;
  isSuggested(p: number): boolean;
  installable(p: number): boolean;
}

/**
 * Arch preference lists, best first; noarch is handled separately (always
 * kept). As in rpm/libsolv's arch policy, a 64-bit x86 system can also take
 * 32-bit x86 packages (only when nothing better provides the dependency:
 * prune_to_best_arch keeps the best arch) — one arch per name, so no multilib.
 */
export function archPolicy(arch: string): string[] {
  switch (arch) {
    case 'x86_64': case 'amd64': return ['x86_64', 'athlon', 'i686', 'i586', 'i486', 'i386'];
    case 'i686': return ['i686', 'i586', 'i486', 'i386'];
    case 'i586': return ['i586', 'i486', 'i386'];
    case 'aarch64': return ['aarch64'];
    case 'ppc64le': return ['ppc64le'];
    case 's390x': return ['s390x'];
    default: return [arch];
  }
}

function pruneToHighestPriority(ctx: PolicyContext, list: number[]): number[] {
  const pool = ctx.pool;
  let best = Infinity;
  for (const p of list) best = Math.min(best, pool.repoOf(p).priority);
  return list.filter((p) => pool.repoOf(p).priority === best);
}

function pruneToBestArch(ctx: PolicyContext, list: number[]): number[] {
  let best = Infinity;
  for (const p of list) {
    const s = ctx.archScore(p);
    if (s !== undefined && s > 0 && s < best) best = s;
  }
  if (best === Infinity) return list;
  const out = list.filter((p) => { const s = ctx.archScore(p); return s === 0 || s === best; });
  return out.length ? out : list;
}

function strcmp(a: string, b: string): number { return a < b ? -1 : a > b ? 1 : 0; }

/** libsolv's prune_to_best_version: one package per name (the newest), list sorted by name. */
export function pruneToBestVersion(ctx: PolicyContext, list: number[]): number[] {
  const pool = ctx.pool;
  const sorted = [...list].sort((a, b) => {
    const na = pool.name.data[a], nb = pool.name.data[b];
    if (na !== nb) return strcmp(pool.str(na), pool.str(nb));
    const sa = ctx.archScore(a) ?? 0, sb = ctx.archScore(b) ?? 0;
    if (sa !== sb && sa > 0 && sb > 0) return sa - sb;
    // cheaper repository first (dnf maps cost to libsolv's subpriority)
    const c = pool.repoOf(a).cost - pool.repoOf(b).cost;
    if (c) return c;
    return a - b;
  });
  const out: number[] = [];
  let best = -1;
  for (const p of sorted) {
    if (best < 0) { best = p; continue; }
    if (pool.name.data[best] !== pool.name.data[p]) { out.push(best); best = p; continue; }
    if (evrCompare(pool.pkgEvr(best), pool.pkgEvr(p)) < 0) best = p;
  }
  if (best >= 0) out.push(best);
  return out.length > 1 ? pruneObsoleted(pool, out) : out;
}

/** Drop candidates that another candidate obsoletes (by name and version, as dnf matches obsoletes). */
function pruneObsoleted(pool: Pool, list: number[]): number[] {
  const d = pool.deps.data;
  const obsoleted = new Set<number>();
  for (const p of list) {
    const [s, e] = pool.depRange(p, DepKind.Obsoletes);
    for (let i = s; i < e; i++) {
      const nameId = d[3 * i], flags = d[3 * i + 1], evr = d[3 * i + 2];
      for (const q of list) {
        if (q === p || pool.name.data[q] !== nameId) continue;
        if (!(flags & 14) || rangesOverlap(8, pool.pkgEvr(q), flags, pool.evrParsed(evr))) obsoleted.add(q);
      }
    }
  }
  if (!obsoleted.size || obsoleted.size === list.length) return list;
  return list.filter((p) => !obsoleted.has(p));
}

/** Is p older than another installable package of the same name and arch? */
function hasNewerSibling(ctx: PolicyContext, p: number): boolean {
  const pool = ctx.pool;
  for (const q of pool.byName(pool.name.data[p])) {
    if (q === p || pool.arch.data[q] !== pool.arch.data[p] || !ctx.installable(q)) continue;
    const rp = pool.repoOf(p).priority, rq = pool.repoOf(q).priority;
    if (rp !== rq) { if (rq < rp) return true; continue; }
    if (evrCompare(pool.pkgEvr(q), pool.pkgEvr(p)) > 0) return true;
  }
  return false;
}

/** EVR order where a side without a release matches any release (libsolv's EVRCMP_MATCH_RELEASE). */
function evrCompareMatchRelease(a: Evr, b: Evr): number {
  const ea = a.epoch ?? '0', eb = b.epoch ?? '0';
  const e = Number(ea) - Number(eb);
  if (e) return e < 0 ? -1 : 1;
  const v = rpmvercmp(a.version, b.version);
  if (v || !a.release || !b.release) return v;
  return rpmvercmp(a.release, b.release);
}

const SENSE_LT = 2, SENSE_EQ = 8;
const HASHLIKE = /^[0-9a-f]{4,}$/;

/**
 * libsolv's sort_by_common_dep: candidates that provide the same capability
 * with an `=` (or `<`, `<=`) version are ranked by that version, highest
 * first; a candidate's badness is the number of distinct higher versions
 * ahead of it, summed over its capabilities, and the list is stably sorted
 * by badness. `= <hash>` provides are ignored.
 */
function sortByCommonDep(pool: Pool, list: number[]): number[] {
  const d = pool.deps.data;
  const ents: { i: number; name: number; evr: number; lt: boolean }[] = [];
  list.forEach((p, i) => {
    const [s, e] = pool.depRange(p, DepKind.Provides);
    for (let k = s; k < e; k++) {
      const f = d[3 * k + 1] & 14, evr = d[3 * k + 2];
      if (!evr || (f !== SENSE_EQ && f !== (SENSE_EQ | SENSE_LT) && f !== SENSE_LT)) continue;
      if (f === SENSE_EQ && HASHLIKE.test(pool.str(evr))) continue;
      ents.push({ i, name: d[3 * k], evr, lt: f === SENSE_LT });
    }
  });
  if (ents.length < 2) return list;
  type Ent = (typeof ents)[number];
  const cmp = (a: Ent, b: Ent): number => {
    if (a.name !== b.name) return a.name - b.name;
    if (a.evr === b.evr && a.lt === b.lt) return 0;
    const r = evrCompareMatchRelease(pool.evrParsed(b.evr), pool.evrParsed(a.evr));
    if (!r && a.lt !== b.lt) return b.lt ? -1 : 1;
    return r;
  };
  ents.sort(cmp);
  const bad = new Array<number>(list.length).fill(0);
  let any = false, run = 0;
  for (let k = 0; k < ents.length; k++) {
    if (k && ents[k].name === ents[k - 1].name) {
      if (ents[k].i !== ents[k - 1].i && cmp(ents[k - 1], ents[k]) < 0) { run++; any = true; }
    } else run = 0;
    bad[ents[k].i] += run;
  }
  if (!any) return list;
  return list.map((p, i) => ({ p, i })).sort((a, b) => bad[a.i] - bad[b.i] || a.i - b.i).map((x) => x.p);
}

/** libsolv's reordering steps: newest-of-name first, common-dep versions, suggested first. */
function reorder(ctx: PolicyContext, list: number[]): number[] {
  const fresh = list.filter((p) => !hasNewerSibling(ctx, p));
  const old = list.filter((p) => hasNewerSibling(ctx, p));
  list = sortByCommonDep(ctx.pool, [...fresh, ...old]);
  const sug = list.filter((p) => ctx.isSuggested(p));
  return sug.length ? [...sug, ...list.filter((p) => !ctx.isSuggested(p))] : list;
}

export function filterUnwanted(ctx: PolicyContext, input: number[], mode: PolicyMode): number[] {
  let list = input;
  if (mode === PolicyMode.Supplement) return list.length > 1 ? reorder(ctx, list) : list;
  if (list.length > 1) list = pruneToHighestPriority(ctx, list);
  if (list.length > 1) list = pruneToBestArch(ctx, list);
  if (list.length > 1) list = pruneToBestVersion(ctx, list);
  if (list.length > 1 && mode !== PolicyMode.Recommend) {
    const rec = list.filter((p) => ctx.isRecommended(p) || ctx.isSupplementing(p));
    if (rec.length) list = rec;
    if (list.length > 1 && mode === PolicyMode.Choose) list = reorder(ctx, list);
  }
  return list;
}
