/**
 * The initramfs builder and the depmod/modinfo readers, checked against
 * independent tools: GNU cpio (lists and extracts our archive), kmod's
 * depmod (modules.dep/modules.alias) and modinfo (.modinfo fields), xz.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireTool } from './helpers/tools.js';
import { kernelVersion, stagedFixtureRoot } from '../fixtures/images.js';
import { treeFromDir } from '../fixtures/tree.js';
import { buildInitramfs, InitramfsError, planModules } from '../src/boot/initramfs.js';
import { indexModules, modulesAliasText, modulesDepText, writeDepmodFiles, readAll } from '../src/boot/depmod.js';
import { moduleElf, parseModinfo } from '../src/boot/modinfo.js';
import { ElfError, elfSections } from '../src/boot/elf.js';
import { NewcWriter, S_IFREG } from '../src/boot/cpio.js';
import { StagingTree, BufferContent } from '../src/tree/tree.js';

for (const t of ['cpio', 'xz', 'zstd', 'gzip', 'rpm2cpio']) requireTool(t);
requireTool('depmod', 'kmod'); requireTool('modinfo', 'kmod');
const dir = mkdtempSync(join(tmpdir(), 'ingot-initramfs-test-'));
const root = stagedFixtureRoot();
const kver = kernelVersion(root);
const tree = treeFromDir(root);
const index = await indexModules(tree, kver);
const sh = (script: string, args: string[] = [], cwd?: string) => spawnSync('bash', ['-c', script, 'sh', ...args], { cwd, encoding: 'latin1', maxBuffer: 1 << 28 });

async function rejects(fn: () => Promise<unknown>, re: RegExp): Promise<void> {
  try { await fn(); } catch (e) { assert.match(String((e as Error).message), re); return; }
  assert.unreachable(`expected a rejection matching ${re}`);
}

test('modules.dep and modules.alias agree with kmod depmod on the whole kernel', () => {
  const base = join(dir, 'depmod');
  mkdirSync(join(base, 'lib/modules'), { recursive: true });
  cpSync(join(root, 'usr/lib/modules', kver), join(base, 'lib/modules', kver), { recursive: true });
  const r = spawnSync('depmod', ['-b', base, kver], { encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  const theirs = readFileSync(join(base, 'lib/modules', kver, 'modules.dep'), 'utf8');
  const ours = modulesDepText(index);
  const parse = (t: string) => t.trimEnd().split('\n').map((l) => { const [k, v] = l.split(':'); return [k!, v!.trim().split(/\s+/).filter(Boolean)] as const; });
  const a = parse(ours), b = parse(theirs);
  assert.ok(b.length > 500, `only ${b.length} modules`);
  assert.equal(a.map(([k]) => k), b.map(([k]) => k), 'same modules in the same order');
  for (let i = 0; i < a.length; i++) {
    assert.equal([...a[i]![1]].sort(), [...b[i]![1]].sort(), `deps of ${a[i]![0]}`);
    // Our order is a valid load order: every module comes before the modules it needs.
    const pos = new Map(a[i]![1].map((p, j) => [p, j]));
    for (const [p, deps] of a) if (pos.has(p)) for (const d of deps) if (pos.has(d)) assert.ok(pos.get(d)! > pos.get(p)!, `${d} after ${p} in ${a[i]![0]}`);
  }
  assert.is(modulesAliasText(index), readFileSync(join(base, 'lib/modules', kver, 'modules.alias'), 'utf8'));
});

test('writeDepmodFiles puts both files into the tree', async () => {
  const t = treeFromDir(root);
  await writeDepmodFiles(t, kver);
  const dep = Buffer.from(await readAll(t.lookup(`/lib/modules/${kver}/modules.dep`)!, 'dep')).toString();
  assert.is(dep, modulesDepText(index));
  assert.ok(t.lookup(`/usr/lib/modules/${kver}/modules.alias`));
});

test('.modinfo of plain, .ko.xz and .ko.zst modules equals modinfo(8), field by field', async () => {
  const picks = ['virtio_blk', 'virtio_scsi', 'sd_mod', 'libata', 'ata_piix', 'xen_blkfront', 'virtio_pci'];
  let compared = 0;
  for (const name of picks) {
    const m = index.modules.get(name);
    assert.ok(m, name);
    const plain = join(root, 'usr/lib/modules', kver, m!.relPath);
    const xzf = join(dir, `${name}.ko.xz`), zsf = join(dir, `${name}.ko.zst`);
    assert.is(sh('xz -c --check=crc32 "$1" > "$2" && zstd -q -c "$1" > "$3"', [plain, xzf, zsf]).status, 0);
    for (const f of [plain, xzf, zsf]) {
      const info = parseModinfo(await moduleElf(readFileSync(f), f), f);
      assert.is(info.name, name);
      const keys = [...new Set(info.fields.map(([k]) => k))].filter((k) => k !== 'parm' && k !== 'parmtype');
      for (const k of keys) {
        const r = spawnSync('modinfo', ['-0', '-F', k, f], { encoding: 'utf8' });
        assert.is(r.status, 0, r.stderr);
        const theirs = r.stdout.split('\0').filter((x, i, all) => !(i === all.length - 1 && x === ''));
        const ours = info.fields.filter(([key]) => key === k).map(([, v]) => v);
        assert.equal(ours, theirs, `${f}: ${k}`);
        compared++;
      }
    }
  }
  assert.ok(compared > 60, `compared ${compared} fields`);
});

test('cpio: GNU cpio lists and extracts our archive (gzip and xz) with the same bytes', async () => {
  for (const compression of ['gzip', 'xz'] as const) {
    const ir = await buildInitramfs(tree, { compression });
    const f = join(dir, `initrd-${compression}`);
    writeFileSync(f, ir.image);
    const dec = compression === 'gzip' ? 'gzip -dc' : 'xz -dc';
    const list = sh(`${dec} "$1" | cpio -t --quiet`, [f]);
    assert.is(list.status, 0, list.stderr);
    const names = list.stdout.trim().split('\n');
    for (const n of ['init', 'bin/busybox', 'bin/sh', 'dev/console', `lib/modules/${kver}/modules.dep`]) assert.ok(names.includes(n), `${n} missing`);
    for (const m of ir.loadOrder) assert.ok(names.includes(`lib/modules/${kver}/${m}`), m);
    if (compression === 'xz') assert.match(sh('xz -lvv "$1"', [f]).stdout, /CRC32/);
    const out = join(dir, `x-${compression}`);
    mkdirSync(out);
    const x = sh(`${dec} "$1" | cpio -idm --quiet`, [f], out);
    assert.is(x.status, 0, x.stderr);
    assert.ok(readFileSync(join(out, 'bin/busybox')).equals(readFileSync(join(root, 'usr/bin/busybox'))));
    const first = ir.loadOrder.find((p) => p.includes('virtio_blk'))!;
    assert.ok(readFileSync(join(out, 'lib/modules', kver, first)).equals(readFileSync(join(root, 'usr/lib/modules', kver, first))));
    assert.match(sh('stat -c "%F %t:%T" dev/console', [], out).stdout, /character special file 5:1/);
    assert.match(readFileSync(join(out, 'init'), 'utf8'), /^#!\/bin\/busybox sh\n/);
  }
});

test('module plan: dependency closure in load order, builtins and absent drivers reported', () => {
  const plan = planModules(index, 'ext4');
  const names = plan.load.map((m) => m.name);
  for (const m of plan.load) for (const d of m.info.depends) {
    if (!index.builtin.has(d)) assert.ok(names.indexOf(d) >= 0 && names.indexOf(d) < names.indexOf(m.name), `${d} before ${m.name}`);
  }
  assert.ok(names.includes('virtio_blk') || plan.builtin.includes('virtio_blk'));
  assert.ok(names.includes('ext4') || plan.builtin.includes('ext4'));
  try {
    planModules(index, 'nosuchfs');
    assert.unreachable();
  } catch (e) {
    assert.instance(e, InitramfsError);
    assert.match((e as Error).message, /has no module nosuchfs/);
  }
});

test('deterministic: the same tree gives the same bytes', async () => {
  const a = await buildInitramfs(tree, { mtime: 1700000000 });
  const b = await buildInitramfs(tree, { mtime: 1700000000 });
  assert.ok(Buffer.from(a.image).equals(Buffer.from(b.image)));
});

test('bad input: no busybox, no kernel, broken ELF → named errors', async () => {
  const noBusybox = treeFromDir(root);
  noBusybox.remove('/usr/bin/busybox');
  await rejects(() => buildInitramfs(noBusybox), /no busybox.*busybox-static/);
  await rejects(() => buildInitramfs(new StagingTree()), /no kernel modules installed/);
  const m = index.modules.get('virtio_blk')!;
  const elf = await readAll(m.inode, m.relPath);
  for (const cut of [0, 10, 63, 1000]) {
    try { parseModinfo(elf.subarray(0, cut), 'cut.ko'); assert.unreachable(); } catch (e) { assert.ok(e instanceof ElfError || (e as Error).name === 'StructError' || (e as Error).name === 'ModuleError', String(e)); }
  }
  const garbage = new Uint8Array(elf);
  garbage.fill(0xff, 0x28, 0x40); // section header offset/count
  assert.throws(() => elfSections(garbage, 'g.ko'), /ELF|section|truncated/);
  const t = new StagingTree();
  t.mkdirp(`/lib/modules/${kver}/kernel`);
  t.addFile(`/lib/modules/${kver}/kernel/bad.ko.xz`, new BufferContent(Buffer.from('not xz')));
  await rejects(() => indexModules(t, kver), /cannot decompress/);
});

test('fuzz: 300 mutated or truncated modules give a parse or a typed error, never a crash', async () => {
  const m = index.modules.get('virtio_blk')!;
  const elf = await readAll(m.inode, m.relPath);
  let seed = 12345;
  const rnd = (n: number) => { seed = (seed * 1103515245 + 12345) >>> 0; return seed % n; };
  let parsed = 0, typed = 0;
  for (let i = 0; i < 300; i++) {
    const b = new Uint8Array(elf.subarray(0, i % 3 === 0 ? rnd(elf.length) : elf.length));
    for (let k = 0; k < 1 + rnd(8); k++) if (b.length) b[i % 2 ? rnd(Math.min(b.length, 64)) : rnd(b.length)] = rnd(256);
    try { parseModinfo(b, 'fuzz.ko'); parsed++; } catch (e) {
      assert.ok(['ElfError', 'StructError', 'ModuleError'].includes((e as Error).name), `${(e as Error).name}: ${(e as Error).message}`);
      typed++;
    }
  }
  assert.is(parsed + typed, 300);
  assert.ok(typed > 50, `only ${typed} rejected`);
});

test('newc writer: header layout read back by cpio -tv', () => {
  const chunks: Uint8Array[] = [];
  const w = new NewcWriter((c) => chunks.push(c));
  w.add({ name: 'a', mode: S_IFREG | 0o640, uid: 1, gid: 2, mtime: 1700000000 }, Buffer.from('hello'));
  w.finish();
  const f = join(dir, 'one.cpio');
  writeFileSync(f, Buffer.concat(chunks));
  const r = sh('cpio -tv --numeric-uid-gid --quiet -F "$1"', [f]);
  assert.match(r.stdout, /^-rw-r----- +1 1 +2 +5 Nov 14 +2023 a$/m);
  assert.is(Buffer.concat(chunks).length % 4, 0);
});

test.after(() => rmSync(dir, { recursive: true, force: true }));
test.run();
