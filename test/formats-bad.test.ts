// Bad input: truncated and corrupt images give typed errors naming the file
// and offset — never a read outside the file, a hang, or unbounded memory.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { closeSync, existsSync, openSync, readFileSync, readSync, readdirSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { ImageFormatError, openImage, writeImage, type WriteOptions } from '../formats/index.js';
import { QcowHeader } from '../formats/qcow2.js';
import { MiB, makeDisk, prng, run, tmp } from './formats-fixture.js';

const t = tmp();
const input = join(t.dir, 'in.raw');
makeDisk(input, 8 * MiB);

async function make(name: string, opts: WriteOptions): Promise<string> {
  const out = join(t.dir, name);
  const img = await openImage(input);
  try { await writeImage(img, out, opts); } finally { await img.close(); }
  return out;
}

/** Open and read the whole image; resolves to the error thrown (or null when it read fine). */
async function readAll(path: string): Promise<unknown> {
  let img;
  try {
    img = await openImage(path);
    const buf = Buffer.alloc(1 << 20);
    for (let p = 0; p < img.size; p += buf.length) await img.read(buf, p);
    for await (const _ of img.allocated()) { /* walk the map too */ }
    return null;
  } catch (e) {
    return e;
  } finally {
    await img?.close();
  }
}

function patch(path: string, offset: number, bytes: Buffer): void {
  const fd = openSync(path, 'r+');
  writeSync(fd, bytes, 0, bytes.length, offset);
  closeSync(fd);
}
function peek(path: string, offset: number, n: number): Buffer {
  const fd = openSync(path, 'r'); const b = Buffer.alloc(n); readSync(fd, b, 0, n, offset); closeSync(fd); return b;
}
const u64 = (v: bigint) => { const b = Buffer.alloc(8); b.writeBigUInt64BE(v); return b; };
const u32 = (v: number) => { const b = Buffer.alloc(4); b.writeUInt32BE(v); return b; };

async function expectCode(path: string, code: string, withOffset = true): Promise<ImageFormatError> {
  const e = await readAll(path);
  assert.instance(e, ImageFormatError, `expected ${code}, got ${String(e)}`);
  const err = e as ImageFormatError;
  assert.is(err.code, code, err.message);
  assert.ok(err.context.file?.includes(path) || err.message.includes(path), `error names the file: ${err.message}`);
  if (withOffset) assert.ok(err.context.offset !== undefined, `error names an offset: ${err.message}`);
  return err;
}

test('qcow2 truncated inside the header', async () => {
  const f = await make('trunc.qcow2', { format: 'qcow2' });
  truncateSync(f, 60);
  await expectCode(f, 'QCOW2_TRUNCATED');
});

test('qcow2 L1 table offset past the end of the file', async () => {
  const f = await make('l1.qcow2', { format: 'qcow2' });
  patch(f, QcowHeader.fields.l1_table_offset.offset, u64(1n << 40n));
  await expectCode(f, 'QCOW2_L1_OUT_OF_RANGE');
});

test('qcow2 L1 entry pointing an L2 table outside the file', async () => {
  const f = await make('l2.qcow2', { format: 'qcow2' });
  const l1 = Number(peek(f, QcowHeader.fields.l1_table_offset.offset, 8).readBigUInt64BE());
  patch(f, l1, u64((1n << 63n) | (1n << 36n)));
  const e = await expectCode(f, 'QCOW2_L2_OUT_OF_RANGE');
  assert.is(Number(e.context.offset), l1);
});

test('qcow2 L2 entry pointing a data cluster outside the file', async () => {
  const f = await make('data.qcow2', { format: 'qcow2' });
  const l1 = Number(peek(f, QcowHeader.fields.l1_table_offset.offset, 8).readBigUInt64BE());
  const l2 = Number(peek(f, l1, 8).readBigUInt64BE() & 0x00fffffffffffe00n);
  // Cluster 16 (1 MiB) holds data in the test disk.
  patch(f, l2 + 16 * 8, u64((1n << 63n) | (1n << 35n)));
  await expectCode(f, 'QCOW2_CLUSTER_OUT_OF_RANGE');
});

test('qcow2 refcount table too large, refcount order overflow', async () => {
  const f = await make('rt.qcow2', { format: 'qcow2' });
  patch(f, QcowHeader.fields.refcount_table_clusters.offset, u32(0xffffffff));
  await expectCode(f, 'QCOW2_REFCOUNT_TABLE');
  const g = await make('ro.qcow2', { format: 'qcow2' });
  patch(g, QcowHeader.fields.refcount_order.offset, u32(7));
  await expectCode(g, 'QCOW2_REFCOUNT_ORDER');
});

test('qcow2 corrupt compressed cluster', async () => {
  const f = await make('cc.qcow2', { format: 'qcow2', compress: true });
  const l1 = Number(peek(f, QcowHeader.fields.l1_table_offset.offset, 8).readBigUInt64BE());
  const l2 = Number(peek(f, l1, 8).readBigUInt64BE() & 0x00fffffffffffe00n);
  const table = peek(f, l2, 65536);
  let e = 0n;
  for (let i = 0; i < 8192 && !(e & (1n << 62n)); i++) e = table.readBigUInt64BE(i * 8);
  assert.ok(e & (1n << 62n), 'a compressed cluster exists');
  const host = Number(e & ((1n << 54n) - 1n));
  patch(f, host, Buffer.alloc(64, 0xff));
  await expectCode(f, 'QCOW2_BAD_COMPRESSED');
});

test('qcow2 backing chain loop (self and two-step) and missing backing file', async () => {
  const a = join(t.dir, 'loop-a.qcow2'), b = join(t.dir, 'loop-b.qcow2');
  const base = await make('lbase.qcow2', { format: 'qcow2' });
  await make('loop-a.qcow2', { format: 'qcow2', backing: 'lbase.qcow2' });
  await make('loop-b.qcow2', { format: 'qcow2', backing: 'loop-a.qcow2' });
  // Point a's backing name (same length) at b: a → b → a.
  const hdr = peek(a, 0, 4096);
  const off = Number(hdr.readBigUInt64BE(8)), len = hdr.readUInt32BE(16);
  assert.is(hdr.toString('utf8', off, off + len), 'lbase.qcow2');
  patch(a, off, Buffer.from('loop-b.qcow2'.slice(0, 0) + 'loop-b.qcow2'));
  patch(a, 16, u32('loop-b.qcow2'.length));
  await expectCode(b, 'QCOW2_BACKING_LOOP');
  patch(a, off, Buffer.from('loop-a.qcow2'));
  await expectCode(a, 'QCOW2_BACKING_LOOP');
  // Missing backing file.
  const m = await make('miss.qcow2', { format: 'qcow2', backing: 'lbase.qcow2' });
  const { renameSync } = await import('node:fs');
  renameSync(base, base + '.gone');
  const err = await expectCode(m, 'QCOW2_BACKING_MISSING');
  assert.match(err.message, /lbase\.qcow2/);
  renameSync(base + '.gone', base);
});

test('vhd footer checksum mismatch', async () => {
  const f = await make('bad.vhd', { format: 'vhd' });
  const size = readFileSync(f).length;
  patch(f, size - 512 + 48, u64(1n << 30n)); // change current_size
  patch(f, 48, u64(1n << 30n)); // and the copy at 0
  const e = await expectCode(f, 'VHD_FOOTER_CHECKSUM');
  assert.is(Number(e.context.offset), size - 512 + 64);
});

test('vhd Block Allocation Table larger than the file', async () => {
  const f = await make('bat.vhd', { format: 'vhd' });
  // Dynamic header at 512: max_table_entries (offset 28); fix its checksum (offset 36) so the BAT check is reached.
  const dh = peek(f, 512, 1024);
  dh.writeUInt32BE(0x40000000, 28);
  dh.writeUInt32BE(0, 36);
  let s = 0; for (const b of dh) s += b;
  dh.writeUInt32BE((~s) >>> 0, 36);
  patch(f, 512, dh);
  await expectCode(f, 'VHD_BAT');
});

test('vmdk grain table outside the file', async () => {
  const f = await make('gt.vmdk', { format: 'vmdk' });
  const gdSector = Number(peek(f, 56, 8).readBigUInt64LE());
  patch(f, gdSector * 512, Buffer.from([0xff, 0xff, 0xff, 0x7f]));
  const e = await expectCode(f, 'VMDK_GT_OUT_OF_RANGE');
  assert.is(Number(e.context.offset), gdSector * 512);
});

test('vmdk streamOptimized truncated (footer gone)', async () => {
  const f = await make('so.vmdk', { format: 'vmdk', subformat: 'streamOptimized' });
  truncateSync(f, readFileSync(f).length - 700);
  await expectCode(f, 'VMDK_FOOTER');
});

test('zip with no disk image', async () => {
  const dir = join(t.dir, 'z'); const { mkdirSync } = await import('node:fs');
  mkdirSync(dir);
  writeFileSync(join(dir, 'README.txt'), 'no disk here\n');
  assert.is(run('zip', ['-q', join(t.dir, 'nodisk.zip'), 'README.txt'], { cwd: dir }).code, 0);
  await expectCode(join(t.dir, 'nodisk.zip'), 'ZIP_NO_IMAGE', false);
});

test('truncated raw.xz and tar.gz are typed errors', async () => {
  const x = await make('t.raw.xz', { format: 'raw.xz' });
  truncateSync(x, 2000);
  const e = await readAll(x);
  assert.instance(e, ImageFormatError);
  const g = await make('t.tar.gz', { format: 'tar.gz' });
  truncateSync(g, 3000);
  const e2 = await readAll(g);
  assert.instance(e2, ImageFormatError, String(e2));
});

test('fuzz: 300 seeded corruptions of qcow2/vhd/vmdk headers and tables → read fine or typed error, quickly', async () => {
  const seeds: [string, WriteOptions][] = [
    ['fz.qcow2', { format: 'qcow2', compress: true }], ['fz2.qcow2', { format: 'qcow2' }],
    ['fz.vhd', { format: 'vhd' }], ['fz.vmdk', { format: 'vmdk' }], ['fzs.vmdk', { format: 'vmdk', subformat: 'streamOptimized' }],
  ];
  const n = Number(process.env.INGOT_FUZZ ?? 60);
  let typed = 0, fine = 0;
  for (const [name, opts] of seeds) {
    const good = readFileSync(await make(name, opts));
    const rnd = prng(name, n * 16);
    for (let i = 0; i < n; i++) {
      const bad = Buffer.from(good);
      // Flip bytes in the metadata areas: the first 4 KiB, the last 2 KiB, and one anywhere.
      for (let k = 0; k < 3; k++) {
        const r = rnd.readUInt32BE((i * 4 + k) * 4);
        const at = k === 0 ? r % 4096 : k === 1 ? bad.length - 1 - (r % 2048) : r % bad.length;
        bad[at] = rnd[(i * 16 + k + 12) % rnd.length]!;
      }
      const f = join(t.dir, `fuzz-${name}`);
      writeFileSync(f, bad);
      const t0 = Date.now();
      const e = await readAll(f);
      assert.ok(Date.now() - t0 < 20_000, `${name} #${i} took ${Date.now() - t0} ms`);
      if (e === null) fine++;
      else {
        assert.instance(e, ImageFormatError, `${name} #${i}: ${(e as Error)?.stack}`);
        typed++;
      }
    }
  }
  console.log(`fuzz: ${fine} read, ${typed} typed errors`);
});

test('a failed conversion leaves neither output nor temp file', async () => {
  const f = await make('fail.qcow2', { format: 'qcow2' });
  const l1 = Number(peek(f, QcowHeader.fields.l1_table_offset.offset, 8).readBigUInt64BE());
  patch(f, l1, u64((1n << 63n) | (1n << 36n)));
  const img = await openImage(f);
  const out = join(t.dir, 'never.raw');
  try {
    await writeImage(img, out, { format: 'raw' });
    assert.unreachable();
  } catch (e) {
    assert.instance(e, ImageFormatError);
  } finally {
    await img.close();
  }
  assert.not.ok(existsSync(out));
  assert.not.ok(readdirSync(t.dir).some((x) => x.includes('.ingot-')));
});

test.after(() => t.done());
test.run();
