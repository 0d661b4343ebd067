/**
 * Transaction order, following rpm's lib/order.c: every Requires of a
 * package on another package of the transaction is an edge "provider before
 * requirer" (the first provider in the transaction, as rpmal returns it);
 * Requires(pre) edges are first-class. Strongly connected components
 * (dependency loops) are found with Tarjan's algorithm and ordered as units,
 * dependencies first; inside a loop the plain Requires edges are dropped
 * first (rpm "zaps" non-prereq relations to break a loop) so that
 * Requires(pre) is honoured, and only a loop made of Requires(pre) alone is
 * broken arbitrarily (by transaction order). Ties are broken by the order
 * the packages entered the transaction (pool order), keeping the result
 * deterministic.
 */
import { DEP_PRE, DEP_RICH, DepKind, type Pool } from '../repo/pool.js';
import type { Provides } from './deps.js';

interface Edge { to: number; pre: boolean }

/** Order `install` (pool ids) for installation. */
export function transactionOrder(pool: Pool, install: number[], provides: Provides): number[] {
  const nodes = [...install].sort((a, b) => a - b);
  const index = new Map<number, number>();
  nodes.forEach((p, i) => index.set(p, i));
  const N = nodes.length;
  const succ: Edge[][] = Array.from({ length: N }, () => []);
  const d = pool.deps.data;
  for (let i = 0; i < N; i++) {
    const p = nodes[i];
    const [s, e] = pool.depRange(p, DepKind.Requires);
    for (let k = s; k < e; k++) {
      const name = pool.str(d[3 * k]), flags = d[3 * k + 1];
      const pre = (flags & DEP_PRE) !== 0;
      let provs: number[];
      if (flags & DEP_RICH) {
        provs = [];
        const walk = (r: ReturnType<Provides['rich']>): void => {
          const set = provides.providersOf(r);
          if (set) { const q = set.find((x) => index.has(x)); if (q !== undefined) provs.push(q); return; }
          if ('args' in r) r.args.forEach(walk); else if ('then' in r) { walk(r.then); if (r.else) walk(r.else); }
        };
        walk(provides.rich(name));
      } else {
        const all = provides.what(name, flags, pool.str(d[3 * k + 2]));
        if (all.includes(p)) continue;
        const q = all.find((x) => index.has(x));
        provs = q === undefined ? [] : [q];
      }
      for (const q of provs) {
        if (q === p) continue;
        const from = index.get(q)!;
        const existing = succ[from].find((x) => x.to === i);
        if (existing) existing.pre ||= pre;
        else succ[from].push({ to: i, pre });
      }
    }
  }
  return orderGraph(N, succ).map((i) => nodes[i]);
}

/** Tarjan SCCs; returns component id per node (components numbered in reverse topological order). */
function tarjan(N: number, succ: Edge[][], keep: (e: Edge) => boolean, members: number[]): Map<number, number> {
  const idx = new Map<number, number>(), low = new Map<number, number>(), comp = new Map<number, number>();
  const onStack = new Set<number>();
  const stack: number[] = [];
  const inSet = new Set(members);
  let counter = 0, ncomp = 0;
  // iterative DFS to survive long chains
  for (const root of members) {
    if (idx.has(root)) continue;
    const work: [number, number][] = [[root, 0]];
    idx.set(root, counter); low.set(root, counter); counter++;
    stack.push(root); onStack.add(root);
    while (work.length) {
      const top = work[work.length - 1];
      const [v, ei] = top;
      const edges = succ[v];
      if (ei < edges.length) {
        top[1]++;
        const e = edges[ei];
        if (!keep(e) || !inSet.has(e.to)) continue;
        const w = e.to;
        if (!idx.has(w)) {
          idx.set(w, counter); low.set(w, counter); counter++;
          stack.push(w); onStack.add(w);
          work.push([w, 0]);
        } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
        continue;
      }
      work.pop();
      if (work.length) { const u = work[work.length - 1][0]; low.set(u, Math.min(low.get(u)!, low.get(v)!)); }
      if (low.get(v) === idx.get(v)) {
        let w: number;
        do { w = stack.pop()!; onStack.delete(w); comp.set(w, ncomp); } while (w !== v);
        ncomp++;
      }
    }
  }
  return comp;
}

/** Topological order of `members` along kept edges, loops handled recursively (pre edges survive longest). */
function orderSubset(N: number, succ: Edge[][], members: number[], keep: (e: Edge) => boolean, level: number): number[] {
  if (members.length <= 1) return members;
  const comp = tarjan(N, succ, keep, members);
  const groups = new Map<number, number[]>();
  for (const m of members) { const c = comp.get(m)!; let g = groups.get(c); if (!g) groups.set(c, g = []); g.push(m); }
  // condensed DAG: Kahn with smallest-member-first tie break
  const indeg = new Map<number, number>();
  const cs = [...groups.keys()];
  for (const c of cs) indeg.set(c, 0);
  const cedges = new Map<number, Set<number>>();
  for (const m of members) for (const e of succ[m]) {
    if (!keep(e) || !comp.has(e.to)) continue;
    const a = comp.get(m)!, b = comp.get(e.to)!;
    if (a === b) continue;
    let s = cedges.get(a);
    if (!s) cedges.set(a, s = new Set());
    if (!s.has(b)) { s.add(b); indeg.set(b, indeg.get(b)! + 1); }
  }
  const minOf = (c: number) => Math.min(...groups.get(c)!);
  const ready = cs.filter((c) => indeg.get(c) === 0).sort((a, b) => minOf(a) - minOf(b));
  const out: number[] = [];
  while (ready.length) {
    const c = ready.shift()!;
    const g = groups.get(c)!.sort((a, b) => a - b);
    if (g.length === 1) out.push(g[0]);
    else if (level === 0) out.push(...orderSubset(N, succ, g, (e) => e.pre, 1)); // break the loop: drop plain Requires
    else out.push(...g); // a loop of Requires(pre) alone: transaction order
    for (const b of cedges.get(c) ?? []) {
      indeg.set(b, indeg.get(b)! - 1);
      if (indeg.get(b) === 0) {
        const key = minOf(b);
        let pos = ready.findIndex((x) => minOf(x) > key);
        if (pos < 0) pos = ready.length;
        ready.splice(pos, 0, b);
      }
    }
  }
  return out;
}

function orderGraph(N: number, succ: Edge[][]): number[] {
  return orderSubset(N, succ, Array.from({ length: N }, (_, i) => i), () => true, 0);
}
