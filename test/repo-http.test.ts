/**
 * HTTP path against a local server on 127.0.0.1 serving the katello-zoo
 * fixture repository through several misbehaving "mirrors": a dead one
 * (nothing listening), one serving corrupt bytes, one that stalls after the
 * headers, one that cuts every first transfer in half (the download must
 * resume with a Range request), plus metalink and mirrorlist indirection,
 * $releasever/$basearch substitution, and a re-run with the server gone
 * (everything from the checksum-keyed cache).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createServer, type Server, type IncomingMessage, type ServerResponse } from 'node:http';
import { createHash } from 'node:crypto';
import { readFileSync, existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { spawn } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { loadRepos, ChecksumMismatchError, DownloadError } from '../src/repo/index.js';
import { FIXTURE_REPOS } from './solve-fixtures.js';

const ZOO = join(FIXTURE_REPOS, 'katello-zoo');
const log: string[] = [];
const ranges: string[] = [];
const cutOnce = new Set<string>();
let server: Server;
let base = '';
let deadBase = '';

function serveFile(req: IncomingMessage, res: ServerResponse, rel: string, mode: string): void {
  const file = join(ZOO, decodeURIComponent(rel));
  if (!rel || !existsSync(file) || statSync(file).isDirectory()) { res.writeHead(404); res.end(); return; }
  let body = readFileSync(file);
  if (mode === 'corrupt' && !rel.endsWith('repomd.xml')) { body = Buffer.from(body); body[body.length >> 1] ^= 0xff; }
  const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  if (range) ranges.push(`${rel} ${req.headers.range}`);
  if (mode === 'slow' && rel.endsWith('.rpm')) {
    res.writeHead(200, { 'content-length': body.length });
    res.write(body.subarray(0, body.length >> 1), () => setTimeout(() => res.end(body.subarray(body.length >> 1)), 300));
    return;
  }
  if (mode === 'stall') { res.writeHead(200, { 'content-length': body.length }); res.write(body.subarray(0, 10)); return; }
  if (range && mode === 'cut') {
    const start = Number(range[1]);
    res.writeHead(206, { 'content-length': body.length - start, 'content-range': `bytes ${start}-${body.length - 1}/${body.length}` });
    res.end(body.subarray(start));
    return;
  }
  if (mode === 'cut' && rel.endsWith('.rpm') && !cutOnce.has(rel)) {
    cutOnce.add(rel);
    res.writeHead(200, { 'content-length': body.length });
    res.write(body.subarray(0, body.length >> 1), () => setTimeout(() => res.socket?.destroy(), 20));
    return;
  }
  res.writeHead(200, { 'content-length': body.length });
  res.end(body);
}

test.before(async () => {
  server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    log.push(url.pathname);
    const m = /^\/(good|corrupt|stall|cut|slow)\/(?:40\/x86_64\/)?(.*)$/.exec(url.pathname);
    if (url.pathname === '/metalink') {
      const repomd = readFileSync(join(ZOO, 'repodata/repomd.xml'));
      const sha = createHash('sha256').update(repomd).digest('hex');
      res.writeHead(200, { 'content-type': 'application/metalink+xml' });
      res.end(`<?xml version="1.0" encoding="utf-8"?>
<metalink version="3.0" xmlns="http://www.metalinker.org/"><files><file name="repomd.xml">
<verification><hash type="sha256">${sha}</hash></verification>
<resources maxconnections="1">
<url protocol="http" type="http" preference="100">${deadBase}repodata/repomd.xml</url>
<url protocol="http" type="http" preference="90">${base}/good/repodata/repomd.xml</url>
</resources></file></files></metalink>`);
      return;
    }
    if (url.pathname === '/mirrorlist') { res.writeHead(200); res.end(`# mirrors\n${deadBase}\n${base}/good/\n`); return; }
    if (!m) { res.writeHead(404); res.end(); return; }
    serveFile(req, res, m[2], m[1]);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  // a port with nothing listening: bind, note, close
  const tmp = createServer();
  await new Promise<void>((r) => tmp.listen(0, '127.0.0.1', r));
  deadBase = `http://127.0.0.1:${(tmp.address() as AddressInfo).port}/`;
  await new Promise<void>((r) => tmp.close(() => r()));
});

test.after(() => { server.closeAllConnections(); server.close(); });

const fresh = () => mkdtempSync(join(tmpdir(), 'ingot-http-'));
const http = { retries: 2, backoffMs: 10, stallTimeoutMs: 400, connectTimeoutMs: 2000 };
const allFiles = (dir: string): string[] => readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));

test('dead mirror first: falls back to the next one; metadata and package verified', async () => {
  const cache = fresh();
  const failed: string[] = [];
  const set = await loadRepos([{ id: 'zoo', baseurl: [deadBase, `${base}/good/`] }], { cacheDir: cache, http: { ...http, onAttemptFailed: (u, r) => failed.push(`${u} ${r}`) } });
  assert.is(set.pool.count, 19);
  assert.ok(failed.some((f) => f.startsWith(deadBase) && /connection failed/.test(f)), failed.join('\n'));
  const lion = [...Array(set.pool.count).keys()].find((p) => set.pool.nameOf(p) === 'lion')!;
  const path = await set.fetchPackage(lion);
  assert.is(createHash('sha256').update(readFileSync(path)).digest('hex'), set.pool.checksum[lion]);
  rmSync(cache, { recursive: true, force: true });
});

test('corrupt mirror: checksum mismatch moves on to the next mirror; alone it is a clear error and nothing partial is cached', async () => {
  const cache = fresh();
  const failed: string[] = [];
  const set = await loadRepos([{ id: 'zoo', baseurl: [`${base}/corrupt/`, `${base}/good/`] }], { cacheDir: cache, http: { ...http, onAttemptFailed: (u, r) => failed.push(`${u} ${r}`) } });
  assert.is(set.pool.count, 19);
  assert.ok(failed.some((f) => f.includes('/corrupt/') && /checksum mismatch/.test(f)), failed.join('\n'));
  const cache2 = fresh();
  const err = await loadRepos([{ id: 'zoo', baseurl: `${base}/corrupt/` }], { cacheDir: cache2, http }).catch((e) => e);
  assert.instance(err, ChecksumMismatchError);
  assert.match(String(err.message), /repo zoo/);
  assert.match(String(err.message), /primary\.xml\.gz/);
  // only repomd.xml (no checksum to check it against) may be cached; no blob, no .part file
  assert.equal(allFiles(cache2).filter((f) => !f.endsWith('repomd.xml')), []);
  rmSync(cache, { recursive: true, force: true });
  rmSync(cache2, { recursive: true, force: true });
});

test('stalling mirror: the transfer times out and the next mirror serves it; alone, a timeout error', async () => {
  const cache = fresh();
  const failed: string[] = [];
  const good = await loadRepos([{ id: 'zoo', baseurl: `${base}/good/` }], { cacheDir: cache, http });
  const set = await loadRepos([{ id: 'zoo2', baseurl: [`${base}/stall/`, `${base}/good/`] }], { cacheDir: fresh(), http: { ...http, onAttemptFailed: (u, r) => failed.push(`${u} ${r}`) } });
  assert.is(set.pool.count, good.pool.count);
  assert.ok(failed.some((f) => f.includes('/stall/') && /timeout \(stalled/.test(f)), failed.join('\n'));
  const t0 = Date.now();
  const err = await loadRepos([{ id: 'zoo3', baseurl: `${base}/stall/` }], { cacheDir: fresh(), http }).catch((e) => e);
  assert.instance(err, DownloadError);
  assert.match(String(err.message), /timeout/);
  assert.ok(Date.now() - t0 < 10_000);
});

test('interrupted download is resumed with a Range request', async () => {
  const cache = fresh();
  const set = await loadRepos([{ id: 'zoo', baseurl: `${base}/cut/` }], { cacheDir: cache, http });
  const penguin = [...Array(set.pool.count).keys()].find((p) => set.pool.nameOf(p) === 'penguin')!;
  const path = await set.fetchPackage(penguin);
  assert.is(createHash('sha256').update(readFileSync(path)).digest('hex'), set.pool.checksum[penguin]);
  assert.ok(ranges.some((r) => r.startsWith(set.pool.location[penguin]) && /bytes=[1-9]\d*-/.test(r)), ranges.join('\n'));
  rmSync(cache, { recursive: true, force: true });
});

test('two processes downloading the same packages into one shared cache both succeed', async () => {
  const cache = fresh();
  const { ROOT } = await import('./helpers/cli.js');
  const loader = pathToFileURL(join(ROOT, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href;
  const repoIndex = pathToFileURL(join(ROOT, 'src', 'repo', 'index.ts')).href;
  const script = `
    const { loadRepos } = await import(${JSON.stringify(repoIndex)});
    const set = await loadRepos([{ id: 'zoo', baseurl: ${JSON.stringify(`${base}/slow/`)} }], { cacheDir: ${JSON.stringify(cache)}, http: { retries: 1, stallTimeoutMs: 5000 } });
    const paths = await Promise.all([...Array(set.pool.count).keys()].map((p) => set.fetchPackage(p)));
    console.log(paths.length);`;
  const run = () => new Promise<{ code: number | null; out: string }>((done) => {
    const c = spawn(process.execPath, ['--import', loader, '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    c.stdout.on('data', (d) => { out += d; });
    c.stderr.on('data', (d) => { out += d; });
    c.on('close', (code) => done({ code, out }));
  });
  const [a, b] = await Promise.all([run(), run()]);
  assert.is(a.code, 0, a.out);
  assert.is(b.code, 0, b.out);
  const rpms = allFiles(cache).filter((f) => f.endsWith('.rpm'));
  assert.is(rpms.length, 19);
  assert.equal(allFiles(cache).filter((f) => /\.part-|\.lock$/.test(f)), [], 'no partial or lock file left');
  rmSync(cache, { recursive: true, force: true });
});

test('metalink and mirrorlist: dead mirrors skipped; $releasever/$basearch substituted; a re-run touches no network', async () => {
  const cache = fresh();
  const a = await loadRepos([{ id: 'ml', metalink: `${base}/metalink` }], { cacheDir: cache, http });
  assert.is(a.pool.count, 19);
  const b = await loadRepos([{ id: 'mirrors', mirrorlist: `${base}/mirrorlist` }], { cacheDir: cache, http });
  assert.is(b.pool.count, 19);
  const c = await loadRepos([{ id: 'vars', baseurl: `${base}/good/$releasever/$basearch/` }], { cacheDir: cache, http, releasever: '40', arch: 'x86_64' });
  assert.is(c.pool.count, 19);
  assert.ok(log.includes('/good/40/x86_64/repodata/repomd.xml'));
  const lion = [...Array(c.pool.count).keys()].find((p) => c.pool.nameOf(p) === 'lion')!;
  await c.fetchPackage(lion);
  const before = log.length;
  const again = await loadRepos([{ id: 'vars', baseurl: `${base}/good/$releasever/$basearch/` }], { cacheDir: cache, http, releasever: '40', arch: 'x86_64' });
  await again.fetchPackage(lion);
  const ml = await loadRepos([{ id: 'ml', metalink: `${base}/metalink` }], { cacheDir: cache, http });
  assert.is(ml.pool.count, 19);
  assert.is(log.length, before, `no request on the re-run: ${log.slice(before).join(' ')}`);
  rmSync(cache, { recursive: true, force: true });
});

test.run();
