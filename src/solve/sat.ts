/**
 * A CDCL SAT core: two-watched-literal unit propagation, first-UIP conflict
 * analysis with clause learning and non-chronological backjumping — the same
 * machinery libsolv's solver.c uses (propagate/analyze/revert). Decisions are
 * made by the caller (the package policy in solver.ts), as in libsolv, so the
 * search order is the policy's, not a generic heuristic's.
 *
 * Literals are non-zero integers: +v means variable v is true, -v false.
 */

export interface ClauseInfo {
  /** What the clause encodes, for explanations. */
  kind: string;
  /** Package (variable) the clause belongs to, or 0. */
  pkg: number;
  /** Dependency text, job text, or other detail. */
  dep?: string;
  /** Or: index of the dependency triple in the pool (formatted only for explanations). */
  depIdx?: number;
  /** Second package (conflicts/obsoletes/same-name). */
  other?: number;
}

export type PropagateResult = number; // -1 ok, otherwise the id of the conflicting clause

export class Sat {
  nvars = 0;
  readonly clauses: Int32Array[] = [];
  readonly info: (ClauseInfo | undefined)[] = [];
  /** For learned clauses: the original clauses they were derived from (capped), for explanations. */
  readonly origins: (number[] | undefined)[] = [];
  private watches: number[][] = [];
  /** Per variable: 0 unassigned, 1 true, -1 false. */
  value = new Int8Array(16);
  level = new Int32Array(16);
  reason = new Int32Array(16);
  readonly trail: number[] = [];
  readonly trailLim: number[] = [];
  private qhead = 0;
  /** Clauses added while propagation would have made them unit/conflicting at level 0. */
  private pendingUnits: number[] = [];
  learnedCount = 0;
  conflicts = 0;
  /** Incremented whenever assignments are undone (lets callers keep incremental views of the trail). */
  backtracks = 0;

  newVar(): number {
    const v = ++this.nvars;
    if (v >= this.value.length) {
      const n = Math.max(v + 1, this.value.length * 2);
      const grow = <T extends Int8Array | Int32Array>(a: T, C: new (n: number) => T): T => { const b = new C(n); b.set(a); return b; };
      this.value = grow(this.value, Int8Array);
      this.level = grow(this.level, Int32Array);
      this.reason = grow(this.reason, Int32Array);
    }
    this.watches.push([], []);
    while (this.watches.length < 2 * (v + 1)) this.watches.push([]);
    return v;
  }

  get decisionLevel(): number { return this.trailLim.length; }

  litValue(l: number): number {
    const v = this.value[l > 0 ? l : -l];
    return l > 0 ? v : -v;
  }

  private widx(l: number): number { return l > 0 ? 2 * l : -2 * l + 1; }

  /**
   * Add a clause (only at decision level 0, before solving or after a full
   * backtrack). Duplicate literals are removed; a tautology is dropped.
   * Returns the clause id, or -1 when dropped.
   */
  addClause(lits: number[], info?: ClauseInfo): number {
    const seen = new Set<number>();
    const out: number[] = [];
    for (const l of lits) {
      if (seen.has(-l)) return -1;
      if (!seen.has(l)) { seen.add(l); out.push(l); }
    }
    const id = this.clauses.length;
    this.clauses.push(Int32Array.from(out));
    this.info.push(info);
    this.origins.push(undefined);
    if (out.length >= 2) {
      this.watches[this.widx(out[0])].push(id);
      this.watches[this.widx(out[1])].push(id);
    }
    this.pendingUnits.push(id);
    return id;
  }

  private assign(l: number, reason: number): void {
    const v = l > 0 ? l : -l;
    this.value[v] = l > 0 ? 1 : -1;
    this.level[v] = this.decisionLevel;
    this.reason[v] = reason;
    this.trail.push(l);
  }

  /** Make pending new clauses effective: units get assigned, falsified ones are conflicts. */
  private flushPending(): number {
    const pend = this.pendingUnits;
    this.pendingUnits = [];
    for (const id of pend) {
      const c = this.clauses[id];
      if (c.length === 0) return id;
      if (c.length === 1) {
        const val = this.litValue(c[0]);
        if (val < 0) return id;
        if (val === 0) this.assign(c[0], id);
        continue;
      }
      // Re-pick watches for the current assignment (clauses added mid-search).
      let nonFalse = 0;
      for (let k = 0; k < c.length && nonFalse < 2; k++) if (this.litValue(c[k]) >= 0) nonFalse++;
      if (nonFalse === 0) return id;
    }
    return -1;
  }

  /** Unit propagation; returns -1 or the id of a falsified clause. */
  propagate(): PropagateResult {
    const pc = this.flushPending();
    if (pc >= 0) return pc;
    const trail = this.trail;
    while (this.qhead < trail.length) {
      const l = trail[this.qhead++];
      const falseLit = -l;
      const ws = this.watches[this.widx(falseLit)];
      let i = 0, j = 0;
      while (i < ws.length) {
        const cid = ws[i++];
        const c = this.clauses[cid];
        // make sure c[1] is the false literal
        if (c[0] === falseLit) { c[0] = c[1]; c[1] = falseLit; }
        if (this.litValue(c[0]) > 0) { ws[j++] = cid; continue; }
        let found = false;
        for (let k = 2; k < c.length; k++) {
          if (this.litValue(c[k]) >= 0) {
            c[1] = c[k]; c[k] = falseLit;
            this.watches[this.widx(c[1])].push(cid);
            found = true;
            break;
          }
        }
        if (found) continue;
        ws[j++] = cid;
        const v0 = this.litValue(c[0]);
        if (v0 < 0) {
          while (i < ws.length) ws[j++] = ws[i++];
          ws.length = j;
          this.qhead = trail.length;
          return cid;
        }
        if (v0 === 0) this.assign(c[0], cid);
      }
      ws.length = j;
    }
    return -1;
  }

  /** Open a new decision level with literal `l` (must be unassigned). */
  decide(l: number): void {
    this.trailLim.push(this.trail.length);
    this.assign(l, -1);
  }

  /** Undo all assignments above `lvl`. */
  backtrack(lvl: number): void {
    if (this.decisionLevel <= lvl) return;
    this.backtracks++;
    const lim = this.trailLim[lvl];
    for (let k = this.trail.length - 1; k >= lim; k--) {
      const l = this.trail[k];
      this.value[l > 0 ? l : -l] = 0;
    }
    this.trail.length = lim;
    this.trailLim.length = lvl;
    this.qhead = lim;
  }

  /**
   * First-UIP analysis of a conflict; learns a clause, backjumps and asserts
   * it. Returns false when the conflict is at level 0 (unsatisfiable).
   */
  resolveConflict(conflict: number): boolean {
    for (;;) {
      this.conflicts++;
      if (this.decisionLevel === 0) { this.finalConflict = conflict; return false; }
      const seen = new Uint8Array(this.nvars + 1);
      const learnt: number[] = [0];
      const origin = new Set<number>();
      let counter = 0;
      let p = 0;
      let cid = conflict;
      let idx = this.trail.length - 1;
      const dl = this.decisionLevel;
      do {
        const c = this.clauses[cid];
        const o = this.origins[cid];
        if (o) for (const x of o) origin.add(x); else origin.add(cid);
        for (let k = 0; k < c.length; k++) {
          const q = c[k];
          if (q === p) continue;
          const v = q > 0 ? q : -q;
          if (seen[v] || this.level[v] === 0) {
            if (this.level[v] === 0) this.collectLevel0(v, origin);
            continue;
          }
          seen[v] = 1;
          if (this.level[v] >= dl) counter++;
          else learnt.push(q);
        }
        while (!seen[Math.abs(this.trail[idx])]) idx--;
        p = this.trail[idx];
        const pv = Math.abs(p);
        cid = this.reason[pv];
        seen[pv] = 0;
        counter--;
        idx--;
      } while (counter > 0);
      learnt[0] = -p;
      let back = 0, maxI = 1;
      for (let k = 1; k < learnt.length; k++) {
        const lv = this.level[Math.abs(learnt[k])];
        if (lv > back) { back = lv; maxI = k; }
      }
      if (learnt.length > 1) { const t = learnt[1]; learnt[1] = learnt[maxI]; learnt[maxI] = t; }
      this.backtrack(back);
      const id = this.clauses.length;
      this.clauses.push(Int32Array.from(learnt));
      this.info.push({ kind: 'learned', pkg: 0 });
      this.origins.push([...origin].slice(0, 4096));
      if (learnt.length >= 2) {
        this.watches[this.widx(learnt[0])].push(id);
        this.watches[this.widx(learnt[1])].push(id);
      }
      this.learnedCount++;
      this.assign(learnt[0], id);
      const c2 = this.propagate();
      if (c2 < 0) return true;
      conflict = c2;
    }
  }

  finalConflict = -1;

  /** Original clauses behind a level-0 assignment (for explanations). */
  private collectLevel0(v: number, out: Set<number>, depth = 0): void {
    const r = this.reason[v];
    if (r < 0 || depth > 64 || out.size > 4096) return;
    const o = this.origins[r];
    if (o) { for (const x of o) out.add(x); return; }
    if (out.has(r)) return;
    out.add(r);
    for (const q of this.clauses[r]) {
      const w = q > 0 ? q : -q;
      if (w !== v) this.collectLevel0(w, out, depth + 1);
    }
  }

  /** The original clauses that together make the problem unsatisfiable (after a failed resolveConflict). */
  unsatCore(): number[] {
    const out = new Set<number>();
    const c = this.finalConflict;
    if (c < 0) return [];
    const o = this.origins[c];
    if (o) o.forEach((x) => out.add(x)); else out.add(c);
    for (const q of this.clauses[c]) this.collectLevel0(q > 0 ? q : -q, out);
    return [...out].sort((a, b) => a - b);
  }
}
