/**
 * Public API of the repository layer:
 *
 *   const repos = await loadRepos([{ id: 'base', baseurl: '/srv/repo' }], { releasever: '40' });
 *   repos.pool            // every package, compact (see pool.ts)
 *   repos.comps           // merged groups and environments
 *   await repos.ensureFileProviders(['/usr/bin/foo'])   // filelists, only when needed
 *   await repos.fetchPackage(pkgId)                     // verified local path of the .rpm
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readFile } from 'node:fs/promises';
import { Pool, type PackageInfo } from './pool.js';
import { parsePrimary, scanFilelists } from './primary.js';
import { parseRepomd, type RepomdData } from './repomd.js';
import { emptyComps, parseComps, type Comps } from './comps.js';
import { openDecompressed, compressionOf } from './compression.js';
import { RepoSource, type SourceOptions } from './source.js';
import { basearchOf, globToRegExp, substitute, type RepoConfig, type RepoVars } from './config.js';
import { RepoMetadataError, ChecksumMismatchError } from './errors.js';
import type { HttpOptions } from './http.js';

export { Pool, DepKind, DEP_PRE, DEP_RICH, type PackageInfo, type PoolRepo, type DepEntry } from './pool.js';
export { type Comps, type CompsGroup, type CompsEnvironment } from './comps.js';
export { type RepoConfig, type RepoVars, parseRepoFile, substitute, globToRegExp } from './config.js';
export { RepoError, RepoMetadataError, ChecksumMismatchError, DownloadError, CompressionError, RepoConfigError } from './errors.js';
export { type HttpOptions } from './http.js';

export interface LoadOptions {
  /** Cache for downloaded metadata and packages (default: $XDG_CACHE_HOME/ingot or /tmp/ingot-cache). */
  cacheDir?: string;
  releasever?: string;
  /** Target architecture; `$basearch` derives from it (default x86_64). */
  arch?: string;
  vars?: RepoVars;
  http?: HttpOptions;
  /** Ignore cached repomd.xml/metalink/mirrorlist and fetch them again. */
  refresh?: boolean;
  /**
   * Signature check for packages of gpgcheck=1 repositories (the RPM reader
   * provides it); called with the verified local path and the repo's gpgkeys.
   */
  verifySignature?: (path: string, pkg: PackageInfo, gpgkeys: string[]) => Promise<void>;
}

interface LoadedRepo {
  config: RepoConfig;
  source: RepoSource;
  repomd: Map<string, RepomdData>;
  repomdFile: string;
  index: number;
}

export interface RepoSet {
  pool: Pool;
  comps: Comps;
  /** Make sure providers of these file paths are known (reads filelists.xml of each repository once per path set). */
  ensureFileProviders(paths: Iterable<string>): Promise<void>;
  /** Download (or locate) a package, verify its checksum (and signature hook), return the local path. */
  fetchPackage(p: number): Promise<string>;
}

function defaultCacheDir(): string {
  const x = process.env.XDG_CACHE_HOME;
  return x ? join(x, 'ingot') : join(tmpdir(), 'ingot-cache');
}

/** Load repositories in order: repomd (checksums verified), primary (streamed), comps. */
export async function loadRepos(configs: RepoConfig[], opts: LoadOptions = {}): Promise<RepoSet> {
  const arch = opts.arch ?? 'x86_64';
  const vars: RepoVars = { arch, basearch: basearchOf(arch), releasever: opts.releasever, ...opts.vars };
  const srcOpts: SourceOptions = { cacheDir: opts.cacheDir ?? defaultCacheDir(), http: opts.http ?? {}, refresh: opts.refresh };
  const pool = new Pool();
  const comps = emptyComps();
  const loaded: LoadedRepo[] = [];
  for (const cfg of configs) {
    if (cfg.enabled === false) continue;
    const sub = (s: string) => substitute(s, vars, cfg.id);
    const baseurls = (cfg.baseurl === undefined ? [] : Array.isArray(cfg.baseurl) ? cfg.baseurl : [cfg.baseurl]).map(sub);
    const source = new RepoSource(cfg.id, baseurls, cfg.metalink && sub(cfg.metalink), cfg.mirrorlist && sub(cfg.mirrorlist), srcOpts);
    const { text, file } = await source.repomd();
    const repomd = await parseRepomd(text, { repo: cfg.id, file });
    const primary = repomd.data.get('primary');
    if (!primary) throw new RepoMetadataError('repomd.xml has no <data type="primary">', { repo: cfg.id, file, field: 'data[primary]' });
    const index = pool.addRepo({
      id: cfg.id, priority: cfg.priority ?? 99, cost: cfg.cost ?? 1000, gpgcheck: cfg.gpgcheck ?? false,
      baseurls: baseurls.length ? baseurls : await source.mirrors(),
    });
    const excl = (cfg.exclude ?? []).map(globToRegExp);
    const incl = cfg.includepkgs?.length ? cfg.includepkgs.map(globToRegExp) : undefined;
    const accept = (name: string) => !excl.some((r) => r.test(name)) && (!incl || incl.some((r) => r.test(name)));
    const pfile = await source.file(primary.href, { checksum: primary.checksum, size: primary.size });
    const ctx = { repo: cfg.id, file: pfile };
    compressionOf(primary.href, ctx);
    await parsePrimary(() => openDecompressed(pfile, ctx), pool, index, ctx, accept);
    const group = repomd.data.get('group') ?? repomd.data.get('group_gz');
    if (group) {
      const gfile = await source.file(group.href, { checksum: group.checksum, size: group.size });
      const gctx = { repo: cfg.id, file: gfile };
      const chunks: Buffer[] = [];
      for await (const c of await openDecompressed(gfile, gctx)) chunks.push(c as Buffer);
      await parseComps(Buffer.concat(chunks).toString('utf8'), gctx, comps);
    }
    loaded.push({ config: cfg, source, repomd: repomd.data, repomdFile: file, index });
  }

  const scanned = new Set<string>();
  const byChecksum = new Map<string, number>();
  const ensureFileProviders = async (paths: Iterable<string>) => {
    const wanted = new Set<string>();
    for (const p of paths) if (!scanned.has(p)) wanted.add(p);
    if (!wanted.size) return;
    if (!byChecksum.size) for (let p = 0; p < pool.count; p++) byChecksum.set(`${pool.repo.data[p]}:${pool.checksum[p]}`, p);
    for (const r of loaded) {
      const fl = r.repomd.get('filelists');
      if (!fl) continue;
      const f = await r.source.file(fl.href, { checksum: fl.checksum, size: fl.size });
      const ctx = { repo: r.config.id, file: f };
      const found = await scanFilelists(() => openDecompressed(f, ctx), wanted, ctx);
      for (const [path, ids] of found) {
        const pid = pool.strings.intern(path);
        let list = pool.extraFileProviders.get(pid);
        if (!list) pool.extraFileProviders.set(pid, list = []);
        for (const id of ids) {
          const p = byChecksum.get(`${r.index}:${id}`);
          if (p !== undefined && !list.includes(p)) list.push(p);
        }
        list.sort((a, b) => a - b);
      }
    }
    for (const w of wanted) scanned.add(w);
  };

  const fetchPackage = async (p: number): Promise<string> => {
    const info = pool.info(p);
    const r = loaded.find((l) => l.index === pool.repo.data[p])!;
    if (!info.checksum.value) throw new ChecksumMismatchError(`package ${info.nevra} has no checksum in primary.xml`, { repo: info.repo, file: info.location });
    const path = await r.source.file(info.location, { checksum: info.checksum, size: info.size || undefined }, info.locationBase);
    if (r.config.gpgcheck && opts.verifySignature) await opts.verifySignature(path, info, r.config.gpgkey ?? []);
    return path;
  };

  return { pool, comps, ensureFileProviders, fetchPackage };
}

/** Read a .repo file from disk (convenience for the CLI and the build pipeline). */
export async function readRepoFile(path: string): Promise<RepoConfig[]> {
  const { parseRepoFile } = await import('./config.js');
  return parseRepoFile(await readFile(path, 'utf8'), path);
}
