import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { rejects } from './tree-util.js';
import { ContentStore, FdCache, FileSpanContent, HostFileContent, readAll } from '../src/tree/content-store.js';

const work = mkdtempSync(join(tmpdir(), 'ingot-content-'));
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

test('put buffers and streams; spans read back at any offset', async () => {
  const store = ContentStore.create({ dir: work });
  const a = randomBytes(100_000);
  const b = randomBytes(3 << 20);
  const ca = await store.put(a);
  const cb = await store.put(Readable.from([b.subarray(0, 1000), b.subarray(1000, 2_000_000), b.subarray(2_000_000)]));
  const empty = await store.put(new Uint8Array(0));
  assert.is(ca.size, a.length);
  assert.is(cb.size, b.length);
  assert.is(empty.size, 0);
  assert.is(sha(await readAll(ca)), sha(a));
  assert.is(sha(await readAll(cb)), sha(b));
  const mid = Buffer.alloc(5000);
  assert.is(await cb.read(mid, 1_999_000), 5000);
  assert.ok(mid.equals(b.subarray(1_999_000, 2_004_000)));
  assert.is(await ca.read(Buffer.alloc(10), a.length), 0, 'read at EOF');
  assert.is(store.bytesStored, a.length + b.length);
  // After a flush the segment files hold exactly the appended bytes.
  await store.flush();
  const seg = readdirSync(store.dir).map((f) => statSync(join(store.dir, f)).size).reduce((x, y) => x + y, 0);
  assert.is(seg, a.length + b.length);
  await store.dispose();
  assert.not.ok(existsSync(store.dir), 'dispose removes the store directory');
  await rejects(ca.read(Buffer.alloc(1), 0));
});

test('dedup returns the same content and rolls the append back', async () => {
  const store = ContentStore.create({ dir: work, dedup: true });
  const x = randomBytes(50_000);
  const c1 = await store.put(x);
  const c2 = await store.put(Readable.from([x.subarray(0, 7), x.subarray(7)]));
  const c3 = await store.put(randomBytes(10));
  assert.is(c1, c2);
  assert.is.not(c1, c3);
  assert.is(store.bytesStored, 50_010);
  assert.is(sha(await readAll(c3)).length, 64);
  await store.dispose();
});

test('concurrent puts are serialized and each reads back its own bytes', async () => {
  const store = ContentStore.create({ dir: work, segmentSize: 200_000 });
  const bufs = Array.from({ length: 40 }, (_, i) => randomBytes(1000 + i * 7919));
  const cs = await Promise.all(bufs.map((b) => store.put(b)));
  for (let i = 0; i < bufs.length; i++) assert.ok((await readAll(cs[i]!)).equals(bufs[i]!), `content ${i}`);
  assert.ok(readdirSync(store.dir).length > 1, 'rolled over to several segments');
  await store.flush();
  for (let i = 0; i < bufs.length; i++) assert.ok((await readAll(cs[i]!)).equals(bufs[i]!), `content ${i} after flush`);
  await store.dispose();
});

test('sparse contents keep only data ranges; holes read as zeros', async () => {
  const store = ContentStore.create({ dir: work });
  const d1 = randomBytes(4096), d2 = randomBytes(10_000);
  const size = 50 << 20;
  const c = await store.putSparse(size, [{ offset: 8192, data: d1 }, { offset: 40 << 20, data: Readable.from([d2]) }]);
  assert.is(c.size, size);
  assert.equal(c.dataRanges!(), [{ offset: 8192, length: 4096 }, { offset: 40 << 20, length: 10_000 }]);
  assert.is(store.bytesStored, 4096 + 10_000);
  const buf = Buffer.alloc(8192 + 4096 + 100);
  await c.read(buf, 0);
  assert.ok(buf.subarray(0, 8192).every((v) => v === 0));
  assert.ok(buf.subarray(8192, 12288).equals(d1));
  assert.ok(buf.subarray(12288).every((v) => v === 0));
  const straddle = Buffer.alloc(20_000);
  await c.read(straddle, (40 << 20) - 5000);
  assert.ok(straddle.subarray(0, 5000).every((v) => v === 0));
  assert.ok(straddle.subarray(5000, 15_000).equals(d2));
  await rejects(store.putSparse(10, [{ offset: 5, data: randomBytes(6) }]));
  await rejects(store.putSparse(100, [{ offset: 50, data: randomBytes(1) }, { offset: 10, data: randomBytes(1) }]));
  // A failed put leaves no bytes behind.
  assert.is(store.bytesStored, 4096 + 10_000);
  await store.dispose();
});

test('reads are right while appends are buffered, being written, and on disk', async () => {
  const store = ContentStore.create({ dir: work });
  const parts = Array.from({ length: 300 }, (_, i) => randomBytes(1 + ((i * 7919) % 70_000)));
  const big = randomBytes(9 << 20); // larger than the write buffer: written directly
  const cs = [];
  for (const [i, p] of parts.entries()) {
    cs.push(store.put(i === 150 ? big : p));
    // Read earlier contents while later puts are in flight.
    if (i % 25 === 0 && i > 0) { const c = await cs[i - 1]!; assert.ok((await readAll(c)).equals(i - 1 === 150 ? big : parts[i - 1]!)); }
  }
  const all = await Promise.all(cs);
  const reads = await Promise.all(all.map((c) => readAll(c)));
  reads.forEach((r, i) => assert.ok(r.equals(i === 150 ? big : parts[i]!), `content ${i}`));
  await store.dispose();
});

test('a failing source stream leaves the store unchanged', async () => {
  const store = ContentStore.create({ dir: work });
  async function* bad(): AsyncIterable<Uint8Array> { yield randomBytes(1000); throw new Error('boom'); }
  await rejects(store.put(bad()), /boom/);
  const ok = await store.put(Buffer.from('hello'));
  assert.is((await readAll(ok)).toString(), 'hello');
  assert.is(store.bytesStored, 5);
  await store.dispose();
});

test('FileSpanContent reads spans of host files through a bounded fd cache', async () => {
  const cache = new FdCache(8);
  const files = Array.from({ length: 50 }, (_, i) => {
    const p = join(work, `span-${i}`);
    const b = randomBytes(1000 + i);
    writeFileSync(p, b);
    return { p, b };
  });
  const spans = files.map(({ p, b }) => new FileSpanContent(p, 100, b.length - 200, { fdCache: cache }));
  const results = await Promise.all(spans.map((s) => readAll(s)));
  for (let i = 0; i < files.length; i++) assert.ok(results[i]!.equals(files[i]!.b.subarray(100, files[i]!.b.length - 100)), `span ${i}`);
  assert.ok(cache.openCount <= 8, `open fds ${cache.openCount}`);
  assert.ok(cache.maxSeen <= 8, `peak open fds ${cache.maxSeen}`);
  const sparse = new FileSpanContent(files[0]!.p, 0, 1000, { fdCache: cache, dataRanges: [{ offset: 10, length: 5 }] });
  const all = await readAll(sparse);
  assert.ok(all.subarray(10, 15).equals(files[0]!.b.subarray(10, 15)));
  assert.is(all.subarray(0, 10).reduce((x, y) => x + y, 0) + all.subarray(15).reduce((x, y) => x + y, 0), 0);
  // A file that shrank since import is a typed error, not a silent short read.
  const s2 = new FileSpanContent(files[1]!.p, 0, 5000, { fdCache: cache });
  await rejects(readAll(s2), /shorter than its recorded span/);
  await cache.closeAll();
  assert.is(cache.openCount, 0);
});

test('readSync of host contents equals read (whole, spans, sparse ranges, at any position)', async () => {
  const p = join(work, 'sync-src');
  const b = randomBytes(70_000);
  writeFileSync(p, b);
  const contents = [
    new HostFileContent({ path: work, fdCache: new FdCache(4) }, 'sync-src', b.length),
    new FileSpanContent(p, 1234, 50_000),
    new HostFileContent({ path: work, fdCache: new FdCache(4) }, 'sync-src', b.length, [{ offset: 4096, length: 5000 }, { offset: 40_000, length: 12_345 }]),
    new FileSpanContent(p, 100, 60_000, { dataRanges: [{ offset: 0, length: 10 }, { offset: 59_000, length: 1000 }] }),
  ];
  for (const c of contents) {
    for (const [pos, len] of [[0, c.size], [1, 4095], [4000, 20_000], [c.size - 7, 100], [c.size, 10]] as const) {
      const a = new Uint8Array(len).fill(0xaa);
      const s2 = new Uint8Array(len).fill(0x55);
      const na = await c.read(a, pos);
      const ns = c.readSync!(s2, pos);
      assert.is(ns, na, `count at ${pos}`);
      assert.ok(Buffer.from(a.subarray(0, na)).equals(Buffer.from(s2.subarray(0, ns))), `bytes at ${pos}`);
    }
  }
  // The sparse host content: data where the ranges are, zeros elsewhere (oracle: the file bytes).
  const all = await readAll(contents[2]!);
  assert.ok(all.subarray(4096, 9096).equals(b.subarray(4096, 9096)));
  assert.is(all.subarray(0, 4096).reduce((x, y) => x + y, 0) + all.subarray(9096, 40_000).reduce((x, y) => x + y, 0), 0);
  assert.is(contents[0]!.path, `${work}/sync-src`);
  assert.throws(() => new FileSpanContent(p, 0, 80_000).readSync(new Uint8Array(80_000), 0), /shorter than its recorded span/);
});

test.after(() => rmSync(work, { recursive: true, force: true }));
test.run();
