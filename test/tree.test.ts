import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { StagingTree, BufferContent, assertSafeRelative, compareBytes, xattrsOf } from '../src/tree/tree.js';
import { PathEscapeError } from '../src/errors.js';

test('symlinked directories are followed chroot-style (usrmove)', () => {
  const t = new StagingTree();
  t.mkdirp('/usr/lib');
  t.symlink('/lib', 'usr/lib');
  t.addFile('/lib/modules/x.ko', BufferContent.of('m'));
  assert.ok(t.lookup('/usr/lib/modules/x.ko'));
  assert.is(t.lookup('/lib', { follow: false })!.type, 'symlink');
});

test('absolute symlinks and .. never leave the root', () => {
  const t = new StagingTree();
  t.symlink('/escape', '../../../../etc');
  t.addFile('/escape/passwd', BufferContent.of('root'));
  assert.ok(t.lookup('/etc/passwd'));
});

test('link loops are refused', () => {
  const t = new StagingTree();
  t.symlink('/a', 'b');
  t.symlink('/b', 'a');
  assert.throws(() => t.addFile('/a/x', BufferContent.of('')), /too many levels/);
});

test('untrusted .. is a PathEscapeError', () => {
  assert.throws(() => assertSafeRelative('./usr/../../etc/shadow'), (e: unknown) => e instanceof PathEscapeError);
});

test('hard links share one inode; nlink counts names', () => {
  const t = new StagingTree();
  const a = t.addFile('/a', BufferContent.of('x'));
  t.hardlink('/b', '/a');
  assert.is(t.lookup('/b'), a);
  assert.is(a.nlink, 2);
  t.remove('/a');
  assert.is(a.nlink, 1);
});

test('walk is in byte order, parents first', () => {
  const t = new StagingTree();
  for (const p of ['/b/z', '/a', '/B', '/b/a']) t.addFile(p, BufferContent.of(''));
  assert.equal([...t.walk()].map((e) => e.path), ['/', '/B', '/a', '/b', '/b/a', '/b/z']);
});

test('detach splits a mount point off, leaving an empty directory', () => {
  const t = new StagingTree();
  t.addFile('/boot/efi/EFI/BOOT/BOOTX64.EFI', BufferContent.of('pe'));
  t.addFile('/boot/vmlinuz', BufferContent.of('k'));
  t.mkdirp('/boot/efi', { mode: 0o700 });
  const esp = t.detach('/boot/efi');
  assert.ok(esp.lookup('/EFI/BOOT/BOOTX64.EFI'));
  assert.is(t.lookup('/boot/efi')!.entries!.size, 0);
  assert.is(t.lookup('/boot/efi')!.mode, 0o700);
  assert.ok(t.lookup('/boot/vmlinuz'));
  assert.equal([...esp.walk()].map((e) => e.path), ['/', '/EFI', '/EFI/BOOT', '/EFI/BOOT/BOOTX64.EFI']);
});

test('compareBytes orders like Buffer.compare of the UTF-8 bytes (astral, private-use, prefixes)', () => {
  const alphabet = ['a', 'b', 'Z', '0', '.', '-', 'é', 'ß', '\u00ff', '\u0800', '\ud7ff', '\ue000', '\uffef', '\u{1f600}', '\u{10ffff}', '\u{20000}'];
  let seed = 7;
  const rnd = (n: number) => { seed = (seed * 1103515245 + 12345) >>> 0; return seed % n; };
  const names = Array.from({ length: 400 }, () => Array.from({ length: 1 + rnd(4) }, () => alphabet[rnd(alphabet.length)]!).join(''));
  for (let i = 0; i < names.length; i++) {
    for (let j = 0; j < 40; j++) {
      const a = names[i]!, b = names[(i * 31 + j) % names.length]!;
      assert.is(Math.sign(compareBytes(a, b)), Buffer.compare(Buffer.from(a), Buffer.from(b)), `${JSON.stringify(a)} vs ${JSON.stringify(b)}`);
    }
  }
});

test('inode times and xattrs: accessors copy, maps appear on first use', () => {
  const t = new StagingTree();
  const f = t.addFile('/f', BufferContent.of('x'), { mtime: { sec: 5, nsec: 6 } });
  assert.equal(f.atime, { sec: 5, nsec: 6 }, 'atime defaults to mtime');
  f.ctime = { sec: 9, nsec: 10 };
  assert.equal(f.ctime, { sec: 9, nsec: 10 });
  assert.is(xattrsOf(f), undefined);
  f.xattrs.set('user.a', Buffer.from('1'));
  assert.is(Buffer.from(xattrsOf(f)!.get('user.a')!).toString(), '1');
  const g = t.addFile('/g', BufferContent.of(''), { xattrs: { 'user.b': Buffer.from('2') } });
  assert.is(g.xattrs.size, 1);
  t.mkdirp('/g2', { xattrs: new Map() });
  assert.is(xattrsOf(t.lookup('/g2')!), undefined);
});

test('a replaced or removed parent is not reused from the last-parent cache', () => {
  const t = new StagingTree();
  t.mkdirp('/a');
  t.symlink('/x', '/a');
  t.addFile('/x/f1', BufferContent.of('1'));
  assert.ok(t.lookup('/a/f1'));
  t.remove('/x');
  t.mkdirp('/x');
  t.addFile('/x/f2', BufferContent.of('2'));
  assert.ok(t.lookup('/x/f2', { follow: false }));
  assert.is(t.lookup('/a/f2'), undefined);
  t.rename('/x', '/y');
  t.addFile('/x/f3', BufferContent.of('3'));
  assert.is(t.lookup('/y/f3'), undefined);
  assert.ok(t.lookup('/x/f3'));
});

test.run();
