/**
 * Dependency matching over the pool: which packages provide a (possibly
 * versioned) capability, file paths (primary's file list, then filelists),
 * and rpm's rich/boolean dependencies (rpm 4.13+ syntax: and, or, if, if-else,
 * unless, unless-else, with, without), parsed into a small tree. Meaning (as
 * libsolv's cplxdeps.c normalises them): A if B = A ∨ ¬B; A if B else C =
 * (A ∨ ¬B) ∧ (C ∨ B); A unless B = A ∧ ¬B; A unless B else C = (A ∧ ¬B) ∨ (C ∧ B).
 */
import { DepKind, type Pool } from '../repo/pool.js';
import { rangesOverlap, senseFromOp, parseEvr, type Evr } from './evr.js';
import { IngotError } from '../errors.js';

export type RichDep =
  | { op: 'dep'; name: string; flags: number; evr: string }
  | { op: 'and' | 'or' | 'with' | 'without'; args: RichDep[] }
  | { op: 'if' | 'unless'; then: RichDep; cond: RichDep; else?: RichDep };

export class DependencyError extends IngotError {
  constructor(message: string, dep: string) {
    super('DEP_SYNTAX', message, { field: dep });
  }
}

/** Parse a rich dependency string such as `(foo >= 1.0 or (bar if baz))`. */
export function parseRichDep(text: string): RichDep {
  const toks = text.match(/\(|\)|[^\s()]+/g) ?? [];
  let i = 0;
  const fail = (m: string): never => { throw new DependencyError(`bad rich dependency: ${m}`, text); };
  const simpleOrGroup = (): RichDep => {
    if (toks[i] === '(') {
      i++;
      const e = expr();
      if (toks[i] !== ')') fail(`expected ) at token ${i}`);
      i++;
      return e;
    }
    const name = toks[i++];
    if (name === undefined || name === ')') fail('missing operand');
    const op = toks[i] !== undefined ? senseFromOp(toks[i]) : undefined;
    if (op !== undefined) {
      const evr = toks[i + 1];
      if (evr === undefined || evr === ')') fail(`missing version after ${toks[i]}`);
      i += 2;
      return { op: 'dep', name: name!, flags: op, evr: evr! };
    }
    return { op: 'dep', name: name!, flags: 0, evr: '' };
  };
  const expr = (): RichDep => {
    const first = simpleOrGroup();
    const kw = toks[i];
    if (kw === 'and' || kw === 'or' || kw === 'with' || kw === 'without') {
      const args = [first];
      while (toks[i] === kw) { i++; args.push(simpleOrGroup()); }
      if (toks[i] !== ')' && toks[i] !== undefined) fail(`cannot mix ${kw} with ${toks[i]} without parentheses`);
      return { op: kw, args };
    }
    if (kw === 'if' || kw === 'unless') {
      i++;
      const cond = simpleOrGroup();
      if (toks[i] === 'else') { i++; return { op: kw, then: first, cond, else: simpleOrGroup() }; }
      return { op: kw, then: first, cond };
    }
    return first;
  };
  if (toks[0] !== '(') fail('must start with (');
  const e = simpleOrGroup();
  if (i !== toks.length) fail(`trailing tokens after position ${i}`);
  return e;
}

/** Format a rich dependency back to text (for messages). */
export function formatRich(d: RichDep): string {
  switch (d.op) {
    case 'dep': return d.flags ? `${d.name} ${opText(d.flags)} ${d.evr}` : d.name;
    case 'if': case 'unless': return `(${formatRich(d.then)} ${d.op} ${formatRich(d.cond)}${d.else ? ` else ${formatRich(d.else)}` : ''})`;
    default: return `(${d.args.map(formatRich).join(` ${d.op} `)})`;
  }
}

function opText(f: number): string {
  return ({ 2: '<', 10: '<=', 8: '=', 12: '>=', 4: '>' } as Record<number, string>)[f & 14] ?? '';
}

export function formatDep(name: string, flags: number, evr: string): string {
  return flags & 14 ? `${name} ${opText(flags)} ${evr}` : name;
}

/**
 * Provider lookup with a cache. `installable` filters the pool (arch policy,
 * excludes); lists are in pool order, like libsolv's whatprovides.
 */
export class Provides {
  private readonly cache = new Map<string, number[]>();
  private readonly richCache = new Map<string, RichDep>();
  constructor(private readonly pool: Pool, private readonly installable: (p: number) => boolean) {}

  /** Answers for dependencies stored in the pool: unversioned by name id, versioned by "name,flags,evr" ids. */
  private readonly plainCache = new Map<number, number[]>();
  private readonly rangeCache = new Map<string, number[]>();

  /** {@link what} for a dependency stored in the pool (interned name and EVR ids). */
  whatDep(nameId: number, flags: number, evrId: number): number[] {
    const f = flags & 14;
    if (!f) {
      let r = this.plainCache.get(nameId);
      if (!r) this.plainCache.set(nameId, r = this.compute(nameId, this.pool.str(nameId), 0, undefined));
      return r;
    }
    const key = `${nameId},${f},${evrId}`;
    let r = this.rangeCache.get(key);
    if (!r) this.rangeCache.set(key, r = this.compute(nameId, this.pool.str(nameId), f, this.pool.evrParsed(evrId)));
    return r;
  }

  /** Drop cached answers for file paths (after filelists.xml named more providers). */
  forgetFiles(): void {
    for (const k of this.plainCache.keys()) if (this.pool.str(k).charCodeAt(0) === 0x2f) this.plainCache.delete(k);
    for (const k of this.cache.keys()) if (k.charCodeAt(0) === 0x2f) this.cache.delete(k);
  }

  /** Packages providing `name` with a range overlapping (flags, evr). File paths also match file lists. */
  what(name: string, flags: number, evr: string): number[] {
    const key = `${name}\u0000${flags & 14}\u0000${evr}`;
    let r = this.cache.get(key);
    if (!r) this.cache.set(key, r = this.compute(this.pool.strings.lookup(name), name, flags & 14, flags & 14 ? parseEvr(evr) : undefined));
    return r;
  }

  private compute(nameId: number, name: string, flags: number, reqEvr: Evr | undefined): number[] {
    const pool = this.pool;
    const out: number[] = [];
    if (nameId < 0) return out;
    const { start, data } = pool.providerIndex();
    if (nameId + 1 < start.length) {
      const d = pool.deps.data;
      for (let k = start[nameId], end = start[nameId + 1]; k < end; k += 2) {
        const p = data[k], di = data[k + 1];
        if (out.length && out[out.length - 1] === p) continue;
        if (!this.installable(p)) continue;
        if (di < 0) { if (!flags) out.push(p); continue; } // files match unversioned only
        const pf = d[3 * di + 1];
        if (!flags || !(pf & 14) || rangesOverlap(pf, pool.evrParsed(d[3 * di + 2]), flags, reqEvr)) out.push(p);
      }
    }
    if (name.charCodeAt(0) === 0x2f && !flags) {
      const extra = pool.extraFileProviders.get(nameId);
      if (extra && extra.length) {
        for (const p of extra) if (this.installable(p)) out.push(p);
        return [...new Set(out)].sort((a, b) => a - b);
      }
    }
    return out;
  }

  /** Packages whose own name and EVR match (how dnf matches Obsoletes: by name, not by provides). */
  byNevr(name: string, flags: number, evr: string): number[] {
    const pool = this.pool;
    const nameId = pool.strings.lookup(name);
    if (nameId < 0) return [];
    const reqEvr = flags & 14 ? parseEvr(evr) : undefined;
    const out: number[] = [];
    for (const p of pool.byName(nameId)) {
      if (!this.installable(p)) continue;
      if (!(flags & 14) || rangesOverlap(8, pool.pkgEvr(p), flags, reqEvr)) out.push(p);
    }
    return out;
  }

  rich(text: string): RichDep {
    let r = this.richCache.get(text);
    if (!r) { r = parseRichDep(text); this.richCache.set(text, r); }
    return r;
  }

  /** Providers of a simple dep or of a `with`/`without` combination (a set of packages). */
  providersOf(d: RichDep): number[] | undefined {
    if (d.op === 'dep') return this.what(d.name, d.flags, d.evr);
    if (d.op === 'with' || d.op === 'without') {
      const sets = d.args.map((a) => this.providersOf(a));
      if (sets.some((s) => s === undefined)) return undefined;
      let cur = sets[0]!;
      for (const s of sets.slice(1)) {
        const ss = new Set(s);
        cur = d.op === 'with' ? cur.filter((p) => ss.has(p)) : cur.filter((p) => !ss.has(p));
      }
      return cur;
    }
    return undefined;
  }

  /** All file-path names a package's requires/conflicts/... mention (to decide whether filelists are needed). */
  static fileDepsOf(pool: Pool, kinds: DepKind[]): Set<string> {
    const out = new Set<string>();
    const d = pool.deps.data;
    const seen = new Set<number>();
    for (let p = 0; p < pool.count; p++) {
      for (const k of kinds) {
        const [s, e] = pool.depRange(p, k);
        for (let i = s; i < e; i++) {
          const n = d[3 * i];
          if (seen.has(n)) continue;
          seen.add(n);
          const str = pool.str(n);
          if (str.charCodeAt(0) === 0x2f) out.add(str);
          else if (str.charCodeAt(0) === 0x28) for (const m of str.matchAll(/(?:^|[\s(])(\/[^\s()]+)/g)) out.add(m[1]);
        }
      }
    }
    return out;
  }
}
