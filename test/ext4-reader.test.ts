import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, symlinkSync, linkSync, writeFileSync, existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { SparseFileTarget } from '../src/disk/target.js';
import { openExt4, readExt4Tree, writeExt4, Ext4Error } from '../src/fs/ext4/index.js';
import { IngotError } from '../src/errors.js';
import { openFileSource } from '../src/disk/file.js';
import { requireTool } from './helpers/tools.js';
import { SHARED } from './helpers/cli.js';
import { compareWithDebugfs, debugfs, run, tmp } from './ext4-oracle.js';

const dir = tmp();

/** A host directory with every kind of node mke2fs -d copies. */
function makeSource(): string {
  const src = join(dir, 'src');
  mkdirSync(join(src, 'etc'), { recursive: true });
  writeFileSync(join(src, 'etc/hostname'), 'host\n');
  writeFileSync(join(src, 'etc/tiny'), 'x');
  const big = Buffer.alloc(200 * 1024 + 33);
  for (let i = 0; i < big.length; i++) big[i] = (i * 31 + 7) & 0xff;
  writeFileSync(join(src, 'big.bin'), big);
  execFileSync('truncate', ['-s', '50M', join(src, 'sparse')]);
  execFileSync('sh', ['-c', `printf tail | dd of=${join(src, 'sparse')} bs=1 seek=30000000 conv=notrunc status=none`]);
  symlinkSync('etc/hostname', join(src, 'short-link'));
  symlinkSync('/' + 'long/'.repeat(30) + 'target', join(src, 'long-link'));
  linkSync(join(src, 'etc/hostname'), join(src, 'hard'));
  mkdirSync(join(src, 'dev'));
  execFileSync('mknod', [join(src, 'dev/null'), 'c', '1', '3']);
  execFileSync('mknod', [join(src, 'dev/sdb'), 'b', '8', '16']);
  execFileSync('mkfifo', [join(src, 'dev/fifo')]);
  mkdirSync(join(src, 'many'));
  for (let i = 0; i < 600; i++) writeFileSync(join(src, 'many', `entry-with-some-length-${i}`), `${i}`);
  mkdirSync(join(src, 'a/b/c/d/e/f'), { recursive: true });
  writeFileSync(join(src, 'a/b/c/d/e/f/deep'), 'deep');
  writeFileSync(join(src, 'attrs'), 'xattrs here');
  execFileSync('setfattr', ['-n', 'user.small', '-v', 'value', join(src, 'attrs')]);
  execFileSync('setfattr', ['-n', 'user.large', '-v', '0x' + 'ab'.repeat(700), join(src, 'attrs')]);
  execFileSync('setfattr', ['-n', 'trusted.t', '-v', 'tt', join(src, 'etc/tiny')]);
  execFileSync('chown', ['123456:654321', join(src, 'etc/tiny')]);
  execFileSync('chmod', ['4711', join(src, 'etc/tiny')]);
  return src;
}

const FEATURE_SETS: [string, string[]][] = [
  ['ext2', ['-t', 'ext2']],
  ['ext3', ['-t', 'ext3']],
  ['ext4', ['-t', 'ext4']],
  ['ext4-1k-64bit', ['-t', 'ext4', '-b', '1024', '-O', '64bit']],
  ['ext4-inline', ['-t', 'ext4', '-O', 'inline_data']],
  ['ext4-128-inode', ['-t', 'ext4', '-I', '128']],
  ['ext4-meta_bg', ['-t', 'ext4', '-O', '^resize_inode,meta_bg']],
  ['ext4-bigalloc', ['-t', 'ext4', '-O', 'bigalloc', '-C', '16384']],
];

let src = '';
test.before(() => {
  requireTool('mke2fs');
  requireTool('setfattr', 'attr');
  src = makeSource();
});

for (const [name, args] of FEATURE_SETS) {
  test(`reads an image made by mke2fs -d (${name}) like debugfs sees it`, async () => {
    const img = join(dir, `${name}.img`);
    const r = run('mke2fs', ['-q', '-F', ...args, '-d', src, img, '128M']);
    assert.is(r.code, 0, r.out);
    const source = await openFileSource(img);
    try {
      const reader = await openExt4(source, { file: img });
      const tree = await readExt4Tree(reader);
      // Every node debugfs sees, our reader sees with the same metadata and content.
      assert.equal(await compareWithDebugfs(tree, img), []);
      const names = [...tree.walk()].map((e) => e.path);
      for (const p of ['/etc/hostname', '/big.bin', '/sparse', '/long-link', '/dev/sdb', '/dev/fifo', '/many/entry-with-some-length-599', '/a/b/c/d/e/f/deep', '/attrs']) {
        assert.ok(names.includes(p), `${p} missing`);
      }
      // And the same as the source directory (a second, independent oracle).
      const x = tree.lookup('/attrs')!.xattrs;
      assert.is(Buffer.from(x.get('user.small')!).toString(), 'value');
      assert.is(x.get('user.large')!.length, 700);
      const tiny = tree.lookup('/etc/tiny')!;
      assert.is(tiny.uid, 123456);
      assert.is(tiny.mode, 0o4711);
      assert.is(tree.lookup('/hard')!, tree.lookup('/etc/hostname')!);
      const buf = new Uint8Array(4);
      await tree.lookup('/sparse')!.content!.read(buf, 30000000);
      assert.is(Buffer.from(buf).toString(), 'tail');
      assert.is(readdirSync(join(src, 'many')).length, tree.lookup('/many')!.entries!.size);
    } finally {
      await source.close();
    }
  });
}

test('reads back what the writer wrote (own round trip)', async () => {
  const srcImg = join(dir, 'ext4.img');
  const s1 = await openFileSource(srcImg);
  const tree = await readExt4Tree(await openExt4(s1));
  const out = join(dir, 'rewritten.img');
  const t = await SparseFileTarget.create(out, 256 << 20);
  await writeExt4(tree, t, { seed: 'r' });
  await t.close();
  assert.equal(await compareWithDebugfs(tree, out), []);
  await s1.close();
});

const FIXTURES = join(SHARED, 'fixtures/images/e2fsprogs');

test('e2fsprogs test images: readable ones list like debugfs, corrupt ones give typed errors, none crash or hang', async () => {
  const tests = readdirSync(FIXTURES).filter((d) => existsSync(join(FIXTURES, d, 'image.gz')) || existsSync(join(FIXTURES, d, 'image.bz2')));
  assert.ok(tests.length >= 40, `only ${tests.length} images`);
  let readable = 0, refused = 0, matched = 0;
  for (const t of tests) {
    const img = join(dir, `${t}.img`);
    if (existsSync(join(FIXTURES, t, 'image.gz'))) writeFileSync(img, gunzipSync(readFileSync(join(FIXTURES, t, 'image.gz'))));
    else writeFileSync(img, execFileSync('bzip2', ['-dc', join(FIXTURES, t, 'image.bz2')], { maxBuffer: 1 << 30 }));
    const source = await openFileSource(img);
    const t0 = Date.now();
    let ours: string[] | undefined;
    try {
      const reader = await openExt4(source, { file: img });
      ours = (await reader.readdir(await reader.inode(2))).map((e) => e.name).sort();
      // Walk and read everything reachable; a corrupt structure below the root may still refuse.
      try {
        for await (const e of reader.walk('/')) {
          if (e.stat.type === 'file') await reader.read(e.inode, 0, Math.min(e.stat.size, 1 << 20));
          if (e.stat.type === 'symlink') await reader.readlink(e.inode);
          await reader.xattrs(e.inode);
        }
        readable++;
      } catch (err) {
        assert.ok(err instanceof IngotError, `${t}: ${(err as Error).stack}`);
        refused++;
      }
    } catch (err) {
      assert.ok(err instanceof IngotError, `${t}: ${(err as Error).stack}`);
      assert.ok((err as Ext4Error).message.length > 0);
      refused++;
    } finally {
      await source.close();
    }
    assert.ok(Date.now() - t0 < 20000, `${t} took too long`);
    // Root listing equals debugfs's where both can read it.
    const [ls] = debugfs(img, ['ls -p /']);
    const theirs = (ls ?? '').split('\n').filter((l) => l.startsWith('/')).map((l) => /^\/\d+\/\d+\/\d+\/\d+\/(.*)\/\d*\/$/.exec(l)?.[1] ?? '').filter((n) => n && n !== '.' && n !== '..').sort();
    if (ours && theirs.length) {
      assert.equal(ours, theirs, t);
      matched++;
    }
    rmSync(img);
  }
  console.log(`e2fsprogs images: ${tests.length}, fully readable ${readable}, refused somewhere ${refused}, root listing equal to debugfs ${matched}`);
  assert.ok(matched >= 30, `only ${matched} root listings matched`);
});

test('garbage and truncated images give typed errors with an offset', async () => {
  const g = join(dir, 'garbage.img');
  writeFileSync(g, Buffer.alloc(8192, 0x41));
  const s = await openFileSource(g);
  try {
    await openExt4(s, { file: g });
    assert.unreachable();
  } catch (e) {
    assert.instance(e, Ext4Error);
    assert.is((e as Ext4Error).context.offset, 1024 + 0x38);
  }
  await s.close();
  const short = join(dir, 'short.img');
  writeFileSync(short, Buffer.alloc(100));
  const s2 = await openFileSource(short);
  try {
    await openExt4(s2);
    assert.unreachable();
  } catch (e) {
    assert.instance(e, Ext4Error);
  }
  await s2.close();
});

test.after(() => rmSync(dir, { recursive: true, force: true }));
test.run();
