// zstd payload decoding against the zstd CLI's own output: a single large
// frame decodes to the exact input (fresh buffers, one reused buffer, and a
// worker thread's shared slots, for zstd and gzip); a truncated one is a typed error.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decompress, type Compression } from '../src/rpm/compression.js';
import { decodeInWorker } from '../src/rpm/decode-pool.js';
import { RpmFormatError } from '../src/rpm/errors.js';
import { requireTool } from './helpers/tools.js';

const dir = mkdtempSync(join(tmpdir(), 'ingot-zstd-'));

type Mode = 'fresh' | 'reuse' | 'worker' | 'worker-transient';

/** Hash each chunk before asking for the next, as transient chunks require; also count distinct backing buffers. */
async function digest(file: string, mode: Mode = 'fresh', c: Compression = 'zstd'): Promise<{ n: number; sha: string; buffers: number }> {
  const h = createHash('sha256');
  let n = 0;
  const seen = new Set<ArrayBufferLike>();
  const src = mode === 'fresh' || mode === 'reuse'
    ? decompress(c, createReadStream(file), { reuse: mode === 'reuse' })
    : decodeInWorker(c, file, 0, mode === 'worker-transient');
  for await (const b of src) { h.update(b); n += b.length; seen.add(b.buffer); }
  return { n, sha: h.digest('hex'), buffers: seen.size };
}

test('a single 12 MiB zstd frame made by zstd -3 decodes exactly', async () => {
  requireTool('zstd');
  const raw = Buffer.concat([randomBytes(6 << 20), Buffer.alloc(6 << 20, 7)]);
  writeFileSync(join(dir, 'x'), raw);
  execFileSync('zstd', ['-q', '-3', '-f', join(dir, 'x'), '-o', join(dir, 'x.zst')]);
  const want = createHash('sha256').update(raw).digest('hex');
  for (const mode of ['fresh', 'reuse', 'worker', 'worker-transient'] as const) {
    const r = await digest(join(dir, 'x.zst'), mode);
    assert.is(r.n, raw.length, mode);
    assert.is(r.sha, want, mode);
    // Non-vacuous: the reused and shared-slot modes really do not allocate per chunk (12 MiB through 1 MiB buffers).
    if (mode === 'reuse' || mode === 'worker-transient') assert.is(r.buffers, 1, `${mode}: one backing buffer`);
    else assert.ok(r.buffers >= 12, `${mode}: ${r.buffers} buffers`);
  }
});

test('gzip through a worker: chunks are split across the shared slots and arrive in order', async () => {
  requireTool('gzip');
  execFileSync('sh', ['-c', `gzip -1 -c '${join(dir, 'x')}' > '${join(dir, 'x.gz')}'`]);
  const raw = readFileSync(join(dir, 'x'));
  for (const mode of ['fresh', 'worker-transient'] as const) {
    const r = await digest(join(dir, 'x.gz'), mode, 'gzip');
    assert.is(r.n, raw.length, mode);
    assert.is(r.sha, createHash('sha256').update(raw).digest('hex'), mode);
  }
});

test('a payload abandoned half-way releases its worker, which then decodes the next one correctly', async () => {
  for (let i = 0; i < 3; i++) {
    for await (const _ of decodeInWorker('zstd', join(dir, 'x.zst'), 0, true)) break;
  }
  const r = await digest(join(dir, 'x.zst'), 'worker-transient');
  assert.is(r.sha, createHash('sha256').update(readFileSync(join(dir, 'x'))).digest('hex'));
});

test('the worker starts in a process run with --input-type=module (workers inherit it: their boot code must be ESM-safe)', () => {
  const pool = new URL('../src/rpm/decode-pool.ts', import.meta.url).href;
  const code = `const { decodeInWorker } = await import(${JSON.stringify(pool)}); let n = 0;
for await (const b of decodeInWorker('zstd', ${JSON.stringify(join(dir, 'x.zst'))}, 0)) n += b.length; console.log(n);`;
  const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { encoding: 'utf8' });
  assert.is(out.trim(), String(12 << 20));
});

test('a truncated zstd frame is an RpmFormatError', async () => {
  const z = readFileSync(join(dir, 'x.zst'));
  writeFileSync(join(dir, 't.zst'), z.subarray(0, z.length >> 1));
  for (const mode of ['fresh', 'reuse'] as const) {
    try {
      await digest(join(dir, 't.zst'), mode);
      assert.unreachable('truncation not detected');
    } catch (e) {
      assert.instance(e, RpmFormatError);
    }
  }
  // Through a worker the error crosses the thread as a message (reader.ts wraps it in an RpmFormatError).
  try {
    await digest(join(dir, 't.zst'), 'worker-transient');
    assert.unreachable('truncation not detected in the worker');
  } catch (e) {
    assert.match(String(e), /ends inside a frame/);
  }
});

test.after(() => rmSync(dir, { recursive: true, force: true }));
test.run();
