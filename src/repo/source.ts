/**
 * Where a repository's files come from: a local directory (read in place,
 * checksums still verified) or a list of HTTP(S) mirrors (base URLs given
 * directly, or found through a metalink or mirrorlist) with a local cache
 * keyed by checksum, so a re-run touches no network.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile, rename } from 'node:fs/promises';
import { join, basename, resolve as resolvePath } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DownloadError, RepoConfigError, RepoMetadataError, type RepoErrorContext } from './errors.js';
import { downloadFromMirrors, fetchText, verifyFile, type Expected, type HttpOptions } from './http.js';
import { parseSmallXml } from './repomd.js';
import { tempPathFor } from '../util/atomic.js';

export interface SourceOptions {
  cacheDir: string;
  http: HttpOptions;
  /** Re-fetch repomd.xml even when a cached copy exists (metadata_expire=0). */
  refresh?: boolean;
}

export function isUrl(s: string): boolean {
  return /^https?:\/\//i.test(s);
}

/** A directory path from a plain path or file:// URL. */
export function localDir(s: string): string | undefined {
  if (s.startsWith('file://')) return fileURLToPath(s);
  if (isUrl(s)) return undefined;
  return resolvePath(s);
}

export class RepoSource {
  private mirrorsResolved: string[] | undefined;
  /** Checksum of repomd.xml announced by a metalink, verified on download. */
  private repomdHash: { type: string; value: string } | undefined;

  constructor(readonly repoId: string, private readonly baseurls: string[], private readonly metalink: string | undefined,
    private readonly mirrorlist: string | undefined, private readonly opts: SourceOptions) {
    if (!baseurls.length && !metalink && !mirrorlist) throw new RepoConfigError('no baseurl, metalink or mirrorlist', { repo: repoId });
  }

  get ctx(): RepoErrorContext { return { repo: this.repoId }; }

  /** The local directory when the repository is one (the first baseurl). */
  get dir(): string | undefined {
    return this.baseurls.length && !isUrl(this.baseurls[0]) ? localDir(this.baseurls[0]) : undefined;
  }

  private keyDir(): string {
    const key = createHash('sha256').update(JSON.stringify([this.repoId, this.baseurls, this.metalink, this.mirrorlist])).digest('hex').slice(0, 16);
    return join(this.opts.cacheDir, 'repos', `${this.repoId.replace(/[^A-Za-z0-9_.-]/g, '_')}-${key}`);
  }

  /** Mirror base URLs in preference order. */
  async mirrors(): Promise<string[]> {
    if (this.mirrorsResolved) return this.mirrorsResolved;
    const out = [...this.baseurls];
    if (this.metalink) out.push(...await this.readMetalink(this.metalink));
    if (this.mirrorlist) out.push(...await this.readMirrorlist(this.mirrorlist));
    if (!out.length) throw new DownloadError('the metalink/mirrorlist named no usable mirror', { ...this.ctx, file: this.metalink ?? this.mirrorlist });
    this.mirrorsResolved = out;
    return out;
  }

  private async cachedText(name: string, url: string): Promise<string> {
    const path = join(this.keyDir(), name);
    if (!this.opts.refresh && existsSync(path)) return readFile(path, 'utf8');
    const text = await fetchText(url, this.opts.http, this.ctx);
    await this.writeAtomic(path, text);
    return text;
  }

  private async writeAtomic(path: string, data: string | Buffer): Promise<void> {
    await mkdir(join(path, '..'), { recursive: true });
    const tmp = tempPathFor(path);
    await writeFile(tmp, data);
    await rename(tmp, path);
  }

  private async readMetalink(url: string): Promise<string[]> {
    const xml = await this.cachedText('metalink.xml', url);
    const doc = await parseSmallXml(xml, { ...this.ctx, file: url });
    const root = doc.metalink as Record<string, unknown> | undefined;
    if (!root) throw new RepoMetadataError('root element is not <metalink>', { ...this.ctx, file: url, field: Object.keys(doc)[0] });
    const files = ((root.files as Record<string, unknown>[] | undefined)?.[0]?.file as Record<string, unknown>[] | undefined) ?? [];
    const f = files.find((x) => (x.$ as Record<string, string> | undefined)?.name === 'repomd.xml');
    if (!f) throw new RepoMetadataError('metalink has no <file name="repomd.xml">', { ...this.ctx, file: url, field: 'file' });
    const hashes = ((f.verification as Record<string, unknown>[] | undefined)?.[0]?.hash as Record<string, unknown>[] | undefined) ?? [];
    for (const pref of ['sha512', 'sha256', 'sha1', 'md5']) {
      const h = hashes.find((x) => (x.$ as Record<string, string>).type === pref);
      if (h) { this.repomdHash = { type: pref, value: String(h._).trim().toLowerCase() }; break; }
    }
    const urls = ((f.resources as Record<string, unknown>[] | undefined)?.[0]?.url as Record<string, unknown>[] | undefined) ?? [];
    return urls
      .map((u) => ({ url: String(u._ ?? '').trim(), pref: Number((u.$ as Record<string, string> | undefined)?.preference ?? 0) }))
      .filter((u) => isUrl(u.url) && u.url.endsWith('/repodata/repomd.xml'))
      .sort((a, b) => b.pref - a.pref)
      .map((u) => u.url.slice(0, -'repodata/repomd.xml'.length));
  }

  private async readMirrorlist(url: string): Promise<string[]> {
    const text = await this.cachedText('mirrorlist.txt', url);
    return text.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#') && isUrl(l));
  }

  /** repomd.xml's text (cached per repository for HTTP sources; verified against the metalink hash when one is known). */
  async repomd(): Promise<{ text: string; file: string }> {
    const dir = this.dir;
    if (dir) {
      const file = join(dir, 'repodata/repomd.xml');
      try {
        return { text: await readFile(file, 'utf8'), file };
      } catch (e) {
        throw new RepoMetadataError(`cannot read repomd.xml: ${(e as Error).message}`, { ...this.ctx, file }, { cause: e });
      }
    }
    const path = join(this.keyDir(), 'repomd.xml');
    if (this.opts.refresh || !existsSync(path)) {
      const mirrors = await this.mirrors();
      const exp: Expected = this.repomdHash ? { checksum: this.repomdHash } : {};
      await downloadFromMirrors(mirrors, 'repodata/repomd.xml', path, exp, this.opts.http, this.ctx);
    }
    return { text: await readFile(path, 'utf8'), file: path };
  }

  /**
   * A verified local copy of `href` (relative to the repository root, or
   * absolute under `base`). Local repositories are read in place after
   * verification; remote files land in the cache under their checksum.
   */
  async file(href: string, exp: Expected, base?: string): Promise<string> {
    const dir = base ? localDir(base) : this.dir;
    if (dir !== undefined && (!base || !isUrl(base))) {
      const path = join(dir, href);
      if (!existsSync(path)) throw new RepoMetadataError(`file listed in metadata is missing`, { ...this.ctx, file: path });
      await verifyFile(path, exp, { ...this.ctx, file: path });
      return path;
    }
    if (!exp.checksum) throw new RepoMetadataError('refusing to cache a file without a checksum', { ...this.ctx, file: href });
    const key = `${exp.checksum.type}-${exp.checksum.value}`;
    const dest = join(this.opts.cacheDir, 'blobs', exp.checksum.value.slice(0, 2), `${key}-${basename(href)}`);
    if (existsSync(dest)) return dest; // verified when it was written
    const mirrors = base ? [base] : await this.mirrors();
    await downloadFromMirrors(mirrors, href, dest, exp, this.opts.http, { ...this.ctx });
    return dest;
  }
}
