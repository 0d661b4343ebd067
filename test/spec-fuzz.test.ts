import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseKickstart } from '../src/spec/kickstart.js';
import { parseTdl } from '../src/spec/tdl.js';
import { parseJsonSpec } from '../src/spec/json.js';
import { IngotError } from '../src/errors.js';
import { SHARED } from './helpers/cli.js';

const FIX = join(existsSync(SHARED) ? SHARED : '/work/shared', 'fixtures');
const N = process.env.INGOT_LONG === '1' ? 20000 : 400;

/** Deterministic PRNG (mulberry32) so failures reproduce. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ALPHABET = ['"', "'", '\\', '%', '-', '=', '@', '\n', '#', ' ', '<', '>', '/', '{', '}', '[', ']', ':', ',', '0', 'x', '\t', '&', ';'];

function mutate(text: string, r: () => number): string {
  let s = text;
  const ops = 1 + Math.floor(r() * 4);
  for (let k = 0; k < ops; k++) {
    const at = Math.floor(r() * (s.length + 1));
    switch (Math.floor(r() * 5)) {
      case 0: s = s.slice(0, at) + s.slice(at + 1 + Math.floor(r() * 8)); break;
      case 1: s = s.slice(0, at) + ALPHABET[Math.floor(r() * ALPHABET.length)] + s.slice(at); break;
      case 2: s = s.slice(0, at); break;
      case 3: { const lines = s.split('\n'); const i = Math.floor(r() * lines.length); lines.splice(i, 0, lines[Math.floor(r() * lines.length)] ?? ''); s = lines.join('\n'); break; }
      default: s = s.slice(0, at) + s.slice(at, at + 20).toUpperCase() + s.slice(at + 20);
    }
  }
  return s;
}

function fuzz(name: string, inputs: string[], parse: (t: string) => unknown): void {
  const r = rng(0x1n === 1n ? 20261122 : 1);
  let ok = 0, typed = 0;
  for (let i = 0; i < N; i++) {
    const src = mutate(inputs[i % inputs.length]!, r);
    const t0 = Date.now();
    try { parse(src); ok++; } catch (e) {
      if (!(e instanceof IngotError)) assert.unreachable(`${name} case ${i}: untyped ${(e as Error).name}: ${(e as Error).message}\n---\n${src.slice(0, 400)}`);
      typed++;
    }
    assert.ok(Date.now() - t0 < 2000, `${name} case ${i} took too long`);
  }
  console.log(`${name}: ${N} mutated inputs, ${ok} parsed, ${typed} typed errors, 0 crashes`);
}

test('kickstart: mutated real kickstarts parse or fail with a typed error', () => {
  const files = execFileSync('find', [join(FIX, 'kickstarts'), '-name', '*.ks']).toString().trim().split('\n').sort();
  const texts = files.map((f) => readFileSync(f, 'utf8'));
  // Includes resolve relative to a virtual directory that does not exist: a missing include is a typed error too.
  fuzz('kickstart', texts, (t) => parseKickstart(t, '/nonexistent/fuzz.ks'));
  fuzz('kickstart-lenient', texts, (t) => parseKickstart(t, '/nonexistent/fuzz.ks', { lenient: true }));
});

test('TDL: mutated templates parse or fail with a typed error', () => {
  const files = execFileSync('find', [join(FIX, 'tdl'), '-name', '*.tdl']).toString().trim().split('\n').sort();
  fuzz('tdl', files.map((f) => readFileSync(f, 'utf8')), (t) => parseTdl(t, 'fuzz.tdl'));
});

test('JSON: mutated specs parse or fail with a typed error', () => {
  const md = readFileSync(new URL('../docs/spec.md', import.meta.url), 'utf8');
  const doc = /```json\n([\s\S]*?)```/.exec(md)![1]!;
  fuzz('json', [doc, '{}', '{"disk":{"partitions":[{"mount":"/","size":"1G"}]}}'], (t) => parseJsonSpec(t, 'fuzz.json'));
});

test.run();
