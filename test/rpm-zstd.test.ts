// zstd payload decoding against the zstd CLI's own output: a single large
// frame decodes to the exact input; a truncated one is a typed error.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decompress } from '../src/rpm/compression.js';
import { RpmFormatError } from '../src/rpm/errors.js';
import { requireTool } from './helpers/tools.js';

const dir = mkdtempSync(join(tmpdir(), 'ingot-zstd-'));

async function digest(file: string): Promise<{ n: number; sha: string }> {
  const h = createHash('sha256');
  let n = 0;
  for await (const c of decompress('zstd', createReadStream(file))) { h.update(c); n += c.length; }
  return { n, sha: h.digest('hex') };
}

test('a single 12 MiB zstd frame made by zstd -3 decodes exactly', async () => {
  requireTool('zstd');
  const raw = Buffer.concat([randomBytes(6 << 20), Buffer.alloc(6 << 20, 7)]);
  writeFileSync(join(dir, 'x'), raw);
  execFileSync('zstd', ['-q', '-3', '-f', join(dir, 'x'), '-o', join(dir, 'x.zst')]);
  const r = await digest(join(dir, 'x.zst'));
  assert.is(r.n, raw.length);
  assert.is(r.sha, createHash('sha256').update(raw).digest('hex'));
});

test('a truncated zstd frame is an RpmFormatError', async () => {
  const z = readFileSync(join(dir, 'x.zst'));
  writeFileSync(join(dir, 't.zst'), z.subarray(0, z.length >> 1));
  try {
    await digest(join(dir, 't.zst'));
    assert.unreachable('truncation not detected');
  } catch (e) {
    assert.instance(e, RpmFormatError);
  }
});

test.after(() => rmSync(dir, { recursive: true, force: true }));
test.run();
