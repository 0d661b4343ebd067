import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { copyFileSync, readFileSync, rmSync, statSync, openSync, readSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { StagingTree, BufferContent, type FileContent } from '../src/tree/tree.js';
import { SparseFileTarget, MemoryTarget, SubTarget } from '../src/disk/target.js';
import { writeExt4, planExt4Size, type Ext4Options } from '../src/fs/ext4/index.js';
import { Ext4Error } from '../src/fs/ext4/errors.js';
import { requireTool } from './helpers/tools.js';
import { compareWithDebugfs, debugfs, dumpe2fsHeader, fsck, run, tmp } from './ext4-oracle.js';

const SDE = 1700000000;
const dir = tmp();
let n = 0;

async function build(tree: StagingTree, opts: Ext4Options = {}, size = 64 << 20): Promise<string> {
  const img = join(dir, `img${n++}.ext4`);
  const t = await SparseFileTarget.create(img, size);
  try {
    await writeExt4(tree, t, { seed: 'test', sourceDateEpoch: SDE, ...opts });
  } finally {
    await t.close();
  }
  return img;
}

async function rejects(fn: () => Promise<unknown>, ok: (e: unknown) => boolean): Promise<void> {
  try {
    await fn();
  } catch (e) {
    assert.ok(ok(e), String(e));
    return;
  }
  assert.unreachable('expected a rejection');
}

function assertClean(img: string, extra: string[] = []): void {
  const r = fsck(img, extra);
  assert.equal(r.problems, [], r.out);
  assert.is(r.code, 0, r.out);
}

/** A sparse content: data only in `ranges`, zeros elsewhere. */
class SparseContent implements FileContent {
  constructor(readonly size: number, private readonly ranges: { offset: number; length: number }[], private readonly fill = 0x5a) {}
  dataRanges() { return this.ranges; }
  async read(buf: Uint8Array, position: number): Promise<number> {
    const n = Math.max(0, Math.min(buf.length, this.size - position));
    buf.fill(0, 0, n);
    for (const r of this.ranges) {
      const s = Math.max(r.offset, position), e = Math.min(r.offset + r.length, position + n);
      if (e > s) buf.fill(this.fill, s - position, e - position);
    }
    return n;
  }
}

function everyType(): StagingTree {
  const t = new StagingTree({ defaultTime: { sec: 1600000000, nsec: 987654321 } });
  t.mkdirp('/etc', { mode: 0o755 });
  t.addFile('/etc/hostname', BufferContent.of('ingot\n'), { mode: 0o644, mtime: { sec: 1650000000, nsec: 123456789 } });
  t.addFile('/etc/shadow', BufferContent.of('root:!:1::::::\n'), { mode: 0o640, uid: 0, gid: 42 });
  t.addFile('/home/big/owner', BufferContent.of('high ids'), { uid: 100000, gid: 200000, mode: 0o600 });
  t.addFile('/usr/bin/suid', BufferContent.of('#!/bin/sh\n'), { mode: 0o4755 });
  t.mkdirp('/tmp', { mode: 0o1777 });
  t.addFile('/empty', BufferContent.of(''));
  const blob = Buffer.alloc(3 * 4096 + 17);
  for (let i = 0; i < blob.length; i++) blob[i] = (i * 7 + 3) & 0xff;
  t.addFile('/usr/lib/blob.bin', new BufferContent(blob));
  t.symlink('/etc/localtime', '../usr/share/zoneinfo/UTC');
  t.symlink('/usr/lib/long', '/' + 'x'.repeat(58) + '/' + 'y'.repeat(200));
  t.symlink('/edge59', 'z'.repeat(59));
  t.symlink('/edge60', 'z'.repeat(60));
  t.mknod('/dev/null', 'chardev', { major: 1, minor: 3 }, { mode: 0o666 });
  t.mknod('/dev/sdq', 'blockdev', { major: 65, minor: 300 }, { mode: 0o660, gid: 6 });
  t.mknod('/dev/big', 'chardev', { major: 4000, minor: 70000 });
  t.mknod('/run/initctl', 'fifo', undefined, { mode: 0o600 });
  t.mknod('/run/sock', 'socket', undefined, { mode: 0o755 });
  t.hardlink('/usr/bin/suid-link', '/usr/bin/suid');
  t.hardlink('/etc/hostname2', '/etc/hostname');
  t.hardlink('/etc/hostname3', '/etc/hostname');
  t.addFile('/sec/labelled', BufferContent.of('x'), {
    xattrs: { 'security.selinux': Buffer.from('system_u:object_r:etc_t:s0\0'), 'user.a': Buffer.from('1') },
  });
  t.addFile('/sec/cap', BufferContent.of('x'), {
    xattrs: { 'security.capability': Buffer.from('0100000200200000000000000000000000000000', 'hex'), 'trusted.t': Buffer.from('t') },
  });
  const big = Buffer.alloc(900);
  for (let i = 0; i < big.length; i++) big[i] = i & 0xff;
  t.addFile('/sec/blockattr1', BufferContent.of('a'), { xattrs: { 'user.big': big, 'user.small': Buffer.from('s') } });
  t.addFile('/sec/blockattr2', BufferContent.of('b'), { xattrs: { 'user.big': big, 'user.small': Buffer.from('s') } });
  t.mkdirp('/sec/dirattr', { xattrs: { 'user.onadir': Buffer.from('yes') } });
  t.addFile('/future', BufferContent.of('clamped'), { mtime: { sec: SDE + 1000, nsec: 5 } });
  return t;
}

test('empty tree: e2fsck clean, features as asked', async () => {
  const img = await build(new StagingTree(), { label: 'empty' });
  assertClean(img);
  const h = dumpe2fsHeader(img);
  for (const f of ['has_journal', 'resize_inode', 'ext_attr', 'dir_index', 'filetype', 'extent', 'flex_bg', 'sparse_super', 'large_file', 'huge_file', 'dir_nlink', 'extra_isize', 'metadata_csum']) {
    assert.ok(new RegExp(`features:.*\\b${f}\\b`).test(h), `${f} missing in ${h}`);
  }
  assert.match(h, /Filesystem volume name:\s+empty/);
  assert.match(h, /Total journal size:\s+4096k/);
});

test('every file type, hard links, xattrs in-inode and in a shared block, long symlinks: e2fsck + debugfs round trip', async () => {
  const t = everyType();
  const img = await build(t);
  assertClean(img);
  const diffs = await compareWithDebugfs(t, img, SDE);
  assert.equal(diffs, []);
  // The two identical external xattr blocks are one block with refcount 2.
  const [a, b] = debugfs(img, ['stat /sec/blockattr1', 'stat /sec/blockattr2']);
  const acl = (s: string) => /File ACL: (\d+)/.exec(s)![1];
  assert.ok(Number(acl(a!)) > 0);
  assert.is(acl(a!), acl(b!));
  const [x] = debugfs(img, [`block_dump -x ${acl(a!)}`]);
  assert.match(x!, /refcount = 2, blocks = 1/);
});

for (const combo of [
  { blockSize: 1024 }, { blockSize: 2048 }, { blockSize: 4096 },
  { blockSize: 1024, bit64: true }, { blockSize: 4096, bit64: true },
  { journal: false }, { journal: false, bit64: true, blockSize: 2048 },
  { metadataCsum: false }, { metadataCsum: false, blockSize: 1024, journal: false },
  { hashVersion: 'tea' }, { hashVersion: 'legacy' }, { inodeSize: 512 }, { resizeInode: false, blockSize: 1024 },
] as Ext4Options[]) {
  test(`feature combination ${JSON.stringify(combo)}: e2fsck clean, round trip, dumpe2fs features`, async () => {
    const t = everyType();
    for (let i = 0; i < 400; i++) t.addFile(`/many/entry-number-${i}`, BufferContent.of(`${i}`));
    const img = await build(t, combo, 96 << 20);
    assertClean(img);
    assert.equal(await compareWithDebugfs(t, img, SDE), []);
    const h = dumpe2fsHeader(img);
    assert.match(h, new RegExp(`Block size:\\s+${combo.blockSize ?? 4096}\\n`));
    const feats = /features:\s+(.*)/.exec(h)![1]!;
    assert.is(/\b64bit\b/.test(feats), !!combo.bit64, feats);
    assert.is(/has_journal/.test(feats), combo.journal !== false, feats);
    assert.is(/metadata_csum/.test(feats), combo.metadataCsum !== false, feats);
    assert.is(/uninit_bg/.test(feats), combo.metadataCsum === false, feats);
    assert.is(/resize_inode/.test(feats), combo.resizeInode !== false, feats);
  });
}

test('20,000-entry directory becomes an htree that e2fsck -fD leaves alone', async () => {
  const t = new StagingTree();
  for (let i = 0; i < 20000; i++) t.addFile(`/d/f${i.toString(36)}-${'n'.repeat(i % 40)}`, BufferContent.of(''));
  for (const blockSize of [4096, 1024] as const) {
    const img = await build(t, { blockSize }, 128 << 20);
    assertClean(img);
    const [st, ht] = debugfs(img, ['stat /d', 'htree /d']);
    assert.ok((parseInt(/Flags: 0x([0-9a-f]+)/.exec(st!)![1]!, 16) & 0x1000) !== 0, 'INDEX_FL');
    assert.match(ht!, /Root node dump:/);
    if (blockSize === 1024) assert.match(ht!, /Indirect levels: 1/);
    const copy = img + '.D';
    copyFileSync(img, copy);
    const r = run('e2fsck', ['-fyD', copy]);
    const msgs = r.out.split('\n').filter((l) => l.trim() && !/^(e2fsck \d|Pass \d|Pass 3A|.*FILE SYSTEM WAS MODIFIED|.*: \d+\/\d+ files)/.test(l));
    assert.equal(msgs, [], r.out);
    assert.is(r.code, 0, r.out);
    rmSync(copy);
    // Every name is found through the index (debugfs looks names up via the htree).
    const names = [...t.lookup('/d')!.entries!.keys()].filter((_, i) => i % 997 === 0);
    const outs = debugfs(img, names.map((x) => `stat /d/${x}`));
    outs.forEach((o, i) => assert.match(o, /Type: regular/, names[i]));
  }
});

test('sparse files and a sparse 5 GiB file keep their holes', async () => {
  const t = new StagingTree();
  t.addFile('/sparse', new SparseContent(10 * 4096 + 100, [{ offset: 4096 * 3, length: 10 }, { offset: 4096 * 8, length: 5000 }]));
  const huge = 5 * 2 ** 30 + 12345;
  t.addFile('/huge', new SparseContent(huge, [{ offset: 0, length: 4096 }, { offset: 2 ** 32 + 4096, length: 8192 }, { offset: huge - 100, length: 100 }]));
  t.addFile('/hole-only', new SparseContent(1 << 20, []));
  const img = await build(t);
  assertClean(img);
  assert.equal(await compareWithDebugfs(t, img, SDE, 1 << 30), []);
  const [h] = debugfs(img, ['stat /huge']);
  assert.match(h!, new RegExp(`Size: ${huge}\\n`));
  assert.match(h!, /Blockcount: 40\n/); // 5 blocks of 4 KiB
  // Logical extents exactly the data ranges: block 0, two blocks past 4 GiB, the two last blocks.
  assert.match(h!, /EXTENTS:\n\(0\):\d+, \(1048577-1048578\):\d+-\d+, \(1310722-1310723\):\d+-\d+\n/);
  const part = join(dir, 'huge.part');
  debugfs(img, [`dump /huge ${part}`]);
  const fd = openSync(part, 'r');
  const tail = Buffer.alloc(100);
  readSync(fd, tail, 0, 100, huge - 100);
  const mid = Buffer.alloc(4096);
  readSync(fd, mid, 0, 4096, 2 ** 32 + 4096);
  closeSync(fd);
  rmSync(part);
  assert.ok(tail.every((b) => b === 0x5a) && mid.every((b) => b === 0x5a));
  const [s] = debugfs(img, ['stat /hole-only']);
  assert.match(s!, /Blockcount: 0\n/);
  // The image itself stays small: unwritten inode tables and holes are holes.
  assert.ok(statSync(img).blocks * 512 < 2 << 20, `image uses ${statSync(img).blocks * 512} bytes`);
});

test('deep paths and many files (5,000; 100,000 with INGOT_LONG=1)', async () => {
  const t = new StagingTree();
  let p = '';
  for (let i = 0; i < 200; i++) p += `/level${i}`;
  t.addFile(`${p}/leaf`, BufferContent.of('deep'));
  const count = process.env.INGOT_LONG ? 100000 : 5000;
  for (let i = 0; i < count; i++) t.addFile(`/m/${i % 50}/${i % 7}/file${i}`, BufferContent.of(`content ${i}\n`.repeat(i % 300)));
  const img = await build(t, { size: 'auto' }, 2 * 2 ** 30);
  assertClean(img);
  assert.equal(await compareWithDebugfs(t, img, SDE), []);
});

test('resize2fs grows the image and e2fsck stays clean', async () => {
  requireTool('resize2fs');
  const t = everyType();
  const img = await build(t, {}, 64 << 20);
  const r = run('truncate', ['-s', '1G', img]);
  assert.is(r.code, 0);
  const rs = run('resize2fs', [img, '1G']);
  assert.is(rs.code, 0, rs.out);
  assertClean(img);
  assert.match(dumpe2fsHeader(img), /Block count:\s+262144/);
  // Past the first descriptor block (128 groups = 16 GiB): uses the reserved GDT blocks of resize_inode.
  assert.is(run('truncate', ['-s', '20G', img]).code, 0);
  const big = run('resize2fs', [img, '20G']);
  assert.is(big.code, 0, big.out);
  assertClean(img);
});

test('same seed and SOURCE_DATE_EPOCH give byte-identical images', async () => {
  const a = await build(everyType());
  const b = await build(everyType());
  const h = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');
  assert.is(h(a), h(b));
  const c = await build(everyType(), { seed: 'other' });
  assert.is.not(h(a), h(c));
});

test('a contiguous file is reported with its physical blocks', async () => {
  const t = everyType();
  const data = Buffer.alloc(300 * 1024);
  for (let i = 0; i < data.length; i++) data[i] = (i * 13) & 0xff;
  t.addFile('/boot/ldlinux.sys', new BufferContent(data));
  const img = join(dir, 'contig.img');
  const tg = await SparseFileTarget.create(img, 64 << 20);
  const res = await writeExt4(t, tg, { seed: 's', sourceDateEpoch: SDE, contiguous: ['/boot/ldlinux.sys'] });
  await tg.close();
  const pl = res.files['/boot/ldlinux.sys']!;
  assert.is(pl.extents.length, 1);
  assert.is(pl.extents[0]!.len, 75);
  const fd = openSync(img, 'r');
  const got = Buffer.alloc(data.length);
  readSync(fd, got, 0, got.length, pl.byteOffset);
  closeSync(fd);
  assert.ok(got.equals(data));
  const [st] = debugfs(img, ['stat /boot/ldlinux.sys']);
  assert.match(st!, new RegExp(`\\(0-74\\):${pl.extents[0]!.pblk}-${pl.extents[0]!.pblk + 74}`));
  assertClean(img);
});

test('a fragmented file gets an extent index block', async () => {
  const t = new StagingTree();
  const frags = Array.from({ length: 40 }, (_, i) => ({ offset: i * 8 * 4096, length: 4096 }));
  t.addFile('/frag', new SparseContent(40 * 8 * 4096, frags));
  const img = await build(t);
  assertClean(img);
  const [st] = debugfs(img, ['stat /frag']);
  assert.match(st!, /\(ETB0\):/);
  assert.equal(await compareWithDebugfs(t, img, SDE), []);
});

test('writes into a partition window (SubTarget) and only there', async () => {
  const disk = new MemoryTarget(80 << 20);
  const win = new SubTarget(disk, 1 << 20, 64 << 20);
  await writeExt4(everyType(), win, { seed: 'w', sourceDateEpoch: SDE });
  for await (const r of disk.allocated()) {
    assert.ok(r.offset >= 1 << 20 && r.offset + r.length <= 65 << 20, JSON.stringify(r));
  }
});

test('bad input: too small size names the size needed; long names and loops are typed errors', async () => {
  const t = new StagingTree();
  t.addFile('/big', new SparseContent(40 << 20, [{ offset: 0, length: 40 << 20 }]));
  try {
    await writeExt4(t, new MemoryTarget(16 << 20), {});
    assert.unreachable();
  } catch (e) {
    assert.instance(e, Ext4Error);
    assert.is((e as Ext4Error).code, 'EXT4_NO_SPACE');
    const need = planExt4Size(t, { size: 'auto', headroom: 0, extraBytes: 0 }).bytes;
    assert.ok((e as Error).message.includes('at least'), (e as Error).message);
    assert.ok(need > 40 << 20);
  }
  const long = new StagingTree();
  const t0 = { sec: 0, nsec: 0 };
  long.root.entries!.set('n'.repeat(256), { ...long.root, atime: t0, mtime: t0, ctime: t0, xattrs: new Map(), id: 999, type: 'file', content: BufferContent.of(''), entries: undefined, nlink: 1 });
  await rejects(() => writeExt4(long, new MemoryTarget(16 << 20), {}), (e: unknown) => e instanceof Ext4Error && e.code === 'EXT4_NAME_TOO_LONG');
  const slash = new StagingTree();
  slash.root.entries!.set('a/b', { ...slash.root, atime: t0, mtime: t0, ctime: t0, xattrs: new Map(), id: 998, type: 'file', content: BufferContent.of(''), entries: undefined, nlink: 1 });
  await rejects(() => writeExt4(slash, new MemoryTarget(16 << 20), {}), (e: unknown) => e instanceof Ext4Error && e.code === 'EXT4_BAD_NAME');
  const loop = new StagingTree();
  const d = loop.mkdirp('/a/b');
  d.entries!.set('back', loop.lookup('/a')!);
  await rejects(() => writeExt4(loop, new MemoryTarget(16 << 20), {}), (e: unknown) => e instanceof Ext4Error && e.code === 'EXT4_LINK_LOOP');
});

test.after(() => rmSync(dir, { recursive: true, force: true }));
test.run();
