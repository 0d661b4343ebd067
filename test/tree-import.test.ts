/**
 * Importers against coreutils/GNU tar oracles: a host directory built here is
 * described by `stat`, `find`, `sha256sum` and `getfattr`; `importDirectory`
 * of it, and `importTar` of archives GNU tar made from it, must give a tree
 * that matches that description.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tar from 'tar-stream';
import { requireTool } from './helpers/tools.js';
import { rejects } from './tree-util.js';
import { StagingTree, type Inode } from '../src/tree/tree.js';
import { readAll } from '../src/tree/content-store.js';
import { importDirectory } from '../src/tree/import-dir.js';
import { importTar, type TarFormatError } from '../src/tree/import-tar.js';
import { IngotError, PathEscapeError } from '../src/errors.js';

for (const t of ['tar', 'setfattr', 'getfattr', 'gzip', 'xz', 'zstd']) requireTool(t);

const work = mkdtempSync(join(tmpdir(), 'ingot-import-'));
const SRC = join(work, 'src');
const LONG = 'L'.repeat(120);

// The fixture: every file type, odd modes and owners, ns times, hard links, long names, xattrs, a sparse file.
execFileSync('bash', ['-euc', `
D="$1"; L="$2"
mkdir -p "$D/dir/sub" "$D/empty" "$D/$L/$L"
printf hello > "$D/dir/a.txt"
head -c 300000 /dev/urandom > "$D/big.bin"
: > "$D/zero-length"
ln "$D/big.bin" "$D/dir/big-hardlink"
ln "$D/big.bin" "$D/$L/$L/third-name"
ln -s ../big.bin "$D/dir/rel-link"
ln -s /etc/passwd "$D/abs-link"
echo deep > "$D/$L/$L/$L.txt"
ln -s "$L/$L/$L.txt" "$D/long-target-link"
mknod "$D/char" c 1 3
mknod "$D/block" b 259 1048575
mkfifo "$D/fifo"
printf '%s' 'ünïcödé' > "$D/ünïcödé name"
truncate -s 20M "$D/sparse"
printf 'data in the middle' | dd of="$D/sparse" bs=1 seek=10485760 conv=notrunc status=none
truncate -s 64M "$D/sparse6"
for i in 1 5 9 20 33 47 60; do printf "region $i" | dd of="$D/sparse6" bs=1M seek=$i conv=notrunc status=none; done
chown 1234:5678 "$D/dir/a.txt"; chown 100000:200000 "$D/big.bin"; chown -h 7:8 "$D/abs-link"
chmod 4755 "$D/dir/a.txt"; chmod 1777 "$D/empty"; chmod 2750 "$D/dir/sub"; chmod 0600 "$D/big.bin"; chmod 0640 "$D/fifo"
setfattr -n user.note -v hello "$D/dir/a.txt"
setfattr -n user.bin -v 0x00ff80fe01 "$D/dir/a.txt"
setfattr -n user.dir -v 1 "$D/dir"
setcap cap_net_raw+ep "$D/big.bin" 2>/dev/null || setfattr -n security.capability -v 0x0100000200200000000000000000000000000000 "$D/big.bin"
find "$D" -mindepth 1 -depth -print0 | xargs -0 touch -h -d '2021-03-04 05:06:07.123456789'
touch -h -d '1999-12-31 23:59:59.000000001' "$D/dir/rel-link" "$D/empty"
`, 'fixture', SRC, LONG]);
requireTool('python3', 'python3');
execFileSync('python3', ['-c', 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])', join(SRC, 'sock')]);

interface HostEntry {
  path: string; type: Inode['type']; mode: number; uid: number; gid: number; ino: string; size: number;
  major: number; minor: number; mtime: string; atime: string; target?: string; sha?: string; xattrs: Map<string, string>;
}

const TYPES: Record<string, Inode['type']> = {
  'regular file': 'file', 'regular empty file': 'file', directory: 'dir', 'symbolic link': 'symlink',
  'character special file': 'chardev', 'block special file': 'blockdev', fifo: 'fifo', socket: 'socket',
};

/** Describe the host tree with coreutils (stat, readlink, sha256sum) and attr's getfattr. */
function describeHost(dir: string): Map<string, HostEntry> {
  const out = new Map<string, HostEntry>();
  const st = execFileSync('bash', ['-c', `cd "$1" && find . -mindepth 1 -print0 | xargs -0 stat --printf '%n\\t%F\\t%a\\t%u\\t%g\\t%i\\t%s\\t%t\\t%T\\t%.9Y\\t%.9X\\n'`, 'x', dir], { encoding: 'utf8', maxBuffer: 1 << 28 });
  for (const line of st.trim().split('\n')) {
    const [n, F, a, u, g, i, s, t, T, Y, X] = line.split('\t') as string[];
    out.set(n!.slice(1), {
      path: n!.slice(1), type: TYPES[F!]!, mode: parseInt(a!, 8), uid: +u!, gid: +g!, ino: i!, size: +s!,
      major: parseInt(t!, 16), minor: parseInt(T!, 16), mtime: Y!, atime: X!, xattrs: new Map(),
    });
  }
  const links = execFileSync('bash', ['-c', `cd "$1" && find . -type l -printf '%p\\t%l\\n'`, 'x', dir], { encoding: 'utf8' });
  for (const l of links.trim().split('\n')) { const [p, t] = l.split('\t'); out.get(p!.slice(1))!.target = t; }
  const sums = execFileSync('bash', ['-c', `cd "$1" && find . -type f -print0 | xargs -0 sha256sum`, 'x', dir], { encoding: 'utf8' });
  for (const l of sums.trim().split('\n')) { const m = /^([0-9a-f]{64}) {2}(.*)$/.exec(l)!; out.get(m[2]!.slice(1))!.sha = m[1]; }
  const xa = spawnSync('getfattr', ['-R', '-P', '-h', '-d', '-m', '-', '-e', 'hex', '.'], { cwd: dir, encoding: 'utf8' }).stdout;
  let cur: HostEntry | undefined;
  for (const l of xa.split('\n')) {
    if (l.startsWith('# file: ')) cur = out.get('/' + l.slice(8).replace(/^\.\//, ''));
    else if (cur && l.includes('=')) { const k = l.slice(0, l.indexOf('=')); cur.xattrs.set(k, l.slice(l.indexOf('=') + 3)); }
  }
  return out;
}

const host = describeHost(SRC);
const ts = (t: { sec: number; nsec: number }): string => `${t.sec}.${String(t.nsec).padStart(9, '0')}`;
const sha = async (i: Inode): Promise<string> => createHash('sha256').update(await readAll(i.content!)).digest('hex');

interface CompareOpts { xattrs: boolean; nsTimes: boolean; atime: boolean; skipTypes?: Inode['type'][] }

async function compare(tree: StagingTree, opts: CompareOpts): Promise<number> {
  const expected = [...host.values()].filter((h) => !opts.skipTypes?.includes(h.type));
  const seen = new Set<string>();
  const byIno = new Map<string, Inode>();
  for (const h of expected) {
    const n = tree.lookup(h.path, { follow: false });
    assert.ok(n, `missing ${h.path}`);
    const what = `${h.path}`;
    assert.is(n.type, h.type, `${what} type`);
    if (h.type !== 'symlink') assert.is(n.mode.toString(8), h.mode.toString(8), `${what} mode`);
    assert.is(n.uid, h.uid, `${what} uid`);
    assert.is(n.gid, h.gid, `${what} gid`);
    const mt = opts.nsTimes ? h.mtime : `${h.mtime.split('.')[0]}.000000000`;
    if (h.type !== 'dir' || opts.nsTimes) assert.is(ts(n.mtime), mt, `${what} mtime`);
    // Reading a file, directory or link (the oracle's sha256sum, find, readlink) moves its atime; device nodes keep it.
    if (opts.atime && !['file', 'dir', 'symlink'].includes(h.type)) assert.is(ts(n.atime), h.atime, `${what} atime`);
    if (h.type === 'symlink') assert.is(n.target, h.target, `${what} target`);
    if (h.type === 'chardev' || h.type === 'blockdev') assert.equal(n.rdev, { major: h.major, minor: h.minor }, `${what} rdev`);
    if (h.type === 'file') {
      assert.is(n.content!.size, h.size, `${what} size`);
      assert.is(await sha(n), h.sha, `${what} content`);
      // Hard links: same host inode ⇔ same tree inode.
      const prev = byIno.get(h.ino);
      if (prev) assert.is(n, prev, `${what} hard link`); else byIno.set(h.ino, n);
    }
    if (opts.xattrs) {
      const got = new Map([...n.xattrs].map(([k, v]) => [k, Buffer.from(v).toString('hex')]));
      assert.equal(Object.fromEntries(got), Object.fromEntries(h.xattrs), `${what} xattrs`);
    }
    seen.add(h.path);
  }
  const extra = [...tree.walk()].map((e) => e.path).filter((p) => p !== '/' && !seen.has(p));
  assert.equal(extra, [], 'no entries beyond the host tree');
  // Distinct inodes in the tree match distinct host inodes.
  assert.is(new Set(expected.filter((h) => h.type === 'file').map((h) => h.ino)).size, new Set([...byIno.values()].map((i) => i.id)).size);
  return expected.length;
}

test('importDirectory matches stat/find/sha256sum of the host tree', async () => {
  const tree = new StagingTree();
  const res = await importDirectory(tree, SRC);
  const n = await compare(tree, { xattrs: false, nsTimes: true, atime: true });
  assert.ok(n >= 20, `compared ${n} entries`);
  assert.is(res.xattrs, 'skipped');
  assert.is(res.hardlinks, 2);
  assert.is(res.sparseFiles, 2);
  assert.equal(tree.lookup('/sparse6')!.content!.dataRanges!().map((r) => r.offset / 2 ** 20), [1, 5, 9, 20, 33, 47, 60]);
  const sparse = tree.lookup('/sparse')!.content!;
  assert.equal(sparse.dataRanges!(), [{ offset: 10485760, length: 4096 }]);
  assert.is(tree.lookup('/big.bin')!.nlink, 3);
});

test('importDirectory with an xattr reader, into a subdirectory, with owner mapping', async () => {
  const tree = new StagingTree();
  await importDirectory(tree, join(SRC, 'dir'), {
    into: '/opt/x',
    mapOwner: (u, g) => ({ uid: u === 1234 ? 0 : u, gid: g === 5678 ? 0 : g }),
    readXattrs: async (p) => {
      const out = spawnSync('getfattr', ['-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', p], { encoding: 'utf8' }).stdout;
      return new Map(out.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), Buffer.from(l.slice(l.indexOf('=') + 3), 'hex')]));
    },
  });
  const a = tree.lookup('/opt/x/a.txt')!;
  assert.is(a.uid, 0);
  assert.is(Buffer.from(a.xattrs.get('user.bin')!).toString('hex'), '00ff80fe01');
  assert.is(tree.lookup('/opt/x')!.xattrs.get('user.dir')!.toString(), '1');
});

const archives: { name: string; args: string[]; opts: CompareOpts }[] = [
  { name: 'gnu', args: ['--format=gnu'], opts: { xattrs: false, nsTimes: false, atime: false, skipTypes: ['socket'] } },
  { name: 'pax', args: ['--format=pax', '--xattrs', '--xattrs-include=*'], opts: { xattrs: true, nsTimes: true, atime: false, skipTypes: ['socket'] } },
  { name: 'pax.gz', args: ['--format=pax', '--xattrs', '--xattrs-include=*', '-I', 'gzip'], opts: { xattrs: true, nsTimes: true, atime: false, skipTypes: ['socket'] } },
  { name: 'pax.xz', args: ['--format=pax', '--xattrs', '--xattrs-include=*', '-I', 'xz -T1'], opts: { xattrs: true, nsTimes: true, atime: false, skipTypes: ['socket'] } },
  { name: 'gnu.zst', args: ['--format=gnu', '-I', 'zstd -19'], opts: { xattrs: false, nsTimes: false, atime: false, skipTypes: ['socket'] } },
  { name: 'gnu-sparse', args: ['--format=gnu', '--sparse'], opts: { xattrs: false, nsTimes: false, atime: false, skipTypes: ['socket'] } },
  { name: 'pax-sparse', args: ['--format=pax', '--sparse', '--xattrs', '--xattrs-include=*'], opts: { xattrs: true, nsTimes: true, atime: false, skipTypes: ['socket'] } },
];

for (const a of archives) {
  test(`importTar of GNU tar ${a.name} matches the host tree`, async () => {
    const file = join(work, `x.${a.name}.tar`);
    spawnSync('tar', [...a.args, '-C', SRC, '-cf', file, '.'], { stdio: 'ignore' });
    const tree = new StagingTree();
    const res = await importTar(tree, file);
    try {
      await compare(tree, a.opts);
      assert.is(res.hardlinks, 2);
      const sparse = tree.lookup('/sparse')!.content!;
      if (a.name.includes('sparse')) {
        assert.is(tree.lookup('/sparse6')!.content!.dataRanges!().length, 7, 'more regions than an old GNU header holds');
        const ranges = sparse.dataRanges!();
        assert.ok(ranges.length === 1 && ranges[0]!.offset <= 10485760 && ranges[0]!.length <= 8192, JSON.stringify(ranges));
        assert.ok(res.store!.bytesStored < 1 << 20, 'sparse data stored without the holes');
      }
      if (a.name === 'gnu' || a.name === 'pax') assert.is(res.store, undefined, 'uncompressed archives are referenced, not copied');
    } finally {
      await res.store?.dispose();
    }
  });
}

test('importTar from a stream (no path) copies into a store', async () => {
  const file = join(work, 'x.pax.tar');
  const tree = new StagingTree();
  const res = await importTar(tree, createReadStream(file), { into: '/srv' });
  assert.is(res.compression, 'none');
  assert.ok(res.store);
  assert.is((await readAll(tree.lookup('/srv/dir/a.txt')!.content!)).toString(), 'hello');
  await res.store!.dispose();
});

async function packTar(entries: { name: string; type?: 'file' | 'symlink' | 'link'; body?: string; linkname?: string }[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: Buffer) => chunks.push(c));
  for (const e of entries) pack.entry({ name: e.name, type: e.type ?? 'file', linkname: e.linkname }, e.body ?? '');
  pack.finalize();
  await new Promise((r) => pack.on('end', r));
  return Buffer.concat(chunks);
}

test('.. in member names is a PathEscapeError; absolute names and symlinks stay inside the tree', async () => {
  const evil = await packTar([{ name: 'ok' }, { name: 'a/../../etc/shadow', body: 'x' }]);
  const e = await rejects(importTar(new StagingTree(), [evil]));
  assert.instance(e, PathEscapeError);
  const evilLink = await packTar([{ name: 'x', body: 'x' }, { name: 'h', type: 'link', linkname: '../../x' }]);
  assert.instance(await rejects(importTar(new StagingTree(), [evilLink])), PathEscapeError);
  const tree = new StagingTree();
  await importTar(tree, [await packTar([{ name: '/etc/abs', body: 'a' }, { name: 'lnk', type: 'symlink', linkname: '/etc' }, { name: 'lnk/through', body: 'b' }])]);
  assert.ok(tree.lookup('/etc/abs'));
  assert.ok(tree.lookup('/etc/through'), 'written through the symlink, chroot-style');
});

test('corrupt and truncated archives are typed errors', async () => {
  const good = await packTar([{ name: 'a', body: 'x'.repeat(2000) }, { name: 'b', body: 'y' }]);
  const bad = Buffer.from(good); bad[600] ^= 0xff; // checksum of the second header breaks... or data of the first
  bad[148] ^= 0x01; // first header checksum
  const e1 = await rejects(importTar(new StagingTree(), [bad])) as TarFormatError;
  assert.is(e1.name, 'TarFormatError');
  const e2 = await rejects(importTar(new StagingTree(), [good.subarray(0, 1000)])) as TarFormatError;
  assert.is(e2.name, 'TarFormatError');
  const bz = Buffer.from('BZh91AY&SY');
  assert.match((await rejects(importTar(new StagingTree(), [bz])) as Error).message, /bzip2/);
  const gzBad = Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3]);
  assert.is((await rejects(importTar(new StagingTree(), [gzBad])) as Error).name, 'TarFormatError');
});

test('fuzz: corrupted archives resolve or fail with a typed error, never hang or crash', async () => {
  const small = join(work, 'small');
  execFileSync('bash', ['-euc', `mkdir -p "$1/d"; printf abc > "$1/d/f"; ln -s f "$1/d/l"; ln "$1/d/f" "$1/h"; mkdir -p "$1/$2"; echo x > "$1/$2/n"; setfattr -n user.k -v v "$1/d/f"`, 'x', small, LONG]);
  const variants = [['--format=pax', '--xattrs'], ['--format=gnu']].map((args) => {
    const f = join(work, `small-${args[0]!.slice(9)}.tar`);
    execFileSync('tar', [...args, '-C', small, '-cf', f, '.']);
    return readFileSync(f);
  });
  let seed = 99;
  const rnd = (n: number): number => { seed = (seed * 1103515245 + 12345) >>> 0; return seed % n; };
  const runs = process.env.INGOT_LONG ? 5000 : 120;
  let failed = 0;
  for (let i = 0; i < runs; i++) {
    const tarBytes = Buffer.from(variants[i % 2]!);
    for (let k = 1 + rnd(3); k > 0; k--) tarBytes[rnd(Math.min(tarBytes.length, 6144))] = rnd(256);
    const cut = rnd(4) === 0 ? tarBytes.subarray(0, rnd(tarBytes.length)) : tarBytes;
    const r = await Promise.race([
      importTar(new StagingTree(), [cut]).then(async (x) => { await x.store?.dispose(); return 'ok'; }, (e: Error) => (e instanceof IngotError ? 'typed' : `untyped ${e.stack}`)),
      new Promise<string>((res) => setTimeout(() => res('hang'), 5000)),
    ]);
    assert.ok(r === 'ok' || r === 'typed', `run ${i}: ${r}`);
    if (r === 'typed') failed++;
  }
  assert.ok(failed > 0);
});

test.after(() => rmSync(work, { recursive: true, force: true }));
test.run();
