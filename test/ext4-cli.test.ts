import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ingot } from './helpers/cli.js';
import { debugfs, dumpe2fsHeader, fsck, tmp } from './ext4-oracle.js';

const dir = tmp();
const src = join(dir, 'src');

test.before(() => {
  mkdirSync(join(src, 'etc/sub'), { recursive: true });
  writeFileSync(join(src, 'etc/motd'), 'welcome\n');
  writeFileSync(join(src, 'etc/sub/data.bin'), Buffer.alloc(70000, 9));
  symlinkSync('etc/motd', join(src, 'motd-link'));
  execFileSync('chown', ['-R', '1234:5678', join(src, 'etc/sub')]);
  for (let i = 0; i < 300; i++) writeFileSync(join(src, `f${i}`), `${i}`);
});

test('mkfs ext4 --from-dir: e2fsck clean, label/uuid/block size as asked; ls and cat agree with debugfs', () => {
  const img = join(dir, 'a.img');
  const r = ingot(['mkfs', 'ext4', img, '--from-dir', src, '--label', 'cli', '--uuid', '0b6a2c4e-1f2d-4c3b-9a8e-7d6c5b4a3f21', '--block-size', '2048', '--64bit'], { env: { SOURCE_DATE_EPOCH: '1700000000' } });
  assert.is(r.code, 0, r.stderr);
  const f = fsck(img);
  assert.equal(f.problems, [], f.out);
  const h = dumpe2fsHeader(img);
  assert.match(h, /volume name:\s+cli/);
  assert.match(h, /UUID:\s+0b6a2c4e-1f2d-4c3b-9a8e-7d6c5b4a3f21/);
  assert.match(h, /Block size:\s+2048/);
  assert.match(h, /features:.*64bit/);
  const ls = ingot(['ls', img, '/', '--json']);
  assert.is(ls.code, 0, ls.stderr);
  const entries = JSON.parse(ls.stdout) as { path: string; type: string; uid: number; linkTo: string | null }[];
  const [theirs] = debugfs(img, ['ls -p /']);
  const names = theirs!.split('\n').map((l) => /^\/\d+\/\d+\/\d+\/\d+\/(.*)\/\d*\/$/.exec(l)?.[1]).filter((n): n is string => !!n && n !== '.' && n !== '..');
  assert.equal(entries.map((e) => e.path.slice(1)).sort(), names.sort());
  assert.is(entries.find((e) => e.path === '/motd-link')!.linkTo, 'etc/motd');
  const rl = ingot(['ls', img, '/etc', '-R', '--json']);
  const sub = (JSON.parse(rl.stdout) as { path: string; uid: number; gid: number; size: number }[]).find((e) => e.path === '/etc/sub/data.bin')!;
  assert.equal([sub.uid, sub.gid, sub.size], [1234, 5678, 70000]);
  const long = ingot(['ls', img, '/etc', '-l']);
  assert.match(long.stdout, /^d.* sub\n/m);
  const c = ingot(['cat', img, '/motd-link']);
  assert.is(c.stdout, 'welcome\n');
  const [dbg] = debugfs(img, ['cat /etc/motd']);
  assert.is(dbg, c.stdout);
});

test('mkfs ext4 --from-tar at an offset with a fixed size', () => {
  const tar = join(dir, 's.tar.gz');
  execFileSync('tar', ['-C', src, '-czf', tar, '.']);
  const img = join(dir, 'b.img');
  const r = ingot(['mkfs', 'ext4', img, '--from-tar', tar, '--size', '32M', '--offset', '1M', '--no-journal']);
  assert.is(r.code, 0, r.stderr);
  const part = join(dir, 'b.part');
  execFileSync('dd', [`if=${img}`, `of=${part}`, 'bs=1M', 'skip=1', 'status=none']);
  const f = fsck(part);
  assert.equal(f.problems, [], f.out);
  assert.ok(!/has_journal/.test(dumpe2fsHeader(part)));
  const c = ingot(['cat', img, '/etc/sub/data.bin', '--offset', '1M']);
  assert.is(c.stdout.length, 70000);
});

test('bad input: too small --size names the size needed and leaves no file; usage errors exit 2', () => {
  const img = join(dir, 'small.img');
  const r = ingot(['mkfs', 'ext4', img, '--from-dir', src, '--size', '1M']);
  assert.is(r.code, 1);
  assert.match(r.stderr, /needs a filesystem of at least \d+ bytes/);
  assert.ok(!existsSync(img));
  assert.equal(readdirSync(dir).filter((n) => n.includes('.tmp')), []);
  assert.is(ingot(['mkfs', 'ext4', img]).code, 2);
  assert.is(ingot(['mkfs', 'ext4', img, '--from-dir', src, '--block-size', '3000']).code, 2);
});

test('ls/cat on foreign or corrupt input: one-line typed error with the offset', () => {
  const junk = join(dir, 'junk.img');
  writeFileSync(junk, Buffer.alloc(1 << 20, 0x33));
  const r = ingot(['ls', junk]);
  assert.is(r.code, 1);
  assert.match(r.stderr, /offset 1080 \(0x438\).*not an ext2\/3\/4 filesystem/);
  assert.is(r.stderr.trim().split('\n').length, 1);
  const c = ingot(['cat', join(dir, 'a.img'), '/etc']);
  assert.is(c.code, 1);
});

test.after(() => rmSync(dir, { recursive: true, force: true }));
test.run();
