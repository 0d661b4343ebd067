import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { computeLayout, writePartitionTable, SparseFileTarget, SubTarget, FileSource, describePartitions, openPartition, PartitionTableError, MiB } from '../src/disk/index.js';
import { writeFat, openFat } from '../src/fs/fat/index.js';
import { StagingTree, BufferContent } from '../src/tree/tree.js';
import { requireTool } from './helpers/tools.js';
import { IMAGES, run } from './helpers/disk.js';

const dir = mkdtempSync(join(tmpdir(), 'ingot-probe-'));

/** blkid's view of the filesystem at a byte offset of an image. */
function blkid(path: string, offset: number): Record<string, string> {
  const r = run('blkid', ['-p', '-O', String(offset), '-o', 'export', path]);
  return Object.fromEntries(r.stdout.trim().split('\n').filter(Boolean).map((l) => l.split('=', 2) as [string, string]));
}

test('describePartitions: table entries plus fs type, label and UUID as blkid reports them', async () => {
  requireTool('blkid');
  requireTool('mke2fs');
  const size = 160 * MiB;
  const layout = computeLayout([
    { size: 40 * MiB, type: 'esp', name: 'ESP' }, { size: 64 * MiB, type: 'root-x86-64', name: 'root' }, { size: 8 * MiB, type: 'swap' },
  ], size, { table: 'gpt' });
  const path = join(dir, 'disk.img');
  const t = await SparseFileTarget.create(path, size);
  await writePartitionTable(t, { type: 'gpt', partitions: layout.partitions, seed: 'p' });
  const tree = new StagingTree();
  tree.addFile('/EFI/BOOT/BOOTX64.EFI', BufferContent.of('efi'));
  const [esp, root] = layout.partitions;
  await writeFat(new SubTarget(t, esp!.start, esp!.size), tree, { label: 'EFI', seed: 'p' });
  await t.close();
  const mk = run('mke2fs', ['-q', '-F', '-t', 'ext4', '-L', 'rootfs', '-U', '0a1b2c3d-4e5f-4a6b-8c7d-0e1f2a3b4c5d', '-E', `offset=${root!.start}`, path, `${root!.size / 1024}k`]);
  assert.is(mk.code, 0, mk.stderr);
  const src = await FileSource.open(path);
  const d = await describePartitions(src);
  await src.close();
  assert.is(d.table, 'gpt');
  assert.equal(d.partitions.map((p) => [p.index, p.typeName, p.name]), [[1, 'esp', 'ESP'], [2, 'root-x86-64', 'root'], [3, 'swap', null]]);
  for (const p of d.partitions.slice(0, 2)) {
    const b = blkid(path, p.start);
    assert.is(p.fs, b.TYPE, `p${p.index} type`);
    assert.is(p.label, b.LABEL, `p${p.index} label`);
    assert.is(p.fsUuid, b.UUID, `p${p.index} uuid`);
  }
  assert.equal([d.partitions[2]!.fs, d.partitions[2]!.fsUuid], [null, null]);
  // ls/cat --partition 1: the window holds the FAT
  const src2 = await FileSource.open(path);
  const { source: p1 } = await openPartition(src2, 1);
  assert.is(Buffer.from(await (await openFat(p1)).readFile('/EFI/BOOT/BOOTX64.EFI')).toString(), 'efi');
  await openPartition(src2, 9).then(() => assert.unreachable(), (e: unknown) => assert.ok(e instanceof PartitionTableError && e.code === 'NO_SUCH_PARTITION'));
  await src2.close();
});

test('a bare filesystem image: no partitions, the whole disk probed (FAT16 reference image, ext4)', async () => {
  const fat = join(dir, 'ref16.img');
  run('sh', ['-c', `xxd -r '${join(IMAGES, 'dosfstools/referenceFAT16.xxd')}' > '${fat}'`]);
  const ext = join(dir, 'ext.img');
  assert.is(run('mke2fs', ['-q', '-F', '-t', 'ext4', '-L', 'bare', ext, '8M']).code, 0);
  for (const p of [fat, ext]) {
    const src = await FileSource.open(p);
    const d = await describePartitions(src);
    await src.close();
    assert.equal(d.partitions, []);
    const b = blkid(p, 0);
    assert.equal([d.filesystem?.fs, d.filesystem?.label, d.filesystem?.fsUuid], [b.TYPE, b.LABEL, b.UUID], p);
  }
});

test.after(() => rmSync(dir, { recursive: true, force: true }));
test.run();
