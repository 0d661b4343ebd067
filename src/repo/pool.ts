/**
 * The package pool: every package of every loaded repository, stored in
 * columns of small integers (names, EVRs and dependency names interned in a
 * {@link StringPool}) so that a Fedora-sized repository (~70,000 packages,
 * millions of dependency entries) stays compact. A package is a number: its
 * index in the pool, in load order (repository order, then primary.xml order),
 * which is also the order libsolv numbers solvables in.
 */
import { StringPool, detach } from './strings.js';
import { parseEvr, type Evr } from '../solve/evr.js';

/** Dependency kinds in the order they are stored per package. */
export const enum DepKind {
  Provides = 0, Requires = 1, Conflicts = 2, Obsoletes = 3,
  Recommends = 4, Suggests = 5, Supplements = 6, Enhances = 7, Files = 8,
}
export const DEP_KIND_COUNT = 9;
export const DEP_KIND_NAMES = ['provides', 'requires', 'conflicts', 'obsoletes', 'recommends', 'suggests', 'supplements', 'enhances', 'files'] as const;

/** Flag bits of a dependency entry: the rpm sense bits (2, 4, 8) plus these. */
export const DEP_PRE = 64;          // Requires(pre) / PreReq (rpm's RPMSENSE_PREREQ bit)
export const DEP_RICH = 1 << 20;    // name is a whole rich (boolean) expression
export const DEP_DIR = 1 << 21;     // a <file type="dir"> entry
export const DEP_GHOST = 1 << 22;   // a <file type="ghost"> entry

/** A growable Int32Array. */
export class IntVec {
  data: Int32Array;
  length = 0;
  constructor(capacity = 1024) { this.data = new Int32Array(capacity); }
  push(v: number): void {
    if (this.length === this.data.length) {
      const d = new Int32Array(this.data.length * 2);
      d.set(this.data);
      this.data = d;
    }
    this.data[this.length++] = v;
  }
  get(i: number): number { return this.data[i]; }
  trim(): void { this.data = this.data.slice(0, this.length); }
}

/** Per-repository settings the pool and the solver need. */
export interface PoolRepo {
  id: string;
  priority: number;
  cost: number;
  gpgcheck: boolean;
  /** Base locations (directory or URL) packages are fetched from. */
  baseurls: string[];
}

/** Everything known about one package, as a plain object (for output). */
export interface PackageInfo {
  id: number;
  name: string;
  epoch: string;
  version: string;
  release: string;
  arch: string;
  nevra: string;
  evr: string;
  repo: string;
  location: string;
  locationBase?: string;
  size: number;
  installedSize: number;
  checksum: { type: string; value: string };
  sourcerpm: string;
}

/** One dependency entry read back from the pool. */
export interface DepEntry {
  name: string;
  flags: number;
  evr: string;
}

export class Pool {
  readonly strings = new StringPool();
  readonly repos: PoolRepo[] = [];

  // package columns
  count = 0;
  readonly name = new IntVec();
  readonly arch = new IntVec();
  /** Interned "[E:]V-R" (epoch only when non-zero). */
  readonly evr = new IntVec();
  readonly epoch = new IntVec();
  readonly version = new IntVec();
  readonly release = new IntVec();
  readonly repo = new IntVec();
  readonly sizePackage: number[] = [];
  readonly sizeInstalled: number[] = [];
  readonly location: string[] = [];
  readonly locationBase: (string | undefined)[] = [];
  readonly checksumType = new IntVec();
  readonly checksum: string[] = [];
  readonly sourcerpm = new IntVec();

  /** Dependencies: triples (nameId, flags, evrId); `depStart[pkg * (K + 1) + kind]` bounds, in triples. */
  readonly deps = new IntVec(1 << 16);
  readonly depStart = new IntVec(1 << 12);

  private readonly parsedEvr = new Map<number, Evr>();
  private provCsr: { start: Int32Array; data: Int32Array } | undefined;
  private nameIndex: Map<number, Int32Array> | undefined;
  /** Providers of file paths found in filelists.xml (beyond primary's short list). */
  readonly extraFileProviders = new Map<number, number[]>();

  addRepo(r: PoolRepo): number {
    this.repos.push(r);
    return this.repos.length - 1;
  }

  /** Begin a package; dependencies are then added kind by kind in ascending order through {@link PackageBuilder}. */
  newPackage(): PackageBuilder {
    return new PackageBuilder(this);
  }

  /** @internal invalidate indexes after packages were added. */
  invalidate(): void {
    this.provCsr = undefined;
    this.nameIndex = undefined;
    this.obsIndex = undefined;
  }

  str(id: number): string { return this.strings.str(id); }

  nameOf(p: number): string { return this.strings.str(this.name.data[p]); }
  archOf(p: number): string { return this.strings.str(this.arch.data[p]); }
  evrOf(p: number): string { return this.strings.str(this.evr.data[p]); }
  repoOf(p: number): PoolRepo { return this.repos[this.repo.data[p]]; }

  nevra(p: number): string {
    return `${this.nameOf(p)}-${this.evrOf(p)}.${this.archOf(p)}`;
  }

  /** Parsed EVR of an interned EVR string (cached). */
  evrParsed(evrId: number): Evr {
    let e = this.parsedEvr.get(evrId);
    if (!e) {
      e = parseEvr(this.strings.str(evrId));
      this.parsedEvr.set(evrId, e);
    }
    return e;
  }

  pkgEvr(p: number): Evr { return this.evrParsed(this.evr.data[p]); }

  /** Triple offsets [start, end) of one kind of dependency of package p. */
  depRange(p: number, kind: DepKind): [number, number] {
    const base = p * (DEP_KIND_COUNT + 1);
    return [this.depStart.data[base + kind], this.depStart.data[base + kind + 1]];
  }

  depsOf(p: number, kind: DepKind): DepEntry[] {
    const [s, e] = this.depRange(p, kind);
    const out: DepEntry[] = [];
    for (let i = s; i < e; i++) {
      out.push({ name: this.str(this.deps.data[3 * i]), flags: this.deps.data[3 * i + 1], evr: this.str(this.deps.data[3 * i + 2]) });
    }
    return out;
  }

  info(p: number): PackageInfo {
    const e = this.pkgEvr(p);
    return {
      id: p,
      name: this.nameOf(p),
      epoch: e.epoch ?? '0',
      version: e.version,
      release: e.release ?? '',
      arch: this.archOf(p),
      nevra: this.nevra(p),
      evr: this.evrOf(p),
      repo: this.repoOf(p).id,
      location: this.location[p],
      locationBase: this.locationBase[p],
      size: this.sizePackage[p],
      installedSize: this.sizeInstalled[p],
      checksum: { type: this.str(this.checksumType.data[p]), value: this.checksum[p] },
      sourcerpm: this.str(this.sourcerpm.data[p]),
    };
  }

  /**
   * Providers by name id, in one pair of arrays (no object per name): the
   * packages whose provides (or primary file list) carry name n are the pairs
   * (pkg, triple index or -1 for a file) in `data[start[n] .. start[n + 1])`,
   * in pool order.
   */
  providerIndex(): { start: Int32Array; data: Int32Array } {
    if (this.provCsr) return this.provCsr;
    const K = DEP_KIND_COUNT + 1;
    const d = this.deps.data, st = this.depStart.data;
    const start = new Int32Array(this.strings.size + 1);
    for (let p = 0; p < this.count; p++) {
      for (let i = st[p * K + DepKind.Provides], e = st[p * K + DepKind.Provides + 1]; i < e; i++) start[d[3 * i] + 1] += 2;
      for (let i = st[p * K + DepKind.Files], e = st[p * K + DepKind.Files + 1]; i < e; i++) start[d[3 * i] + 1] += 2;
    }
    for (let n = 1; n < start.length; n++) start[n] += start[n - 1];
    const data = new Int32Array(start[start.length - 1]);
    const fill = start.slice(0, -1);
    for (let p = 0; p < this.count; p++) {
      for (const kind of [DepKind.Provides, DepKind.Files]) {
        for (let i = st[p * K + kind], e = st[p * K + kind + 1]; i < e; i++) {
          const f = fill[d[3 * i]];
          data[f] = p;
          data[f + 1] = kind === DepKind.Files ? -1 : i;
          fill[d[3 * i]] = f + 2;
        }
      }
    }
    this.provCsr = { start, data };
    return this.provCsr;
  }

  /** {@link providerIndex} as a map of views (name id → pairs), for callers that iterate it. */
  providesIndex(): Map<number, Int32Array> {
    const { start, data } = this.providerIndex();
    const idx = new Map<number, Int32Array>();
    for (let n = 0; n + 1 < start.length; n++) if (start[n + 1] > start[n]) idx.set(n, data.subarray(start[n], start[n + 1]));
    return idx;
  }

  /** Packages by name id, in pool order. */
  byName(nameId: number): Int32Array {
    if (!this.nameIndex) {
      const m = new Map<number, number[]>();
      for (let p = 0; p < this.count; p++) {
        const n = this.name.data[p];
        let a = m.get(n);
        if (!a) m.set(n, a = []);
        a.push(p);
      }
      this.nameIndex = new Map([...m].map(([k, v]) => [k, Int32Array.from(v)]));
    }
    return this.nameIndex.get(nameId) ?? EMPTY;
  }

  private obsIndex: Map<number, number[]> | undefined;

  /** Packages with an Obsoletes entry naming `nameId` (pool order). */
  obsoletersOf(nameId: number): number[] {
    if (!this.obsIndex) {
      const m = new Map<number, number[]>();
      const K = DEP_KIND_COUNT + 1, d = this.deps.data, st = this.depStart.data;
      for (let p = 0; p < this.count; p++) {
        for (let i = st[p * K + DepKind.Obsoletes], e = st[p * K + DepKind.Obsoletes + 1]; i < e; i++) {
          const n = d[3 * i];
          let l = m.get(n);
          if (!l) m.set(n, l = []);
          if (l[l.length - 1] !== p) l.push(p);
        }
      }
      this.obsIndex = m;
    }
    return this.obsIndex.get(nameId) ?? [];
  }

  /** All distinct package names (ids). */
  names(): number[] {
    this.byName(0);
    return [...this.nameIndex!.keys()];
  }
}

const EMPTY = new Int32Array(0);

/** Accumulates one package's fields and dependencies, then commits them to the pool. */
export class PackageBuilder {
  name = '';
  arch = '';
  epoch = '';
  version = '';
  release = '';
  repo = 0;
  sizePackage = 0;
  sizeInstalled = 0;
  location = '';
  locationBase: string | undefined;
  checksumType = '';
  checksum = '';
  sourcerpm = '';
  private readonly kinds: number[][] = Array.from({ length: DEP_KIND_COUNT }, () => []);

  constructor(private readonly pool: Pool) {}

  addDep(kind: DepKind, name: string, flags: number, evr: string): void {
    const s = this.pool.strings;
    this.kinds[kind].push(s.intern(name), flags, evr ? s.intern(evr) : 0);
  }

  /** Append to the pool; returns the package id. Adds rpm's implicit `name = EVR` provide when missing. */
  commit(): number {
    const pool = this.pool, s = pool.strings;
    const p = pool.count++;
    const nameId = s.intern(this.name);
    const evrStr = `${this.epoch && this.epoch !== '0' ? `${this.epoch}:` : ''}${this.version}${this.release !== '' ? `-${this.release}` : ''}`;
    const evrId = s.intern(evrStr);
    pool.name.push(nameId);
    pool.arch.push(s.intern(this.arch));
    pool.evr.push(evrId);
    pool.epoch.push(s.intern(this.epoch));
    pool.version.push(s.intern(this.version));
    pool.release.push(s.intern(this.release));
    pool.repo.push(this.repo);
    pool.sizePackage.push(this.sizePackage);
    pool.sizeInstalled.push(this.sizeInstalled);
    pool.location.push(detach(this.location));
    pool.locationBase.push(this.locationBase === undefined ? undefined : detach(this.locationBase));
    pool.checksumType.push(s.intern(this.checksumType));
    pool.checksum.push(detach(this.checksum));
    pool.sourcerpm.push(s.intern(this.sourcerpm));
    const prov = this.kinds[DepKind.Provides];
    let self = false;
    for (let i = 0; i < prov.length; i += 3) {
      if (prov[i] === nameId && prov[i + 1] === 8 && prov[i + 2] === evrId) { self = true; break; }
    }
    if (!self) prov.push(nameId, 8, evrId);
    for (let k = 0; k < DEP_KIND_COUNT; k++) {
      pool.depStart.push(pool.deps.length / 3);
      for (const v of this.kinds[k]) pool.deps.push(v);
    }
    pool.depStart.push(pool.deps.length / 3);
    pool.invalidate();
    return p;
  }
}
