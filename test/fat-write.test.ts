import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync, readdirSync, statSync, openSync, readSync, closeSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { StagingTree, BufferContent, type FileContent } from '../src/tree/tree.js';
import { SparseFileTarget, SubTarget, FileSource, computeLayout, writePartitionTable, MiB } from '../src/disk/index.js';
import { writeFat, minimalFatSize, openFat, chooseGeometry, FatError, type FatWriteOptions } from '../src/fs/fat/index.js';
import { requireTool } from './helpers/tools.js';
import { run } from './helpers/disk.js';

const dir = mkdtempSync(join(tmpdir(), 'ingot-fat-'));
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const env = { ...process.env, LC_ALL: 'C.UTF-8', MTOOLS_SKIP_CHECK: '1' };

/** Deterministic pseudo-random bytes. */
function bytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; out[i] = x & 0xff; }
  return out;
}

/** A file of zeros that reports itself sparse (one small data range in the middle). */
class SparseContent implements FileContent {
  constructor(readonly size: number, private readonly dataAt: number, private readonly data: Uint8Array) {}
  async read(buf: Uint8Array, position: number): Promise<number> {
    const n = Math.max(0, Math.min(buf.length, this.size - position));
    buf.fill(0, 0, n);
    const s = Math.max(position, this.dataAt), e = Math.min(position + n, this.dataAt + this.data.length);
    if (e > s) buf.set(this.data.subarray(s - this.dataAt, e - this.dataAt), s - position);
    return n;
  }
  dataRanges() { return [{ offset: this.dataAt, length: this.data.length }]; }
}

/** An ESP-like tree exercising long names, aliases, case rules, multi-cluster directories and files. */
function espTree(): { tree: StagingTree; files: Map<string, Uint8Array> } {
  const tree = new StagingTree({ defaultTime: { sec: 1700000000, nsec: 0 } });
  const files = new Map<string, Uint8Array>();
  const add = (p: string, b: Uint8Array, mtime?: number) => { tree.addFile(p, new BufferContent(b), mtime ? { mtime: { sec: mtime, nsec: 0 } } : undefined); files.set(p, b); };
  add('/EFI/BOOT/BOOTX64.EFI', bytes(1_234_567, 1));
  add('/EFI/BOOT/grubx64.efi', bytes(300_000, 2));
  add('/EFI/fedora/grub.cfg', Buffer.from('search --fs-uuid\n'));
  add('/EFI/fedora/shimx64-fedora.efi', bytes(5000, 3));
  add('/EFI/fedora/fonts/unicode.pf2', bytes(70_000, 4));
  add('/loader/entries/0123456789abcdef-6.5.0-300.fc39.x86_64.conf', Buffer.from('title Fedora Linux 39\nlinux /vmlinuz\n'));
  add('/loader/loader.conf', Buffer.from('timeout 3\n'));
  add('/README', Buffer.from('upper 8.3'));
  add('/readme.txt', Buffer.from('lower 8.3 (NTRes case bits)'));
  add('/Mixed.Txt', Buffer.from('mixed case needs a long name'));
  add('/UPPER.lower', Buffer.from('mixed parts'));
  add('/ünïcødé ✓.txt', Buffer.from('non-ASCII'));
  add('/.hidden', Buffer.from('leading dot'));
  add('/a+b,c;d=e[f].txt', Buffer.from('long-only characters'));
  add('/with space.cfg', Buffer.from('space'));
  add('/many.dots.in.name.tar.gz', Buffer.from('dots'));
  add('/exactly13char', Buffer.from('13'));
  add('/' + 'x'.repeat(255), Buffer.from('longest name'));
  add('/empty', new Uint8Array(0));
  add('/old.txt', Buffer.from('1980'), 100); // before 1980: clamped
  add('/dated.txt', Buffer.from('dated'), Date.UTC(2024, 4, 6, 7, 8, 10) / 1000);
  for (let i = 0; i < 150; i++) add(`/dir/long file name number ${i}.data`, Buffer.from(`file ${i}\n`));
  for (let i = 0; i < 12; i++) add(`/collide/longfilename${i}.txt`, Buffer.from(`c${i}`));
  tree.mkdirp('/empty-dir');
  tree.mkdirp('/a/b/c/d/e/f/g/h');
  add('/a/b/c/d/e/f/g/h/deep.txt', Buffer.from('deep'));
  return { tree, files };
}

async function makeImage(name: string, size: number, tree: StagingTree, opts: FatWriteOptions) {
  const path = join(dir, name);
  const t = await SparseFileTarget.create(path, size);
  const res = await writeFat(t, tree, opts);
  const allocated: { offset: number; length: number }[] = [];
  for await (const r of t.allocated()) allocated.push(r);
  await t.close();
  return { path, res, allocated };
}

function fsckClean(path: string): void {
  requireTool('fsck.vfat');
  const r = run('fsck.vfat', ['-n', path]);
  const lines = (r.stdout + r.stderr).trim().split('\n');
  assert.is(r.code, 0, r.stdout + r.stderr);
  // Only the version banner and the summary: no warning of any kind.
  assert.is(lines.length, 2, r.stdout + r.stderr);
  assert.match(lines[1]!, /: \d+ files, \d+\/\d+ clusters$/);
}

/** mtools lists exactly the written paths and mcopy extracts exactly the written bytes. */
function mtoolsAgree(image: string, files: Map<string, Uint8Array>, dirs: string[]): void {
  requireTool('mdir');
  requireTool('mcopy');
  const ls = run('mdir', ['-/', '-b', '-a', '-i', image, '::']);
  assert.is(ls.code, 0, ls.stderr);
  const listed = ls.stdout.split('\n').filter(Boolean).map((l) => l.replace(/^::/, '')).sort();
  const expected = [...files.keys(), ...dirs.map((d) => `${d}/`)].sort();
  assert.equal(listed, expected);
  const out = join(dir, `x-${Math.random().toString(36).slice(2)}`);
  const cp = run('sh', ['-c', `mkdir -p ${out} && LC_ALL=C.UTF-8 mcopy -s -n -i '${image}' '::/*' ${out}/`]);
  assert.is(cp.code, 0, cp.stderr);
  const got = new Map<string, string>();
  const walk = (d: string) => {
    for (const e of readdirSync(d)) {
      const p = join(d, e);
      if (statSync(p).isDirectory()) walk(p); else got.set('/' + relative(out, p), sha(readFileSync(p)));
    }
  };
  walk(out);
  assert.equal(new Map([...got].sort()), new Map([...files].map(([k, v]) => [k, sha(v)] as [string, string]).sort()));
}

const treeDirs = (tree: StagingTree) => [...tree.walk()].filter((e) => e.inode.type === 'dir' && e.path !== '/').map((e) => e.path);

for (const [name, size, opts, type] of [
  ['fat16', 64 * MiB, {}, 16],
  ['fat32', 600 * MiB, {}, 32],
  ['fat32-forced-small', 48 * MiB, { fatType: 32 }, 32],
  ['fat16-forced-large', 700 * MiB, { fatType: 16 }, 16],
  ['fat32-4k-sectors', 300 * MiB, { fatType: 32, sectorSize: 4096 }, 32],
] as const) {
  test(`${name}: fsck.vfat -n clean; mtools lists and extracts exactly the tree; blkid sees type, label, serial`, async () => {
    const { tree, files } = espTree();
    const { path, res } = await makeImage(`${name}.img`, size, tree, { label: 'EFI-SYSTEM', seed: name, ...opts });
    assert.is(res.geometry.fatType, type);
    assert.is(res.warnings.length, 0);
    fsckClean(path);
    mtoolsAgree(path, files, treeDirs(tree));
    requireTool('blkid');
    const b = run('blkid', ['-p', '-o', 'export', path]).stdout;
    assert.match(b, new RegExp(`VERSION=FAT${type}`));
    assert.match(b, /LABEL=EFI-SYSTEM/);
    const serial = res.serial.toString(16).toUpperCase().padStart(8, '0');
    assert.match(b, new RegExp(`UUID=${serial.slice(0, 4)}-${serial.slice(4)}`));
    // our reader sees the same
    const src = await FileSource.open(path);
    const fs = await openFat(src);
    const info = await fs.info();
    assert.is(info.label, 'EFI-SYSTEM');
    for (const [p, data] of files) assert.is(sha(await fs.readFile(p)), sha(data), p);
    await src.close();
  });
}

test('8.3 aliases and case rules are what mtools shows (short name column)', async () => {
  const { tree } = espTree();
  const { path } = await makeImage('alias.img', 64 * MiB, tree, { seed: 'a' });
  const out = run('mdir', ['-a', '-i', path, '::/']).stdout;
  const rows = new Map(out.split('\n').map((l) => /^(\S+)\s+(\S*)\s+(?:<DIR>|\d+)\s+\S+\s+\S+\s*(.*)$/.exec(l)).filter(Boolean)
    .map((m) => [m![3] || `${m![1]}${m![2] ? '.' + m![2] : ''}`, `${m![1]} ${m![2]}`.trim()]));
  assert.is(rows.get('README'), 'README');
  assert.is(rows.get('readme.txt'), 'readme txt'); // stored 8.3 with NTRes lower-case bits, no long name
  assert.is(rows.get('Mixed.Txt'), 'MIXED TXT');
  assert.is(rows.get('.hidden'), 'HIDDEN~1');
  assert.is(rows.get('many.dots.in.name.tar.gz'), 'MANYDO~1 GZ');
  assert.is(rows.get('a+b,c;d=e[f].txt'), 'A_B_C_~1 TXT');
  const collide = run('mdir', ['-i', path, '::/collide']).stdout;
  for (const n of [1, 2, 3, 4, 9]) assert.match(collide, new RegExp(`^LONGFI~${n} TXT`, 'm'));
  assert.match(collide, /^LONGF~10 TXT/m);
});

test('timestamps come from the tree (UTC), clamped to the FAT range and to SOURCE_DATE_EPOCH', async () => {
  const { tree } = espTree();
  const { path } = await makeImage('time.img', 64 * MiB, tree, { seed: 't' });
  const out = run('mdir', ['-i', path, '::/']).stdout;
  assert.match(out, /^dated\s+txt\s+5 2024-05-06\s+7:08\s/m);
  assert.match(out, /^old\s+txt\s+4 1980-01-01\s+0:00\s/m);
  assert.match(out, /^README\s+9 2023-11-14\s+22:13\s/m);
  const clamped = await makeImage('time2.img', 64 * MiB, tree, { seed: 't', clampTime: Date.UTC(2000, 0, 2, 3, 4, 6) / 1000 });
  const out2 = run('mdir', ['-i', clamped.path, '::/']).stdout;
  assert.match(out2, /^dated\s+txt\s+5 2000-01-02\s+3:04\s/m);
  assert.match(out2, /^old\s+txt\s+4 1980-01-01\s+0:00\s/m);
});

test('determinism: same tree and seed → byte-identical image; the seed only moves the serial', async () => {
  const a = await makeImage('d1.img', 64 * MiB, espTree().tree, { label: 'X', seed: 's1' });
  const b = await makeImage('d2.img', 64 * MiB, espTree().tree, { label: 'X', seed: 's1' });
  const c = await makeImage('d3.img', 64 * MiB, espTree().tree, { label: 'X', seed: 's2' });
  assert.is(sha(readFileSync(a.path)), sha(readFileSync(b.path)));
  const A = readFileSync(a.path), C = readFileSync(c.path);
  const diff: number[] = [];
  for (let i = 0; i < A.length; i++) if (A[i] !== C[i]) diff.push(i);
  // volume ID at 39..42 (FAT16 BPB), nothing else
  assert.ok(diff.length > 0 && diff.every((o) => o >= 39 && o < 43), String(diff.slice(0, 10)));
});

test('only used clusters are written: zero files and free space stay holes', async () => {
  const tree = new StagingTree();
  const data = bytes(100_000, 9);
  tree.addFile('/sparse.bin', new SparseContent(50 * MiB, 20 * MiB, data));
  tree.addFile('/zeros.bin', new BufferContent(new Uint8Array(3 * MiB)));
  tree.addFile('/data.bin', new BufferContent(bytes(MiB, 5)));
  const { path, allocated, res } = await makeImage('holes.img', 600 * MiB, tree, { seed: 'h' });
  const written = allocated.reduce((s, r) => s + r.length, 0);
  const fatBytes = res.usedClusters * 4 + 8;
  assert.ok(written < data.length + MiB + 2 * fatBytes + 64 * 1024, `wrote ${written} bytes`);
  fsckClean(path);
  requireTool('mtype');
  const expect = new Uint8Array(50 * MiB);
  expect.set(data, 20 * MiB);
  const t = run('sh', ['-c', `mtype -i '${path}' ::/sparse.bin | sha256sum`]);
  assert.is(t.stdout.split(' ')[0], sha(expect));
  const z = run('sh', ['-c', `mtype -i '${path}' ::/zeros.bin | sha256sum`]);
  assert.is(z.stdout.split(' ')[0], sha(new Uint8Array(3 * MiB)));
});

test('an ESP inside a GPT partition: sgdisk clean, mtools reads it at the partition offset', async () => {
  const size = 128 * MiB;
  const layout = computeLayout([{ size: 100 * MiB, type: 'esp', name: 'EFI System Partition' }, { grow: true, type: 'root-x86-64' }], size, { table: 'gpt' });
  const path = join(dir, 'disk.img');
  const t = await SparseFileTarget.create(path, size);
  await writePartitionTable(t, { type: 'gpt', partitions: layout.partitions, seed: 'disk' });
  const esp = layout.partitions[0]!;
  const { tree, files } = espTree();
  await writeFat(new SubTarget(t, esp.start, esp.size), { tree, path: '/EFI' }, { label: 'ESP', seed: 'disk', hiddenSectors: esp.start / 512 });
  await t.close();
  assert.match(run('sgdisk', ['-v', path]).stdout, /No problems found/);
  const ls = run('mdir', ['-/', '-b', '-i', `${path}@@${esp.start}`, '::']);
  const efiFiles = [...files.keys()].filter((p) => p.startsWith('/EFI/')).map((p) => p.slice(4));
  assert.equal(ls.stdout.split('\n').filter((l) => l && !l.endsWith('/')).map((l) => l.slice(2)).sort(), efiFiles.sort());
  const boot = run('sh', ['-c', `mtype -i '${path}@@${esp.start}' ::/BOOT/BOOTX64.EFI | sha256sum`]).stdout.split(' ')[0];
  assert.is(boot, sha(files.get('/EFI/BOOT/BOOTX64.EFI')!));
});

test('FAT type and cluster size follow mkfs.fat for the same volume size', () => {
  requireTool('mkfs.vfat');
  for (const mib of [33, 100, 256, 511, 512, 1024, 9000]) {
    const p = join(dir, `mk${mib}.img`);
    run('truncate', ['-s', `${mib}M`, p]);
    assert.is(run('mkfs.vfat', [p]).code, 0);
    const bs = Buffer.alloc(512);
    const fd = openSync(p, 'r');
    readSync(fd, bs, 0, 512, 0);
    closeSync(fd);
    const mkType = bs.readUInt16LE(22) === 0 ? 32 : 16;
    const g = chooseGeometry(mib * MiB);
    assert.equal([mib, g.fatType, g.sectorsPerCluster], [mib, mkType, bs[13]]);
    rmSync(p);
  }
});

test('minimalFatSize gives a volume that holds the tree; 1 MiB less does not', async () => {
  const { tree } = espTree();
  for (const opts of [{}, { fatType: 32 as const }]) {
    const n = minimalFatSize(tree, opts);
    const ok = await makeImage('min.img', n, tree, opts);
    fsckClean(ok.path);
    await makeImage('min2.img', n - MiB, tree, opts).then(() => assert.unreachable('fit in less'), (e: unknown) => {
      assert.ok(e instanceof FatError && ['FAT_NO_SPACE', 'FAT_GEOMETRY'].includes(e.code), String(e));
    });
  }
});

test('astral-plane names are stored as UTF-16 surrogate pairs: fsck clean, read back intact', async () => {
  const tree = new StagingTree();
  tree.addFile('/smile 😀.txt', BufferContent.of('emoji'));
  const { path } = await makeImage('astral.img', 64 * MiB, tree, {});
  fsckClean(path);
  const src = await FileSource.open(path);
  const fs = await openFat(src);
  assert.equal((await fs.readdir('/')).map((e) => e.name), ['smile 😀.txt']);
  assert.is(Buffer.from(await fs.readFile('/smile 😀.txt')).toString(), 'emoji');
  await src.close();
});

test('a FAT16 root directory grows past 512 entries when the root holds more names', async () => {
  const tree = new StagingTree();
  const files = new Map<string, Uint8Array>();
  for (let i = 0; i < 300; i++) { const b = Buffer.from(`r${i}`); tree.addFile(`/root entry ${i}.txt`, new BufferContent(b)); files.set(`/root entry ${i}.txt`, b); }
  const { path, res } = await makeImage('bigroot.img', 64 * MiB, tree, { seed: 'r' });
  assert.is(res.geometry.fatType, 16);
  assert.ok(res.geometry.rootEntries >= 600, String(res.geometry.rootEntries));
  fsckClean(path);
  mtoolsAgree(path, files, []);
});

test('what FAT cannot store is a typed error', async () => {
  const bad = async (setup: (t: StagingTree) => void, code: string, opts: FatWriteOptions = {}, size = 64 * MiB) => {
    const t = new StagingTree();
    setup(t);
    await makeImage('bad.img', size, t, opts).then(() => assert.unreachable(code), (e: unknown) => {
      assert.ok(e instanceof FatError, String(e));
      assert.is((e as FatError).code, code);
    });
  };
  await bad((t) => { t.addFile('/README', BufferContent.of('a')); t.addFile('/readme', BufferContent.of('b')); }, 'FAT_NAME_CLASH');
  await bad((t) => t.addFile('/a:b', BufferContent.of('a')), 'FAT_BAD_NAME');
  await bad((t) => t.addFile('/trailing.', BufferContent.of('a')), 'FAT_BAD_NAME');
  await bad((t) => t.addFile('/big', new BufferContent(new Uint8Array(0))), 'FAT_BAD_LABEL', { label: 'lower/slash' });
  await bad((t) => t.addFile('/huge', { size: 5 * 1024 * MiB, read: async () => 0 }), 'FAT_FILE_TOO_LARGE');
  await bad((t) => t.addFile('/full', new BufferContent(new Uint8Array(70 * MiB))), 'FAT_NO_SPACE');
  await bad((t) => t.mkdirp('/x'), 'FAT_GEOMETRY', { fatType: 32 }, 16 * MiB);
  await bad((t) => t.symlink('/link', 'x'), 'FAT_UNSUPPORTED_TYPE', { special: 'error' });
  const t = new StagingTree();
  t.symlink('/link', 'x');
  const r = await makeImage('sym.img', 64 * MiB, t, {});
  assert.match(r.res.warnings[0]!, /symlink skipped/);
});

test.after(() => rmSync(dir, { recursive: true, force: true }));
test.run();
