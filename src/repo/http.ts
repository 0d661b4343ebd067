/**
 * Downloads with Node's own fetch: per-request timeouts (connect and stall),
 * retries with backoff, resumption of an interrupted transfer with a Range
 * request, checksum verification, and fallback from one mirror to the next.
 * A download is written to a temporary file beside its destination and
 * renamed into place only once its checksum is verified, so the cache never
 * holds a partial or corrupt entry.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { link, mkdir, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { ChecksumMismatchError, DownloadError, type RepoErrorContext } from './errors.js';

export interface HttpOptions {
  /** Attempts per mirror (default 3). */
  retries?: number;
  /** Milliseconds without any received byte before a transfer counts as stalled (default 30 s). */
  stallTimeoutMs?: number;
  /** Milliseconds to wait for response headers (default 30 s). */
  connectTimeoutMs?: number;
  /** Base delay between attempts in ms (default 200; doubled each retry). */
  backoffMs?: number;
  signal?: AbortSignal;
  /** Called for each failed attempt (for logs/tests). */
  onAttemptFailed?: (url: string, reason: string) => void;
}

export interface Expected {
  checksum?: { type: string; value: string };
  size?: number;
}

const HASHES: Record<string, string> = { sha256: 'sha256', sha512: 'sha512', sha384: 'sha384', sha224: 'sha224', sha1: 'sha1', sha: 'sha1', md5: 'md5' };

export function hashName(type: string, ctx: RepoErrorContext): string {
  const h = HASHES[type.toLowerCase()];
  if (!h) throw new ChecksumMismatchError(`unsupported checksum type ${JSON.stringify(type)}`, ctx);
  return h;
}

/** Hex digest of a file. */
export async function fileDigest(path: string, type: string, ctx: RepoErrorContext = {}): Promise<string> {
  const h = createHash(hashName(type, ctx));
  for await (const c of createReadStream(path, { highWaterMark: 1 << 20 })) h.update(c as Buffer);
  return h.digest('hex');
}

/** Throw ChecksumMismatchError unless `path` has the expected size and checksum. */
export async function verifyFile(path: string, exp: Expected, ctx: RepoErrorContext): Promise<void> {
  if (exp.size !== undefined) {
    const st = await stat(path);
    if (st.size !== exp.size) throw new ChecksumMismatchError('size mismatch', { ...ctx, expected: String(exp.size), actual: String(st.size) });
  }
  if (exp.checksum) {
    const got = await fileDigest(path, exp.checksum.type, ctx);
    if (got !== exp.checksum.value.toLowerCase()) {
      throw new ChecksumMismatchError(`${exp.checksum.type} checksum mismatch`, { ...ctx, expected: exp.checksum.value, actual: got });
    }
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

class AttemptError extends Error {
  constructor(message: string, readonly retryable: boolean) { super(message); }
}

/** One HTTP transfer into `tmp`, appending (Range) when `tmp` already holds a prefix. */
async function transfer(url: string, tmp: string, opts: HttpOptions): Promise<void> {
  let have = 0;
  try { have = (await stat(tmp)).size; } catch { /* fresh */ }
  const ac = new AbortController();
  const onOuter = () => ac.abort();
  opts.signal?.addEventListener('abort', onOuter, { once: true });
  let timer: NodeJS.Timeout | undefined;
  let timedOut = '';
  const arm = (ms: number, what: string) => {
    clearTimeout(timer);
    timer = setTimeout(() => { timedOut = what; ac.abort(); }, ms);
  };
  arm(opts.connectTimeoutMs ?? 30_000, 'no response');
  const fh = await open(tmp, have ? 'a' : 'w');
  try {
    let res: Response;
    try {
      res = await fetch(url, { signal: ac.signal, headers: have ? { range: `bytes=${have}-` } : {}, redirect: 'follow' });
    } catch (e) {
      throw new AttemptError(timedOut ? `timeout (${timedOut})` : `connection failed: ${(e as Error).cause instanceof Error ? ((e as Error).cause as Error).message : (e as Error).message}`, true);
    }
    if (have && res.status === 200) {
      // The server ignored the Range request: start over.
      await fh.truncate(0);
      have = 0;
    } else if (have && res.status === 416) {
      await fh.truncate(0);
      throw new AttemptError('HTTP 416 (range not satisfiable)', true);
    }
    if (res.status !== 200 && res.status !== 206) {
      await res.body?.cancel().catch(() => undefined);
      throw new AttemptError(`HTTP ${res.status}`, res.status >= 500 || res.status === 408 || res.status === 429);
    }
    if (!res.body) throw new AttemptError('empty response', true);
    const stall = opts.stallTimeoutMs ?? 30_000;
    arm(stall, 'stalled');
    let pos = have;
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        arm(stall, 'stalled');
        await fh.write(chunk, 0, chunk.length, pos);
        pos += chunk.length;
      }
    } catch (e) {
      throw new AttemptError(timedOut ? `timeout (${timedOut} after ${pos} bytes)` : `transfer interrupted after ${pos} bytes: ${(e as Error).message}`, true);
    }
  } finally {
    clearTimeout(timer);
    opts.signal?.removeEventListener('abort', onOuter);
    await fh.close();
  }
}

/**
 * The partial-download file for one URL: the stable name (so a later run
 * resumes what an interrupted one left) when this process can claim it, a
 * private name when another live process is downloading the same file into a
 * shared cache — both then finish, verify and rename the same bytes.
 */
async function claimPartial(stable: string): Promise<{ path: string; release: () => Promise<void> }> {
  const lock = `${stable}.lock`;
  // The claim appears whole: the pid is written to a private file first and link(2) publishes it,
  // failing with EEXIST when the claim is already taken (an O_EXCL create would show an empty file
  // to a reader racing the write, and that reader would wrongly take the claim over).
  const mine = `${lock}.${process.pid}-${randomBytes(4).toString('hex')}`;
  await writeFile(mine, String(process.pid));
  try {
    for (let tries = 0; tries < 2; tries++) {
      try {
        await link(mine, lock);
        return { path: stable, release: () => rm(lock, { force: true }) };
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        const owner = Number(await readFile(lock, 'utf8').catch(() => ''));
        if (!(Number.isInteger(owner) && owner > 0) || owner === process.pid || isAlive(owner)) break;
        await rm(lock, { force: true }); // left by a process that died: take it over
      }
    }
  } finally {
    await rm(mine, { force: true });
  }
  return { path: `${stable}.${process.pid}-${randomBytes(4).toString('hex')}`, release: async () => {} };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Download `relPath` from the first mirror that delivers it intact into
 * `dest` (temp + rename). Each mirror gets `retries` attempts; an interrupted
 * transfer is resumed from where it stopped; a checksum mismatch moves on to
 * the next mirror. Throws ChecksumMismatchError when every mirror served a
 * corrupt file, DownloadError otherwise.
 */
export async function downloadFromMirrors(mirrors: string[], relPath: string, dest: string, exp: Expected,
  opts: HttpOptions, ctx: RepoErrorContext): Promise<void> {
  await mkdir(dirname(dest), { recursive: true });
  const retries = Math.max(1, opts.retries ?? 3);
  const failures: string[] = [];
  let corrupt = 0;
  for (const base of mirrors) {
    const url = joinUrl(base, relPath);
    const claim = await claimPartial(`${dest}.part-${createHash('sha1').update(url).digest('hex').slice(0, 8)}`);
    const tmp = claim.path;
    try {
      let lastReason = '';
      for (let attempt = 0; attempt < retries; attempt++) {
        if (opts.signal?.aborted) throw new DownloadError('aborted', { ...ctx, file: url });
        try {
          await transfer(url, tmp, opts);
          try {
            await verifyFile(tmp, exp, { ...ctx, file: url });
          } catch (e) {
            await rm(tmp, { force: true });
            throw e;
          }
          await rename(tmp, dest);
          return;
        } catch (e) {
          if (e instanceof ChecksumMismatchError) {
            corrupt++;
            lastReason = e.message;
            opts.onAttemptFailed?.(url, lastReason);
            break; // a corrupt copy on this mirror will not heal by retrying: next mirror
          }
          if (!(e instanceof AttemptError)) { await rm(tmp, { force: true }); throw e; }
          lastReason = e.message;
          opts.onAttemptFailed?.(url, lastReason);
          if (!e.retryable) break;
          if (attempt + 1 < retries) await sleep((opts.backoffMs ?? 200) * 2 ** attempt);
        }
      }
      await rm(tmp, { force: true });
      failures.push(`${url}: ${lastReason}`);
    } finally {
      await claim.release();
    }
  }
  const msg = `cannot download ${relPath} from ${mirrors.length} mirror(s): ${failures.join('; ')}`;
  if (corrupt > 0 && corrupt === mirrors.length) throw new ChecksumMismatchError(msg, { ...ctx, file: relPath });
  throw new DownloadError(msg, { ...ctx, file: relPath });
}

/** Fetch a small text document (repomd.xml, metalink, mirrorlist) with retries. */
export async function fetchText(url: string, opts: HttpOptions, ctx: RepoErrorContext): Promise<string> {
  const retries = Math.max(1, opts.retries ?? 3);
  let last = '';
  for (let attempt = 0; attempt < retries; attempt++) {
    const ac = new AbortController();
    const t = setTimeout(() => ac.abort(), opts.connectTimeoutMs ?? 30_000);
    try {
      const res = await fetch(url, { signal: ac.signal });
      if (res.status === 200) {
        const s = await res.text();
        return s;
      }
      last = `HTTP ${res.status}`;
      if (res.status < 500 && res.status !== 429 && res.status !== 408) break;
    } catch (e) {
      last = ac.signal.aborted ? 'timeout' : `connection failed: ${(e as Error).message}`;
    } finally {
      clearTimeout(t);
    }
    opts.onAttemptFailed?.(url, last);
    if (attempt + 1 < retries) await sleep((opts.backoffMs ?? 200) * 2 ** attempt);
  }
  throw new DownloadError(`cannot fetch: ${last}`, { ...ctx, file: url });
}

/** Join a base URL and a relative href, percent-encoding what createrepo leaves raw (`^`, `+`, `~` stay legal; spaces etc. do not). */
export function joinUrl(base: string, rel: string): string {
  if (/^[a-z]+:\/\//i.test(rel)) return rel;
  const b = base.endsWith('/') ? base : `${base}/`;
  return b + rel.split('/').map((seg) => encodeURIComponent(seg).replace(/%2B/g, '+').replace(/%7E/g, '~')).join('/');
}
