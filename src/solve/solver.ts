/**
 * The dependency solver: package rules are encoded as clauses for the CDCL
 * core (sat.ts) and decisions are taken the way libsolv's solver_run_sat
 * takes them for an install into an empty root:
 *
 *  1. job rules: for each request not yet satisfied, install the candidate
 *     the policy prefers;
 *  2. dependency rules: scan the requires rules (in libsolv's unified rule
 *     order: later packages first) for one whose package is installed and
 *     which no installed provider satisfies; rules with a single policy-best
 *     candidate are decided first, rules with real alternatives are postponed
 *     to a second pass with the full policy (policy.ts);
 *  3. weak dependencies: Supplements first, then Recommends of installed
 *     packages (in installation order), each a decision that may be undone by
 *     conflict analysis, never a failure;
 *  4. minimisation (libsolv's branches): every choice among several
 *     candidates is remembered with its decision level; once a solution is
 *     found, the earliest choice whose untried alternative got installed
 *     anyway later (or, failing that, whose alternative is now recommended
 *     while the chosen one is not) is re-taken with that alternative, and
 *     the search continues from there — so a provider picked by name order
 *     is dropped when another provider comes in for other reasons;
 *  5. everything still undecided is not installed.
 *
 * A conflict anywhere is analysed (first UIP), a clause is learned and the
 * search backjumps — so alternatives, conflicts, obsoletes and rich
 * dependencies are resolved by search, not by a greedy walk. When the
 * problem is unsatisfiable, the clauses behind the final conflict are turned
 * into explanations ("nothing provides X needed by Y needed by Z").
 */
import { DepKind, DEP_RICH, type Pool } from '../repo/pool.js';
import { Sat, type ClauseInfo } from './sat.js';
import { Provides, formatDep, formatRich, type RichDep } from './deps.js';
import { filterUnwanted, PolicyMode, type PolicyContext } from './policy.js';

export interface Job {
  /** Candidates; the solver installs one of them (the policy's choice). */
  candidates: number[];
  /** The request as the user wrote it (for explanations). */
  text: string;
}

export interface SolverOptions {
  weakDeps: boolean;
  installable: (p: number) => boolean;
  archScore: (p: number) => number | undefined;
}

export type SolveOutcome = { ok: true; install: number[]; stats: SolveStats } | { ok: false; problems: string[]; stats: SolveStats };

export interface SolveStats { packagesConsidered: number; clauses: number; decisions: number; conflicts: number; learned: number }

const DEBUG = !!process.env.INGOT_SOLVER_DEBUG;

/** File paths inside a rich dependency's text. */
const FILE_IN_RICH = /(?:^|[\s(])(\/[^\s()]+)/g;

type StepResult = 'ok' | 'backjumped' | 'unsat';

/** A choice among several candidates (libsolv's branch): `tried` marks alternatives already taken. */
interface Branch { alts: number[]; tried: boolean[]; level: number }

export class Solver {
  private readonly sat = new Sat();
  private readonly pkgVar: Int32Array;
  private readonly varPkg: number[] = [-1];
  private readonly T: number;
  private readonly visited: Uint8Array;
  private readonly workq: number[] = [];
  private readonly visitedList: number[] = [];
  /** Requires-type clauses in scan order. */
  private scanList: number[] = [];
  private readonly scanKeyed: { cid: number; owner: number; lits: number[]; guard: number }[] = [];
  private scanGuard = new Int32Array(0);
  /** Per scan position: the owner package's variable, and where the owner's rules end. */
  private scanOwnerVar = new Int32Array(0);
  private scanGroupEnd = new Int32Array(0);
  private readonly jobClauses: number[] = [];
  private decisions = 0;
  private readonly branches: Branch[] = [];
  private recIndex = 0;
  private recBacktracks = -1;
  private recSet = new Set<number>();
  private sugSet = new Set<number>();

  constructor(private readonly pool: Pool, private readonly provides: Provides, private readonly opts: SolverOptions) {
    this.pkgVar = new Int32Array(pool.count);
    this.visited = new Uint8Array(pool.count);
    this.T = this.sat.newVar();
    this.varPkg.push(-1);
    this.sat.addClause([this.T], { kind: 'true', pkg: -1 });
    this.policy = this.makePolicy();
  }

  private varOf(p: number): number {
    let v = this.pkgVar[p];
    if (!v) {
      v = this.sat.newVar();
      this.pkgVar[p] = v;
      this.varPkg[v] = p;
    }
    return v;
  }

  private aux(): number {
    const v = this.sat.newVar();
    this.varPkg[v] = -1;
    return v;
  }

  private visit(p: number): void {
    if (this.visited[p]) return;
    this.visited[p] = 1;
    this.varOf(p);
    this.workq.push(p);
  }

  private addScan(cid: number, owner: number, lits: number[]): void {
    // the clause's negative literal (package or aux variable) must be true for the rule to matter
    if (cid >= 0) this.scanKeyed.push({ cid, owner, lits, guard: -this.sat.clauses[cid][0] });
  }

  // ---------------------------------------------------------------- rules

  /** Tseitin literal equivalent to "rich dependency d is satisfied". */
  private enc(d: RichDep, owner: number, text: string): number {
    const set = this.provides.providersOf(d);
    if (set) {
      if (!set.length) return -this.T;
      for (const p of set) this.visit(p);
      if (set.length === 1) return this.varOf(set[0]);
      return this.orOf(set.map((p) => this.varOf(p)), owner, text);
    }
    switch (d.op) {
      case 'or': return this.orOf(d.args.map((a) => this.enc(a, owner, text)), owner, text);
      case 'and': return this.andOf(d.args.map((a) => this.enc(a, owner, text)), owner, text);
      case 'if': {
        const a = this.enc(d.then, owner, text), b = this.enc(d.cond, owner, text);
        const first = this.orOf([a, -b], owner, text);
        return d.else ? this.andOf([first, this.orOf([b, this.enc(d.else, owner, text)], owner, text)], owner, text) : first;
      }
      case 'unless': {
        // rpm/libsolv: A unless B = A ∧ ¬B; A unless B else C = (A ∧ ¬B) ∨ (C ∧ B)
        const a = this.enc(d.then, owner, text), b = this.enc(d.cond, owner, text);
        const first = this.andOf([a, -b], owner, text);
        return d.else ? this.orOf([first, this.andOf([this.enc(d.else, owner, text), b], owner, text)], owner, text) : first;
      }
      default: return -this.T;
    }
  }

  private orOf(lits: number[], owner: number, text: string): number {
    if (lits.includes(this.T)) return this.T;
    lits = lits.filter((l) => l !== -this.T);
    if (!lits.length) return -this.T;
    if (lits.length === 1) return lits[0];
    const x = this.aux();
    const info: ClauseInfo = { kind: 'rich', pkg: owner, dep: text };
    this.addScan(this.sat.addClause([-x, ...lits], info), owner, lits);
    for (const l of lits) this.sat.addClause([x, -l], info);
    return x;
  }

  private andOf(lits: number[], owner: number, text: string): number {
    if (lits.includes(-this.T)) return -this.T;
    lits = lits.filter((l) => l !== this.T);
    if (!lits.length) return this.T;
    if (lits.length === 1) return lits[0];
    const x = this.aux();
    const info: ClauseInfo = { kind: 'rich', pkg: owner, dep: text };
    for (const l of lits) this.sat.addClause([-x, l], info);
    this.sat.addClause([x, ...lits.map((l) => -l)], info);
    return x;
  }

  /** Requires of package n (plain and rich), as libsolv's solver_addpkgrulesforsolvable does. */
  /**
   * While file lists are not loaded: does n require a file path nothing in
   * primary.xml provides? Such paths are collected in {@link missingFiles}
   * and n's rules wait for {@link resumeWithFiles}.
   */
  private needsFilelists(n: number): boolean {
    const pool = this.pool, d = pool.deps.data;
    const [s, e] = pool.depRange(n, DepKind.Requires);
    let missing = false;
    for (let i = s; i < e; i++) {
      const nameId = d[3 * i], flags = d[3 * i + 1];
      const name = pool.str(nameId);
      if (flags & DEP_RICH) {
        if (name.indexOf('/') < 0) continue;
        for (const m of name.matchAll(FILE_IN_RICH)) {
          if (!this.provides.what(m[1], 0, '').length) { this.missingFiles.add(m[1]); missing = true; }
        }
      } else if (name.charCodeAt(0) === 0x2f && !this.provides.whatDep(nameId, flags, d[3 * i + 2]).length) {
        this.missingFiles.add(name);
        missing = true;
      }
    }
    return missing;
  }

  private addRequires(n: number): void {
    if (this.deferFiles && this.needsFilelists(n)) { this.deferred.push(n); return; }
    const pool = this.pool, d = pool.deps.data;
    const nv = this.varOf(n);
    const [s, e] = pool.depRange(n, DepKind.Requires);
    for (let i = s; i < e; i++) {
      const nameId = d[3 * i], flags = d[3 * i + 1], evrId = d[3 * i + 2];
      const name = pool.str(nameId);
      if (flags & DEP_RICH) {
        const rd = this.provides.rich(name);
        const text = formatRich(rd);
        if (rd.op === 'and') {
          for (const a of rd.args) this.requireRich(n, nv, a, text);
        } else this.requireRich(n, nv, rd, text);
        continue;
      }
      const provs = this.provides.whatDep(nameId, flags, evrId);
      if (!provs.length) {
        this.sat.addClause([-nv], { kind: 'nothing-provides', pkg: n, depIdx: i });
        continue;
      }
      if (provs.includes(n)) continue;
      for (const p of provs) this.visit(p);
      const lits = provs.map((p) => this.varOf(p));
      this.addScan(this.sat.addClause([-nv, ...lits], { kind: 'requires', pkg: n, depIdx: i }), n, lits);
    }
  }

  private requireRich(n: number, nv: number, d: RichDep, text: string): void {
    let lits: number[];
    if (d.op === 'or') {
      lits = [];
      for (const a of d.args) {
        const set = this.provides.providersOf(a);
        if (set) { for (const p of set) { this.visit(p); lits.push(this.varOf(p)); } } else lits.push(this.enc(a, n, text));
      }
      lits = lits.filter((l) => l !== -this.T);
      if (lits.includes(this.T)) return;
    } else {
      const l = this.enc(d, n, text);
      if (l === this.T) return;
      lits = l === -this.T ? [] : [l];
    }
    if (!lits.length) {
      this.sat.addClause([-nv], { kind: 'nothing-provides', pkg: n, dep: text });
      return;
    }
    if (lits.includes(nv)) return;
    this.addScan(this.sat.addClause([-nv, ...lits], { kind: 'requires', pkg: n, dep: text }), n, lits);
  }

  /** Weak dependencies only make their targets reachable (they get rules, not clauses). */
  private visitWeak(n: number): void {
    const pool = this.pool, d = pool.deps.data;
    const [s, e] = pool.depRange(n, DepKind.Recommends);
    for (let i = s; i < e; i++) {
      const name = pool.str(d[3 * i]), flags = d[3 * i + 1];
      if (flags & DEP_RICH) { for (const leaf of this.leaves(this.provides.rich(name))) for (const p of leaf) this.visit(p); continue; }
      const provs = this.provides.whatDep(d[3 * i], flags, d[3 * i + 2]);
      if (!provs.length && this.deferFiles && name.charCodeAt(0) === 0x2f) this.weakDeferred.push(n);
      for (const p of provs) this.visit(p);
    }
  }

  private leaves(d: RichDep): number[][] {
    const set = this.provides.providersOf(d);
    if (set) return [set];
    if (d.op === 'if' || d.op === 'unless') return [...this.leaves(d.then), ...this.leaves(d.cond), ...(d.else ? this.leaves(d.else) : [])];
    return 'args' in d ? d.args.flatMap((a) => this.leaves(a)) : [];
  }

  private closure(): void {
    for (let k = 0; k < this.workq.length; k++) {
      const n = this.workq[k];
      this.visitedList.push(n);
      this.addRequires(n);
      if (this.opts.weakDeps) this.visitWeak(n);
    }
    this.workq.length = 0;
  }

  /** Packages with Supplements that could apply: pulled in until nothing new is reachable. */
  /** Installable packages with Supplements, each with every package its Supplements mention. */
  private suppTriggers: { p: number; triggers: number[] }[] | undefined;

  private closeOverSupplements(): void {
    const pool = this.pool;
    if (!this.suppTriggers) {
      this.suppTriggers = [];
      const d = pool.deps.data;
      for (let p = 0; p < pool.count; p++) {
        const [s, e] = pool.depRange(p, DepKind.Supplements);
        if (e === s || !this.opts.installable(p)) continue;
        const triggers: number[] = [];
        for (let i = s; i < e; i++) {
          const name = pool.str(d[3 * i]), flags = d[3 * i + 1];
          const sets = flags & DEP_RICH ? this.leaves(this.provides.rich(name)) : [this.provides.whatDep(d[3 * i], flags, d[3 * i + 2])];
          for (const set of sets) for (const q of set) triggers.push(q);
        }
        this.suppTriggers.push({ p, triggers });
      }
    }
    for (let changed = true; changed;) {
      changed = false;
      for (const { p, triggers } of this.suppTriggers) {
        if (this.visited[p]) continue;
        for (const q of triggers) if (this.visited[q]) { this.visit(p); changed = true; break; }
      }
      this.closure();
    }
  }

  /** Conflicts, obsoletes and "one version per name" among the reachable packages. */
  private addExclusionRules(): void {
    const pool = this.pool, d = pool.deps.data;
    for (const n of this.visitedList) {
      const nv = this.varOf(n);
      const [cs, ce] = pool.depRange(n, DepKind.Conflicts);
      for (let i = cs; i < ce; i++) {
        const name = pool.str(d[3 * i]), flags = d[3 * i + 1], evr = pool.str(d[3 * i + 2]);
        if (flags & DEP_RICH) {
          const rd = this.provides.rich(name);
          const l = this.enc(rd, n, formatRich(rd));
          if (l !== -this.T) this.sat.addClause([-nv, -l], { kind: 'conflicts', pkg: n, dep: formatRich(rd) });
          continue;
        }
        for (const p of this.provides.what(name, flags, evr)) {
          if (p === n || !this.visited[p]) continue;
          this.sat.addClause([-nv, -this.varOf(p)], { kind: 'conflicts', pkg: n, other: p, depIdx: i });
        }
      }
      const [os, oe] = pool.depRange(n, DepKind.Obsoletes);
      for (let i = os; i < oe; i++) {
        const name = pool.str(d[3 * i]), flags = d[3 * i + 1], evr = pool.str(d[3 * i + 2]);
        for (const p of this.provides.byNevr(name, flags, evr)) {
          if (p === n || !this.visited[p] || pool.name.data[p] === pool.name.data[n]) continue;
          this.sat.addClause([-nv, -this.varOf(p)], { kind: 'obsoletes', pkg: n, other: p, depIdx: i });
        }
      }
    }
    // rpm installs one version of a name (no multilib, no installonly here)
    const byName = new Map<number, number[]>();
    for (const n of this.visitedList) {
      const k = pool.name.data[n];
      let l = byName.get(k);
      if (!l) byName.set(k, l = []);
      l.push(n);
    }
    for (const list of byName.values()) {
      if (list.length < 2) continue;
      list.sort((a, b) => a - b);
      for (let i = 0; i < list.length; i++) for (let j = i + 1; j < list.length; j++) {
        this.sat.addClause([-this.varOf(list[i]), -this.varOf(list[j])], { kind: 'same-name', pkg: list[i], other: list[j] });
      }
    }
  }

  // ---------------------------------------------------------------- search

  private value(p: number): number {
    const v = this.pkgVar[p];
    return v ? this.sat.value[v] : -1;
  }

  /** Decide `lit`; `alts` (packages, the first one is lit's) opens a branch for minimisation. */
  private step(lit: number, alts?: number[]): StepResult {
    this.decisions++;
    if (DEBUG) console.error(`decide ${this.litName(lit)} at ${this.sat.decisionLevel + 1}${alts && alts.length > 1 ? ` branch [${alts.map((p) => this.pool.nevra(p)).join(' ')}]` : ''}`);
    if (alts && alts.length > 1) this.branches.push({ alts, tried: alts.map((_, i) => i === 0), level: this.sat.decisionLevel });
    this.sat.decide(lit);
    const c = this.sat.propagate();
    if (c < 0) return 'ok';
    const ok = this.sat.resolveConflict(c);
    if (DEBUG) {
      const clause = (id: number) => [...this.sat.clauses[id]].map((l) => this.litName(l)).join(' | ');
      console.error(`conflict in ${clause(c)} (${this.sat.info[c]?.kind}) → level ${this.sat.decisionLevel}, learned ${clause(this.sat.clauses.length - 1)}`);
    }
    // branches whose decision was undone by the backjump are gone (libsolv's revert)
    const lvl = this.sat.decisionLevel, b = this.branches;
    while (b.length && b[b.length - 1].level >= lvl) b.pop();
    return ok ? 'backjumped' : 'unsat';
  }

  /** A literal as a package NEVRA (or auxiliary variable), for INGOT_SOLVER_DEBUG traces. */
  private litName(l: number): string {
    const v = Math.abs(l), p = this.varPkg[v];
    return `${l < 0 ? '!' : ''}${p >= 0 ? this.pool.nevra(p) : `aux${v}`}`;
  }

  /** Decide the first of the chosen literals, remembering the package alternatives as a branch. */
  private stepChosen(chosen: number[]): StepResult {
    const first = chosen[0];
    if (this.varPkg[first] < 0) return this.step(first);
    const alts: number[] = [];
    for (const l of chosen) if (this.varPkg[l] >= 0) alts.push(this.varPkg[l]);
    return this.step(first, alts);
  }

  private installedAbove(p: number, level: number): boolean {
    const v = this.pkgVar[p];
    return v !== 0 && this.sat.value[v] === 1 && this.sat.level[v] > level;
  }

  /**
   * libsolv's auto-minimisation (solver_run_sat, after a solution is found):
   * over all branches, the earliest one with an untried alternative that is
   * installed at a later level — or else with an untried recommended /
   * supplementing alternative while its current choice is neither — is
   * re-taken: back to the branch's level, the alternative decided instead.
   */
  private minimize(): StepResult | 'none' {
    let takeB = -1, takeI = -1;
    const wanted = (p: number) => this.policy.isRecommended(p) || this.policy.isSupplementing(p);
    for (let b = this.branches.length - 1; b >= 0; b--) {
      const br = this.branches[b], l = br.level;
      let recI = -1;
      for (let i = 0; i < br.alts.length; i++) {
        if (br.tried[i]) continue;
        const p = br.alts[i];
        if (this.installedAbove(p, l)) { takeB = b; takeI = i; recI = -1; break; }
        if (recI < 0 && wanted(p)) recI = i;
      }
      if (recI < 0) continue;
      for (let i = 0; i < br.alts.length; i++) {
        const p = br.alts[i], v = this.pkgVar[p];
        if (!br.tried[i] || this.sat.value[v] !== 1 || this.sat.level[v] !== l + 1) continue;
        if (!wanted(p)) { takeB = b; takeI = recI; break; }
      }
    }
    if (takeB < 0) return 'none';
    const br = this.branches[takeB];
    br.tried[takeI] = true;
    this.branches.length = takeB + 1;
    this.sat.backtrack(br.level);
    const v = this.pkgVar[br.alts[takeI]];
    if (this.sat.value[v] !== 0) return 'ok';
    return this.step(v);
  }

  private evalRich(d: RichDep): boolean {
    const set = this.provides.providersOf(d);
    if (set) return set.some((p) => this.value(p) > 0);
    switch (d.op) {
      case 'and': return d.args.every((a) => this.evalRich(a));
      case 'or': return d.args.some((a) => this.evalRich(a));
      case 'if': return this.evalRich(d.cond) ? this.evalRich(d.then) : d.else ? this.evalRich(d.else) : true;
      case 'unless': return !this.evalRich(d.cond) ? this.evalRich(d.then) : d.else ? this.evalRich(d.else) : false;
      default: return false;
    }
  }

  /** Does any dependency of `kind` of p hold for the currently installed set? */
  private depHolds(p: number, kind: DepKind): boolean {
    const pool = this.pool, d = pool.deps.data;
    const [s, e] = pool.depRange(p, kind);
    for (let i = s; i < e; i++) {
      const name = pool.str(d[3 * i]), flags = d[3 * i + 1];
      if (flags & DEP_RICH ? this.evalRich(this.provides.rich(name)) : this.provides.whatDep(d[3 * i], flags, d[3 * i + 2]).some((q) => this.value(q) > 0)) return true;
    }
    return false;
  }

  private installedPkgs(): number[] {
    const out: number[] = [];
    for (const l of this.sat.trail) if (l > 0 && this.varPkg[l] >= 0) out.push(this.varPkg[l]);
    return out;
  }

  /** recommends/suggests maps of the installed set (libsolv's policy_update_recommendsmap). */
  private updateWeakMaps(): void {
    // incremental over the trail, like libsolv's recommends_index; rebuilt after a backtrack
    const trail = this.sat.trail;
    if (this.recBacktracks !== this.sat.backtracks || trail.length < this.recIndex) {
      this.recBacktracks = this.sat.backtracks;
      this.recIndex = 0;
      this.recSet = new Set();
      this.sugSet = new Set();
    }
    const pool = this.pool, d = pool.deps.data;
    for (; this.recIndex < trail.length; this.recIndex++) {
      const l = trail[this.recIndex];
      if (l < 0 || this.varPkg[l] < 0) continue;
      const p = this.varPkg[l];
      for (const [kind, set] of [[DepKind.Recommends, this.recSet], [DepKind.Suggests, this.sugSet]] as const) {
        const [s, e] = pool.depRange(p, kind);
        for (let i = s; i < e; i++) {
          const name = pool.str(d[3 * i]), flags = d[3 * i + 1];
          const sets = flags & DEP_RICH ? this.leaves(this.provides.rich(name)) : [this.provides.whatDep(d[3 * i], flags, d[3 * i + 2])];
          for (const ss of sets) for (const q of ss) set.add(q);
        }
      }
    }
  }

  private readonly policy: PolicyContext;

  private makePolicy(): PolicyContext {
    return {
    pool: this.pool,
    archScore: (p) => this.opts.archScore(p),
    installable: (p) => this.opts.installable(p),
    isRecommended: (p) => { this.updateWeakMaps(); return this.recSet.has(p); },
    isSuggested: (p) => { this.updateWeakMaps(); return this.sugSet.has(p); },
    isSupplementing: (p) => this.depHolds(p, DepKind.Supplements),
    };
  }

  /** Unassigned positive literals of a clause whose negative literals all hold and no positive one does. */
  private openCandidates(cid: number): number[] | undefined {
    const c = this.sat.clauses[cid];
    let out: number[] | undefined;
    for (let k = 0; k < c.length; k++) {
      const l = c[k];
      if (l < 0) { if (this.sat.value[-l] !== 1) return undefined; continue; }
      const v = this.sat.value[l];
      if (v === 1) return undefined;
      if (v === 0) (out ??= []).push(l);
    }
    return out;
  }

  /** Choose among candidate literals: packages through the policy, aux variables last. */
  private choose(lits: number[], mode: PolicyMode): number[] {
    const pkgs: number[] = [], aux: number[] = [];
    for (const l of lits) (this.varPkg[l] >= 0 ? pkgs : aux).push(l);
    const chosen = pkgs.length ? filterUnwanted(this.policy, pkgs.map((l) => this.varPkg[l]), mode).map((p) => this.pkgVar[p]) : [];
    return [...chosen, ...aux];
  }

  /**
   * libsolv's resolve_jobrules. After a conflict: backjumped to the level of
   * this decision → retry the same job; lower, but not below where this pass
   * started → start over with the first job; below → let the caller restart.
   */
  private resolveJobs(): StepResult {
    const startLevel = this.sat.decisionLevel;
    for (let k = 0; k < this.jobClauses.length; k++) {
      const cands = this.openCandidates(this.jobClauses[k]);
      if (!cands) continue;
      const before = this.sat.decisionLevel;
      const r = this.stepChosen(this.choose(cands, PolicyMode.Choose));
      if (r === 'ok') continue;
      if (r === 'unsat') return r;
      const now = this.sat.decisionLevel;
      if (now === before) k--;
      else if (now < startLevel) return r;
      else k = -1;
    }
    return 'ok';
  }

  /**
   * libsolv's resolve_dependencies. A conflict that backjumps no lower than
   * the level this pass started at does not restart the scan: it goes on
   * with the next rule (and looks at every rule again before finishing).
   */
  private resolveDependencies(): StepResult {
    const startLevel = this.sat.decisionLevel;
    const R = this.scanList.length;
    if (!R) return 'ok';
    let postponed = 0;
    for (let i = 0, n = 0; ; i++, n++) {
      if (n >= R) {
        if (postponed <= 0) break;
        i = postponed - 1;
        postponed = -1;
        n = 0;
      }
      if (i >= R) i = 0;
      if (this.sat.value[this.scanOwnerVar[i]] !== 1) {
        // a package that is not installed: none of its rules can be open (their guards are
        // the package or auxiliary variables true only through it or a true alternative)
        const end = this.scanGroupEnd[i];
        n += end - i - 1;
        i = end - 1;
        continue;
      }
      if (this.sat.value[this.scanGuard[i]] !== 1) continue;
      const cands = this.openCandidates(this.scanList[i]);
      if (!cands) continue;
      if (cands.length > 1 && postponed >= 0) {
        const pre = this.choose(cands, PolicyMode.ChooseNoReorder);
        if (pre.length > 1) { if (!postponed) postponed = i + 1; continue; }
      }
      if (DEBUG) console.error(`rule ${i} of ${this.pool.nevra(this.scanKeyed[i].owner)}: ${[...this.sat.clauses[this.scanList[i]]].map((l) => `${this.litName(l)}=${this.sat.litValue(l)}@${this.sat.level[Math.abs(l)]}`).join(' | ')}`);
      const r = this.stepChosen(this.choose(cands, PolicyMode.Choose));
      if (r === 'unsat' || (r === 'backjumped' && this.sat.decisionLevel < startLevel)) return r;
      n = -1; // something changed: look at every rule again
    }
    return 'ok';
  }

  /** Candidates for one recommends entry of an installed package, or undefined when already satisfied. */
  private recommendCandidates(nameId: number, flags: number, evrId: number): number[] | undefined {
    if (flags & DEP_RICH) {
      const rd = this.provides.rich(this.pool.str(nameId));
      if (this.evalRich(rd)) return undefined;
      const out: number[] = [];
      const walk = (d: RichDep) => {
        const set = this.provides.providersOf(d);
        if (set) { for (const p of set) out.push(p); return; }
        if (d.op === 'if') { if (this.evalRich(d.cond)) walk(d.then); else if (d.else) walk(d.else); return; }
        if (d.op === 'unless') { if (!this.evalRich(d.cond)) walk(d.then); else if (d.else) walk(d.else); return; }
        if ('args' in d) for (const a of d.args) walk(a);
      };
      walk(rd);
      return out.filter((p) => this.value(p) === 0);
    }
    const provs = this.provides.whatDep(nameId, flags, evrId);
    if (provs.some((p) => this.value(p) > 0)) return undefined;
    return provs.filter((p) => this.value(p) === 0);
  }

  /** libsolv's resolve_weak: supplemented packages, then recommended ones. Returns 'ok' when nothing was added. */
  private resolveWeak(): StepResult | 'changed' {
    const pool = this.pool, d = pool.deps.data;
    const installed = this.installedPkgs();
    const dq = new Set<number>();
    const instSorted = [...installed].sort((a, b) => a - b);
    for (const p of instSorted) {
      const [s, e] = pool.depRange(p, DepKind.Recommends);
      for (let i = s; i < e; i++) {
        const c = this.recommendCandidates(d[3 * i], d[3 * i + 1], d[3 * i + 2]);
        if (c) for (const q of c) if (this.visited[q]) dq.add(q);
      }
    }
    const dqs: number[] = [];
    for (const { p } of this.suppTriggers ?? []) {
      if (this.visited[p] && this.value(p) === 0 && this.depHolds(p, DepKind.Supplements)) { dqs.push(p); dq.add(p); }
    }
    if (!dq.size) return 'ok';
    if (dq.size === 1) {
      const r = this.step(this.pkgVar[[...dq][0]]);
      return r === 'ok' ? 'changed' : r;
    }
    const best = new Set(filterUnwanted(this.policy, [...dq].sort((a, b) => a - b), PolicyMode.Recommend));
    let progressed = false;
    const supp = dqs.filter((q) => best.has(q)).sort((a, b) => a - b);
    for (const p of supp.length > 1 ? filterUnwanted(this.policy, supp, PolicyMode.Supplement) : supp) {
      if (this.value(p) !== 0) continue;
      const r = this.step(this.pkgVar[p]);
      progressed = true;
      if (r !== 'ok') return r;
    }
    for (const p of installed) {
      const [s, e] = pool.depRange(p, DepKind.Recommends);
      for (let i = s; i < e; i++) {
        const c = this.recommendCandidates(d[3 * i], d[3 * i + 1], d[3 * i + 2]);
        if (!c) continue;
        const cands = c.filter((q) => best.has(q));
        if (!cands.length) continue;
        const pick = filterUnwanted(this.policy, cands, PolicyMode.Choose);
        const r = this.step(this.pkgVar[pick[0]], pick);
        progressed = true;
        if (r !== 'ok') return r;
      }
    }
    return progressed ? 'changed' : 'ok';
  }

  /** Decide every remaining package variable false ("not installed"). */
  private completeModel(): StepResult {
    for (let v = 1; v <= this.sat.nvars; v++) {
      if (this.sat.value[v] !== 0 || this.varPkg[v] < 0) continue;
      const r = this.step(-v);
      if (r !== 'ok') return r;
    }
    return 'ok';
  }

  /** File paths some reachable package requires that no known file list provides (see prepare). */
  readonly missingFiles = new Set<string>();
  private prepared = false;
  private deferFiles = true;
  private deferred: number[] = [];
  private weakDeferred: number[] = [];

  /**
   * Build the reachable closure of the jobs. Packages that require file
   * paths primary.xml does not list wait; afterwards {@link missingFiles}
   * tells whether filelists are needed (then load them and call
   * {@link resumeWithFiles}).
   */
  prepare(jobs: Job[]): void {
    for (const j of jobs) for (const p of j.candidates) this.visit(p);
    this.closure();
    if (this.opts.weakDeps) this.closeOverSupplements();
    this.prepared = true;
  }

  /** File providers are now known: build the rules that waited for them and extend the closure. */
  resumeWithFiles(): void {
    this.deferFiles = false;
    this.provides.forgetFiles();
    this.suppTriggers = undefined;
    const d = this.deferred, w = this.weakDeferred;
    this.deferred = [];
    this.weakDeferred = [];
    for (const n of d) this.addRequires(n);
    for (const n of w) this.visitWeak(n);
    this.closure();
    if (this.opts.weakDeps) this.closeOverSupplements();
  }

  solve(jobs: Job[]): SolveOutcome {
    if (!this.prepared) this.prepare(jobs);
    this.addExclusionRules();
    for (const j of jobs) {
      this.jobClauses.push(this.sat.addClause(j.candidates.map((p) => this.varOf(p)), { kind: 'job', pkg: -1, dep: j.text }));
    }
    // libsolv's unified rule order: rules of later packages first, then by provider list.
    // then by the literals as libsolv numbers them (package ids; aux variables after packages)
    const key = (l: number) => (this.varPkg[Math.abs(l)] >= 0 ? this.varPkg[Math.abs(l)] : this.pool.count + Math.abs(l)) * (l < 0 ? -1 : 1);
    this.scanKeyed.sort((a, b) => {
      if (a.owner !== b.owner) return b.owner - a.owner;
      const n = Math.min(a.lits.length, b.lits.length);
      for (let k = 0; k < n; k++) if (a.lits[k] !== b.lits[k]) return key(a.lits[k]) - key(b.lits[k]);
      return a.lits.length - b.lits.length;
    });
    this.scanList = this.scanKeyed.map((x) => x.cid);
    this.scanGuard = Int32Array.from(this.scanKeyed, (x) => x.guard);
    this.scanOwnerVar = Int32Array.from(this.scanKeyed, (x) => this.pkgVar[x.owner]);
    this.scanGroupEnd = new Int32Array(this.scanKeyed.length);
    for (let i = this.scanKeyed.length - 1; i >= 0; i--) {
      const last = i + 1 === this.scanKeyed.length || this.scanKeyed[i + 1].owner !== this.scanKeyed[i].owner;
      this.scanGroupEnd[i] = last ? i + 1 : this.scanGroupEnd[i + 1];
    }

    const fail = (): SolveOutcome => ({ ok: false, problems: this.explain(), stats: this.stats() });
    const c0 = this.sat.propagate();
    if (c0 >= 0 && !this.sat.resolveConflict(c0)) return fail();
    for (let guard = 0; ; guard++) {
      if (guard > 1_000_000) throw new Error('solver did not converge');
      let r: StepResult | 'changed' = this.resolveJobs();
      if (r === 'unsat') return fail();
      if (r === 'backjumped') continue;
      r = this.resolveDependencies();
      if (r === 'unsat') return fail();
      if (r === 'backjumped') continue;
      if (this.opts.weakDeps) {
        r = this.resolveWeak();
        if (r === 'unsat') return fail();
        if (r !== 'ok') continue;
      }
      const m = this.minimize();
      if (m === 'unsat') return fail();
      if (m !== 'none') continue;
      r = this.completeModel();
      if (r === 'unsat') return fail();
      if (r === 'backjumped') continue;
      break;
    }
    const install = this.installedPkgs().sort((a, b) => a - b);
    return { ok: true, install, stats: this.stats() };
  }

  private stats(): SolveStats {
    return { packagesConsidered: this.visitedList.length, clauses: this.sat.clauses.length, decisions: this.decisions, conflicts: this.sat.conflicts, learned: this.sat.learnedCount };
  }

  // ---------------------------------------------------------------- explanations

  private explain(): string[] {
    const pool = this.pool;
    const d = pool.deps.data;
    const text = (i: ClauseInfo): ClauseInfo => (i.depIdx === undefined ? i
      : { ...i, dep: formatDep(pool.str(d[3 * i.depIdx]), d[3 * i.depIdx + 1], pool.str(d[3 * i.depIdx + 2])) });
    const core = this.sat.unsatCore().map((id) => ({ id, info: this.sat.info[id] && text(this.sat.info[id]!) })).filter((x) => x.info && x.info.kind !== 'true');
    const nevra = (p: number) => pool.nevra(p);
    const out: string[] = [];
    const requirers = (p: number): { pkg: number; dep: string } | undefined => {
      const v = this.pkgVar[p];
      for (const { id, info } of core) {
        if (info!.kind !== 'requires' && info!.kind !== 'rich') continue;
        if (this.sat.clauses[id].includes(v) && info!.pkg !== p && info!.pkg >= 0) return { pkg: info!.pkg, dep: info!.dep ?? '' };
      }
      return undefined;
    };
    const jobOf = (p: number): string | undefined => {
      const v = this.pkgVar[p];
      for (const { id, info } of core) if (info!.kind === 'job' && this.sat.clauses[id].includes(v)) return info!.dep;
      for (const cid of this.jobClauses) if (this.sat.clauses[cid].includes(v)) return this.sat.info[cid]?.dep;
      return undefined;
    };
    const chain = (p: number): string => {
      let s = '';
      const seen = new Set<number>([p]);
      let cur = p;
      for (let k = 0; k < 32; k++) {
        const r = requirers(cur);
        if (!r || seen.has(r.pkg)) break;
        s += ` needed by ${nevra(r.pkg)}`;
        seen.add(r.pkg);
        cur = r.pkg;
      }
      const j = jobOf(cur);
      return j !== undefined ? `${s} (requested: ${j})` : s;
    };
    for (const { info } of core) {
      const i = info!;
      switch (i.kind) {
        case 'nothing-provides': out.push(`nothing provides ${i.dep} needed by ${nevra(i.pkg)}${chain(i.pkg)}`); break;
        case 'conflicts':
          out.push(i.other !== undefined ? `package ${nevra(i.pkg)} conflicts with ${i.dep} provided by ${nevra(i.other)}` : `package ${nevra(i.pkg)} conflicts with ${i.dep}`);
          break;
        case 'obsoletes': out.push(`package ${nevra(i.pkg)} obsoletes ${i.dep} provided by ${nevra(i.other!)}`); break;
        case 'same-name': out.push(`cannot install both ${nevra(i.pkg)} and ${nevra(i.other!)}`); break;
        default: break;
      }
    }
    // like libsolv, name every missing capability of a package that has one,
    // and report every request whose candidates all miss something
    const missingOf = new Set<number>();
    for (const { info } of core) if (info!.kind === 'nothing-provides') missingOf.add(info!.pkg);
    const broken = new Set<number>();
    for (const i of this.sat.info) if (i && i.kind === 'nothing-provides') broken.add(i.pkg);
    for (const cid of this.jobClauses) {
      const pk = [...this.sat.clauses[cid]].map((l) => this.varPkg[l]);
      if (pk.length && pk.every((p) => broken.has(p))) for (const p of pk) missingOf.add(p);
    }
    for (let id = 0; id < this.sat.info.length; id++) {
      const raw = this.sat.info[id];
      const i = raw && text(raw);
      if (i && i.kind === 'nothing-provides' && missingOf.has(i.pkg)) out.push(`nothing provides ${i.dep} needed by ${nevra(i.pkg)}${chain(i.pkg)}`);
    }
    if (!out.length) {
      for (const { info } of core) if (info!.kind === 'job') out.push(`cannot satisfy the request ${info!.dep}`);
    }
    return [...new Set(out)].length ? [...new Set(out)] : ['the request cannot be satisfied'];
  }
}
