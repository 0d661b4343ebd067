/**
 * Transaction order as rpm computes it (lib/order.c, rpmtsOrder), restated:
 *
 *  - Relations: for every Requires (then Recommends and Suggests, as rpm 4.18
 *    records them too) of every package, in transaction order,
 *    the first package of the transaction providing it (rpmal's answer) gets
 *    a relation "provider → requirer"; rpmlib() and self requirements are
 *    ignored. A relation carries a "prereq" flag when the requirement is
 *    Requires(pre)/(post) (createrepo's pre="1"). A relation repeated right
 *    after itself only merges flags; otherwise each one counts, as in rpm.
 *    Relation lists are walked newest first (rpm prepends them).
 *  - Loops: strongly connected components are found with Tarjan's algorithm
 *    (started from each package in transaction order); each loop gets a
 *    count of its requirements from outside.
 *  - Ordering: a queue, kept sorted by the number of packages requiring each
 *    entry (more first; a newcomer goes before equals), starts with the
 *    packages requiring nothing, then one member of each loop without outside
 *    requirements. Taking a package from the queue appends it to the order and
 *    releases the packages requiring it; a loop is collected when reached:
 *    its members are ranked by distance (following requirements) from the
 *    members that pre-require another member — the members farthest from
 *    any Requires(pre) go first — and collected one after the other with the
 *    packages they release, so plain Requires inside a loop are the ones
 *    broken and Requires(pre) are honoured.
 *
 * rpm also prefers packages of the transaction's preferred file colour
 * (ELF64 on x86_64) in its queue; file colours are not in repository
 * metadata, so every package is treated as of the preferred colour.
 */
import { DEP_PRE, DEP_RICH, DepKind, type Pool } from '../repo/pool.js';
import type { Provides, RichDep } from './deps.js';

interface Rel { to: number; pre: boolean }

/** rpm's preferred colour on 64-bit hosts (ELF64). */
const PREFCOLOR = 2;

class TsortInfo {
  count = 0;      // relations to packages this one requires (predecessors)
  qcnt = 0;       // packages requiring this one
  suc = -1;       // queue link
  scc = 0;        // 0 collected, 1 trivial, ≥2 loop number
  low = 0;        // Tarjan low-link, then distance inside a loop
  relations: Rel[] = [];        // provider → requirers, newest first
  forward: Rel[] = [];          // requirer → providers, newest first
}

interface Scc { count: number; members: number[] }

/** rpm's tsort relations of a transaction: [provider, requirer, prereq] pool ids. */
export function tsortRelations(pool: Pool, install: number[], provides: Provides): [number, number, boolean][] {
  const { t, nodes } = buildRelations(pool, install, provides);
  const out: [number, number, boolean][] = [];
  t.forEach((ti, q) => { for (const r of ti.relations) out.push([nodes[q], nodes[r.to], r.pre]); });
  return out;
}

function buildRelations(pool: Pool, install: number[], provides: Provides): { t: TsortInfo[]; nodes: number[] } {
  const nodes = [...install];
  const index = new Map<number, number>();
  nodes.forEach((p, i) => index.set(p, i));
  const N = nodes.length;
  const t = Array.from({ length: N }, () => new TsortInfo());
  const d = pool.deps.data;

  const firstInTransaction = (list: number[]): number | undefined => {
    let best: number | undefined;
    for (const q of list) { const i = index.get(q); if (i !== undefined && (best === undefined || i < best)) best = i; }
    return best;
  };
  const richProvider = (r: RichDep): number | undefined => {
    const set = provides.providersOf(r);
    if (set) return firstInTransaction(set);
    const parts = 'args' in r ? r.args : 'then' in r ? [r.then, ...(r.else ? [r.else] : [])] : [];
    for (const a of parts) { const q = richProvider(a); if (q !== undefined) return q; }
    return undefined;
  };

  for (let pi = 0; pi < N; pi++) {
    const p = nodes[pi];
    // rpm 4.18 also records weak dependencies (never as prereqs) after the requires
    // (Supplements/Enhances reversed: the supplementing package goes first)
    for (const kind of [DepKind.Requires, DepKind.Recommends, DepKind.Suggests, DepKind.Supplements, DepKind.Enhances]) {
    const reversed = kind === DepKind.Supplements || kind === DepKind.Enhances;
    const [s, e] = pool.depRange(p, kind);
    for (let k = s; k < e; k++) {
      const name = pool.str(d[3 * k]), flags = d[3 * k + 1];
      let qi = flags & DEP_RICH ? richProvider(provides.rich(name)) : firstInTransaction(provides.what(name, flags, pool.str(d[3 * k + 2])));
      if (qi === undefined || qi === pi) continue;
      let pi2 = pi;
      if (reversed) { pi2 = qi; qi = pi; }
      const pre = kind === DepKind.Requires && (flags & DEP_PRE) !== 0;
      const tq = t[qi], tp = t[pi2];
      if (tq.relations.length && tq.relations[0].to === pi2) {
        tq.relations[0].pre ||= pre;
        if (tp.forward.length) tp.forward[0].pre ||= pre;
        continue;
      }
      tp.count++;
      tq.relations.unshift({ to: pi2, pre });
      tq.qcnt++;
      tp.forward.unshift({ to: qi, pre });
    }
    }
  }
  return { t, nodes };
}

/** Order `install` (pool ids, taken as the transaction's element order) for installation. */
export function transactionOrder(pool: Pool, install: number[], provides: Provides): number[] {
  const { t, nodes } = buildRelations(pool, install, provides);
  const N = nodes.length;
  const sccs = detectSccs(t);
  const order: number[] = [];
  // File colours are not in repository metadata: every package counts as the preferred colour
  // (guessing colour from the arch made agreement with rpm worse, see docs/repos.md).
  const color = nodes.map(() => PREFCOLOR);

  /** Insert into the queue whose head link is read/written through `head`, keeping it sorted by qcnt. */
  const addQ = (p: number, head: { get(): number; set(v: number): void }, tail: { get(): number; set(v: number): void }): void => {
    if (tail.get() < 0) { head.set(p); tail.set(p); t[p].suc = -1; return; }
    let prev = -1, q = head.get();
    while (q >= 0) {
      // rpm keeps packages of a non-preferred colour among their own colour
      if (color[p] !== PREFCOLOR && color[p] !== color[q]) { prev = q; q = t[q].suc; continue; }
      if (t[q].qcnt <= t[p].qcnt) break;
      prev = q;
      q = t[q].suc;
    }
    if (prev < 0) { t[p].suc = q; head.set(p); } else if (q < 0) { t[prev].suc = p; t[p].suc = -1; tail.set(p); } else { t[p].suc = q; t[prev].suc = p; }
  };
  const ref = (get: () => number, set: (v: number) => void) => ({ get, set });
  const sucRef = (q: number) => ref(() => t[q].suc, (v) => { t[q].suc = v; });

  const collectTE = (q: number, queueEnd: { get(): number; set(v: number): void },
    outer?: { head: { get(): number; set(v: number): void }; tail: { get(): number; set(v: number): void } }): void => {
    order.push(q);
    const tq = t[q];
    for (const rel of tq.relations) {
      const p = rel.to, tp = t[p];
      if (tp.scc === 0 || p === q) continue;
      if (--tp.count === 0) {
        if (tq.scc > 1 && tq.scc !== tp.scc) addQ(p, outer!.head, outer!.tail);
        else addQ(p, sucRef(q), queueEnd);
      }
      if (tp.scc > 1 && tp.scc !== tq.scc) {
        if (--sccs[tp.scc].count === 0) {
          if (outer) addQ(p, outer.head, outer.tail);
          else addQ(p, sucRef(q), queueEnd);
        }
      }
    }
    tq.scc = 0;
  };

  const collectScc = (p: number, queueEnd: { get(): number; set(v: number): void }): void => {
    const nr = t[p].scc;
    const scc = sccs[nr];
    let outerStart = t[p].suc;
    t[p].suc = -1;
    const BIG = 0x7fffffff;
    const queue: number[] = [];
    for (const m of scc.members) {
      t[m].low = BIG;
      for (const rel of t[m].forward) {
        if (rel.pre && t[rel.to].scc === nr) {
          if (rel.to !== m) { t[m].low = 0; queue.push(m); } else t[m].low = BIG >> 1;
          break;
        }
      }
    }
    if (!queue.length) for (const m of scc.members) if (t[m].low !== BIG) queue.push(m);
    for (let qi = 0; qi < queue.length; qi++) {
      const m = queue[qi];
      for (const rel of t[m].forward) {
        const nx = rel.to;
        if (t[nx].scc !== nr) continue;
        if (t[nx].low > t[m].low + 1) { t[nx].low = t[m].low + 1; queue.push(nx); }
      }
    }
    const outer = { head: ref(() => outerStart, (v) => { outerStart = v; }), tail: queueEnd };
    for (;;) {
      let best = -1, bestScore = 0;
      for (const m of scc.members) {
        if (t[m].scc === 0) continue;
        if (t[m].low >= bestScore) { best = m; bestScore = t[m].low; }
      }
      if (best < 0) break;
      let innerStart = -1, innerEnd = -1;
      const innerTail = ref(() => innerEnd, (v) => { innerEnd = v; });
      addQ(best, ref(() => innerStart, (v) => { innerStart = v; }), innerTail);
      for (let cur = innerStart; cur >= 0; cur = t[cur].suc) collectTE(cur, innerTail, outer);
    }
    t[p].suc = outerStart;
  };

  let head = -1, tail = -1;
  const headRef = ref(() => head, (v) => { head = v; });
  const tailRef = ref(() => tail, (v) => { tail = v; });
  for (let i = 0; i < N; i++) if (t[i].count === 0) { t[i].suc = -1; addQ(i, headRef, tailRef); }
  for (let s = 2; s < sccs.length; s++) if (sccs[s].count === 0) addQ(sccs[s].members[0], headRef, tailRef);
  for (let q = head; q >= 0; q = t[q].suc) {
    if (t[q].scc > 1) collectScc(q, tailRef);
    else if (t[q].scc === 1) collectTE(q, tailRef);
  }
  if (order.length !== N) {
    // cannot happen with rpm's algorithm; keep every package regardless
    const seen = new Set(order);
    for (let i = 0; i < N; i++) if (!seen.has(i)) order.push(i);
  }
  return order.map((i) => nodes[i]);
}

/** Tarjan over provider → requirer relations; trivial components get 1, loops 2, 3, … */
function detectSccs(t: TsortInfo[]): Scc[] {
  const sccs: Scc[] = [{ count: 0, members: [] }, { count: 0, members: [] }];
  const stack: number[] = [];
  let index = 0;
  // rpm numbers visits negatively (so "found" components can use positive numbers)
  const visit = (root: number): void => {
    const work: [number, number][] = [[root, 0]];
    index--; t[root].scc = index; t[root].low = index; stack.push(root);
    while (work.length) {
      const top = work[work.length - 1];
      const v = top[0];
      const rels = t[v].relations;
      if (top[1] < rels.length) {
        const w = rels[top[1]++].to;
        if (t[w].scc > 0) continue;
        if (t[w].scc === 0) {
          index--; t[w].scc = index; t[w].low = index; stack.push(w);
          work.push([w, 0]);
        } else t[v].low = Math.max(t[v].low, t[w].scc);
        continue;
      }
      work.pop();
      if (work.length) { const u = work[work.length - 1][0]; t[u].low = Math.max(t[u].low, t[v].low); }
      if (t[v].low === t[v].scc) {
        if (stack[stack.length - 1] === v) { stack.pop(); t[v].scc = 1; continue; }
        const nr = sccs.length;
        const at = stack.lastIndexOf(v);
        const members = stack.slice(at);
        for (const m of members) t[m].scc = nr;
        let count = 0;
        for (const m of members) {
          count += t[m].count;
          for (const rel of t[m].relations) if (rel.to !== m && t[rel.to].scc === nr) count--;
        }
        sccs.push({ count, members });
        stack.length = at;
      }
    }
  };
  for (let i = 0; i < t.length; i++) if (t[i].scc === 0) visit(i);
  return sccs;
}
