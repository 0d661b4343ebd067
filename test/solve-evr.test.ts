/**
 * EVR oracle: rpm's and libsolv's own comparison vectors (checked against
 * rpm 4.18 by the fixture's author) in ../shared/fixtures/versions.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SHARED } from './solve-fixtures.js';
import { evrCompareStr, parseEvr, rangesOverlap, rpmvercmp, senseFromOp } from '../src/solve/evr.js';

const DIR = join(SHARED, 'fixtures/versions');

function rows(file: string): string[][] {
  const lines = readFileSync(join(DIR, file), 'utf8').split('\n').filter((l) => l !== '');
  return lines.slice(1).map((l) => l.split('\t'));
}

for (const file of ['rpmvercmp.tsv', 'rpmvercmp-oddities.tsv', 'libsolv-evr.tsv']) {
  test(`${file}: every row agrees with rpmvercmp`, () => {
    const bad: string[] = [];
    const rs = rows(file);
    assert.ok(rs.length >= 12);
    for (const [a, b, exp] of rs) {
      const got = rpmvercmp(a, b);
      if (got !== Number(exp)) bad.push(`${a} vs ${b}: got ${got}, rpm says ${exp}`);
    }
    assert.equal(bad, []);
  });
}

test('rpm-evr.tsv: full [E:]V[-R] comparisons agree', () => {
  const bad: string[] = [];
  for (const [a, b, exp] of rows('rpm-evr.tsv')) {
    const got = evrCompareStr(a, b);
    if (got !== Number(exp)) bad.push(`${a} vs ${b}: got ${got}, rpm says ${exp}`);
  }
  assert.equal(bad, []);
});

test('libsolv-range-overlap.tsv: all 600 range pairs agree', () => {
  const bad: string[] = [];
  const rs = rows('libsolv-range-overlap.tsv');
  assert.is(rs.length, 600);
  for (const [p, c, exp] of rs) {
    const [op1, e1] = p.split(' ');
    const [op2, e2] = c.split(' ');
    const got = rangesOverlap(senseFromOp(op1)!, parseEvr(e1), senseFromOp(op2)!, parseEvr(e2)) ? 1 : 0;
    if (got !== Number(exp)) bad.push(`${p} vs ${c}: got ${got}, libsolv says ${exp}`);
    // overlap is symmetric
    const rev = rangesOverlap(senseFromOp(op2)!, parseEvr(e2), senseFromOp(op1)!, parseEvr(e1)) ? 1 : 0;
    if (rev !== got) bad.push(`${c} vs ${p}: not symmetric`);
  }
  assert.equal(bad, []);
});

test('parseEvr splits epoch and the last dash', () => {
  assert.equal(parseEvr('1:2.3-4.5-6'), { epoch: '1', version: '2.3-4.5', release: '6' });
  assert.equal(parseEvr('2.3'), { epoch: undefined, version: '2.3' });
  assert.equal(parseEvr(':2.3'), { epoch: '0', version: '2.3' });
});

test.run();
