import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { StagingTree, BufferContent, assertSafeRelative } from '../src/tree/tree.js';
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

test.run();
