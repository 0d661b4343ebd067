/**
 * What the images of one compose share (the BuildSharing hooks):
 *
 * - repository metadata: one RepoSet per distinct repository configuration
 *   and arch, loaded once; dependency resolution on it is serialized, since
 *   it may extend the pool with filelists;
 * - downloads: one package cache directory, and one fetch per package even
 *   when several images ask for it at once;
 * - unpacked payloads: each package's payload is decompressed once into a
 *   compose-wide content store; every image's unpack replays the recorded
 *   entries and takes the stored contents without copying a byte.
 */
import { loadRepos, type LoadOptions, type RepoConfig, type RepoSet } from '../repo/index.js';
import { openRpm, RpmPackage } from '../rpm/reader.js';
import type { PayloadEntry } from '../rpm/payload.js';
import { ContentStore } from '../tree/content-store.js';
import type { FileContent } from '../tree/tree.js';
import type { BuildSharing } from '../build/pipeline.js';

/** A payload entry's contents already in the compose's store; iterating it reads them back. */
class StoredPayload implements AsyncIterable<Buffer> {
  constructor(readonly content: FileContent) {}
  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer> {
    const size = this.content.size;
    for (let pos = 0; pos < size;) {
      const buf = Buffer.alloc(Math.min(1 << 20, size - pos));
      const n = await this.content.read(buf, pos);
      if (n <= 0) break;
      pos += n;
      yield buf.subarray(0, n);
    }
  }
}

const EMPTY: AsyncIterable<Buffer> = { async *[Symbol.asyncIterator]() { /* no data */ } };

type RecordedEntry = Omit<PayloadEntry, 'content'> & { stored: FileContent | null };

/** A package whose payload entries replay from the compose's record of it. */
class ReplayedPackage extends RpmPackage {
  constructor(pkg: RpmPackage, private readonly record: () => Promise<RecordedEntry[]>) {
    super(pkg.file, pkg.lead, pkg.signature, pkg.header, pkg.layout, pkg.compression);
  }

  override async *entries(): AsyncGenerator<PayloadEntry> {
    for (const { stored, ...e } of await this.record()) yield { ...e, content: stored ? new StoredPayload(stored) : EMPTY };
  }
}

export interface SharingStats {
  repoLoads: number;
  repoHits: number;
  fetches: number;
  fetchHits: number;
  payloadsExtracted: number;
  payloadReplays: number;
}

export class ComposeSharing implements BuildSharing {
  private readonly repoSets = new Map<string, Promise<RepoSet>>();
  private readonly locks = new WeakMap<RepoSet, Promise<unknown>>();
  private readonly payloads = new Map<string, Promise<RecordedEntry[]>>();
  readonly stats: SharingStats = { repoLoads: 0, repoHits: 0, fetches: 0, fetchHits: 0, payloadsExtracted: 0, payloadReplays: 0 };

  constructor(private readonly store: ContentStore) {}

  /** A store under `dir` for the payloads of a whole compose; `dispose()` removes it. */
  static create(dir: string): ComposeSharing {
    return new ComposeSharing(ContentStore.create({ dir }));
  }

  get storeDir(): string { return this.store.dir; }

  loadRepos(configs: RepoConfig[], opts: LoadOptions): Promise<RepoSet> {
    const key = JSON.stringify({ configs, arch: opts.arch, releasever: opts.releasever, cacheDir: opts.cacheDir, vars: opts.vars });
    const hit = this.repoSets.get(key);
    if (hit) { this.stats.repoHits++; return hit; }
    this.stats.repoLoads++;
    const p = loadRepos(configs, opts).then((set) => this.memoizeFetches(set));
    // A failed load is not cached: the next image tries again (and reports its own error).
    p.catch(() => { if (this.repoSets.get(key) === p) this.repoSets.delete(key); });
    this.repoSets.set(key, p);
    return p;
  }

  private memoizeFetches(set: RepoSet): RepoSet {
    const fetches = new Map<number, Promise<string>>();
    return {
      ...set,
      fetchPackage: (id: number) => {
        const hit = fetches.get(id);
        if (hit) { this.stats.fetchHits++; return hit; }
        this.stats.fetches++;
        const p = set.fetchPackage(id);
        p.catch(() => { if (fetches.get(id) === p) fetches.delete(id); });
        fetches.set(id, p);
        return p;
      },
    };
  }

  exclusive<T>(repos: RepoSet, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(repos) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    this.locks.set(repos, run.catch(() => undefined));
    return run;
  }

  async openPackage(path: string): Promise<RpmPackage> {
    const pkg = await openRpm(path);
    return new ReplayedPackage(pkg, () => this.recorded(pkg));
  }

  private recorded(pkg: RpmPackage): Promise<RecordedEntry[]> {
    const hit = this.payloads.get(pkg.file);
    if (hit) { this.stats.payloadReplays++; return hit; }
    this.stats.payloadsExtracted++;
    const p = this.record(pkg);
    p.catch(() => { if (this.payloads.get(pkg.file) === p) this.payloads.delete(pkg.file); });
    this.payloads.set(pkg.file, p);
    return p;
  }

  private async record(pkg: RpmPackage): Promise<RecordedEntry[]> {
    const out: RecordedEntry[] = [];
    for await (const e of pkg.entries()) {
      const { content, ...meta } = e;
      let stored: FileContent | null = null;
      if (e.type === 'file' && e.size > 0) stored = await this.store.put(content);
      else for await (const _ of content) { /* drain */ }
      out.push({ ...meta, stored });
    }
    return out;
  }

  /** The unpacker's store: payload contents already stored are handed back as they are; anything else goes to `store`. */
  unpackStore(store: ContentStore): ContentStore {
    const view = Object.create(store) as ContentStore;
    Object.defineProperty(view, 'put', {
      value: (src: Parameters<ContentStore['put']>[0]) => src instanceof StoredPayload ? Promise.resolve(src.content) : store.put(src),
    });
    return view;
  }

  dispose(): Promise<void> {
    return this.store.dispose();
  }
}
