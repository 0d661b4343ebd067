/**
 * Fuzzing: mutated corpus packages (bit flips, truncation, inflated counts and
 * offsets, changed tags/types) each end in success or a typed error — never a
 * crash, an untyped exception, a hang or runaway memory. 2,000 cases by
 * default; INGOT_LONG=1 runs 100,000 (INGOT_FUZZ_CASES overrides).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openRpm } from '../src/rpm/index.js';
import { manifest } from './helpers/rpm-oracle.js';
import { fuzz } from './helpers/rpm-fuzz.js';

const CASES = Number(process.env.INGOT_FUZZ_CASES ?? (process.env.INGOT_LONG === '1' ? 100_000 : 2_000));
const work = mkdtempSync(join(tmpdir(), 'ingot-rpm-fuzz-'));

test(`fuzz: ${CASES} mutated packages end in success or a typed error`, async () => {
  const sources = [];
  for (const row of manifest()) {
    if (row.unparseable || statSync(row.path).size > 64 * 1024) continue;
    try {
      const p = await openRpm(row.path);
      sources.push({ name: row.file, bytes: readFileSync(row.path), layout: { sig: p.layout.signatureOffset, main: p.layout.headerOffset, payload: p.layout.payloadOffset } });
    } catch { /* truncated corpus files still serve as seeds only if they open */ }
  }
  assert.ok(sources.length > 50, `${sources.length} seed packages`);
  const t0 = Date.now();
  const r = await fuzz(sources, CASES, join(work, 'f'), Number(process.env.INGOT_FUZZ_SEED ?? 0x1ee7));
  console.log(`rpm fuzz: ${CASES} cases from ${sources.length} seeds in ${((Date.now() - t0) / 1000).toFixed(1)} s: ${r.ok} read fully, ${r.typed} typed errors, ${r.failures.length} failures; max RSS ${r.maxRssMB} MB`);
  assert.equal(r.failures, []);
});

test.after(() => rmSync(work, { recursive: true, force: true }));
test.run();
