import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { computeLayout, minimalDiskSize, parseSize, LayoutError, MiB } from '../src/disk/index.js';

const GiB = 1024 * MiB;

test('first partition starts at 1 MiB; fixed sizes are placed back to back on alignment', () => {
  const l = computeLayout([{ size: 100 * MiB }, { size: 3 * 512 }, { size: 10 * MiB }], GiB, { table: 'gpt' });
  assert.equal(l.partitions.map((p) => [p.index, p.start / MiB, p.size]), [
    [1, 1, 100 * MiB], [2, 101, 1536], [3, 102, 10 * MiB],
  ]);
});

test('GPT keeps the 33-sector backup area free; MBR may use the disk to its end', () => {
  const g = computeLayout([{ grow: true }], 64 * MiB, { table: 'gpt' });
  assert.is(g.lastUsable, 64 * MiB - 33 * 512);
  assert.ok(g.partitions[0]!.start + g.partitions[0]!.size <= g.lastUsable);
  // Grown partitions end on an alignment boundary, so the last whole MiB before the backup GPT is left.
  assert.is(g.partitions[0]!.size, 62 * MiB);
  const m = computeLayout([{ grow: true }], 64 * MiB, { table: 'mbr' });
  assert.is(m.partitions[0]!.start + m.partitions[0]!.size, 64 * MiB);
});

test('percentages are of the whole disk, rounded down to the alignment; growers share the rest equally', () => {
  const l = computeLayout([{ percent: 25 }, { grow: true }, { size: 8 * MiB }, { grow: true }], 1000 * MiB, { table: 'mbr' });
  const [a, b, c, d] = l.partitions;
  assert.is(a!.size, 250 * MiB);
  assert.is(c!.size, 8 * MiB);
  assert.ok(Math.abs(b!.size - d!.size) <= MiB, 'equal shares up to one alignment unit');
  assert.is(d!.start + d!.size, 1000 * MiB);
  for (const p of l.partitions) assert.is(p.start % MiB, 0);
});

test('maxSize caps a grower and its unused share goes to the others', () => {
  const l = computeLayout([{ grow: true, maxSize: 10 * MiB }, { grow: true }], 101 * MiB, { table: 'mbr' });
  assert.is(l.partitions[0]!.size, 10 * MiB);
  assert.is(l.partitions[1]!.size, 90 * MiB);
});

test('per-partition alignment and 4096-byte sectors', () => {
  const l = computeLayout([{ size: 4096 }, { size: 5000, align: 4 * MiB }], 64 * MiB, { table: 'gpt', sectorSize: 4096 });
  assert.is(l.partitions[0]!.start, MiB);
  assert.is(l.partitions[1]!.start, 4 * MiB);
  assert.is(l.partitions[1]!.size, 8192);
  // 4096-byte sectors: the 16 KiB entry array takes 4 sectors, so LBA 6 is the first usable.
  assert.is(l.firstUsable, 6 * 4096);
});

test('logical partitions: numbered from 5, each with room for its EBR', () => {
  const l = computeLayout([{ size: MiB }, { size: MiB, logical: true }, { size: MiB, logical: true }], 16 * MiB, { table: 'mbr' });
  assert.equal(l.partitions.map((p) => [p.index, p.start / MiB]), [[1, 1], [5, 3], [6, 5]]);
});

test('impossible layouts are LayoutErrors', () => {
  const bad = (f: () => unknown, re: RegExp) => assert.throws(f, (e: unknown) => e instanceof LayoutError && re.test((e as Error).message));
  bad(() => computeLayout([{ size: 64 * MiB }], 64 * MiB, { table: 'gpt' }), /does not fit/);
  bad(() => computeLayout([{ size: 1 }, { size: 1 }, { size: 1 }, { size: 1 }, { size: 1 }], GiB, { table: 'mbr' }), /4 primary/);
  bad(() => computeLayout([{ size: 1, grow: true }], GiB, { table: 'mbr' }), /exactly one/);
  bad(() => computeLayout([{ size: MiB, logical: true }], GiB, { table: 'gpt' }), /logical/);
  bad(() => computeLayout([{ size: MiB, logical: true }, { size: MiB }], GiB, { table: 'mbr' }), /come last/);
  bad(() => computeLayout([{ size: MiB }, { grow: true }], 2 * MiB + 33 * 512, { table: 'gpt' }), /no space/);
  bad(() => computeLayout([{ size: MiB }], GiB, { table: 'gpt', alignment: 1000 }), /alignment/);
});

test('minimalDiskSize is the smallest alignment multiple on which the layout fits', () => {
  const cases = [
    { reqs: [{ size: 100 * MiB }, { size: 3000 }], opts: { table: 'gpt' as const } },
    { reqs: [{ size: 512 * MiB }, { grow: true, minSize: 200 * MiB }], opts: { table: 'gpt' as const } },
    { reqs: [{ size: 10 * MiB }, { percent: 50 }], opts: { table: 'mbr' as const } },
    { reqs: [{ size: MiB }, { size: MiB, logical: true }, { grow: true, logical: true }], opts: { table: 'mbr' as const } },
  ];
  for (const { reqs, opts } of cases) {
    const n = minimalDiskSize(reqs, opts);
    assert.is(n % MiB, 0);
    const l = computeLayout(reqs, n, opts);
    reqs.forEach((r, i) => { if ('minSize' in r) assert.ok(l.partitions[i]!.size >= r.minSize!); });
    assert.throws(() => {
      const smaller = computeLayout(reqs, n - MiB, opts);
      reqs.forEach((r, i) => { if ('minSize' in r && smaller.partitions[i]!.size < r.minSize!) throw new LayoutError('too small'); });
    }, (e: unknown) => e instanceof LayoutError);
  }
  // 100 MiB + 3000 bytes: partitions at 1 MiB and 101 MiB (3072 bytes), then the 33-sector backup GPT → 102 MiB.
  assert.is(minimalDiskSize(cases[0]!.reqs, cases[0]!.opts), 102 * MiB);
});

test('parseSize understands the units image definitions use', () => {
  assert.equal(parseSize('512M'), { size: 512 * MiB });
  assert.equal(parseSize('1GiB'), { size: GiB });
  assert.equal(parseSize('1GB'), { size: 1e9 });
  assert.equal(parseSize('2048s'), { size: MiB });
  assert.equal(parseSize('33%'), { percent: 33 });
  assert.equal(parseSize('grow'), { grow: true });
  assert.throws(() => parseSize('12 parsecs'), (e: unknown) => e instanceof LayoutError);
});

test.run();
