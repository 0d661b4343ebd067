/**
 * `ingot repo query` / `ingot repo resolve` from the command line: the JSON
 * shape of the issue, the install set equal to dnf's, exit codes (1 for an
 * unsatisfiable request with its explanation on one line, 2 for usage).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { ingot } from './helpers/cli.js';
import { FIXTURE_REPOS } from './solve-fixtures.js';
import { dnfResolve } from './solve-corpus.js';

const ZOO = join(FIXTURE_REPOS, 'katello-zoo');

test('repo resolve --json: shape and the same set as dnf', () => {
  const r = ingot(['repo', 'resolve', '--repo', ZOO, '--json', 'armadillo', 'elephant']);
  assert.is(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { install: Record<string, unknown>[]; order: string[] };
  const keys = ['nevra', 'name', 'epoch', 'version', 'release', 'arch', 'repo', 'location', 'size', 'checksum'];
  for (const p of out.install) assert.equal(Object.keys(p).sort(), [...keys].sort());
  const want = dnfResolve([ZOO], 'x86_64', [{ specs: ['armadillo', 'elephant'], weak: true }])[0];
  assert.ok(want.ok);
  if (want.ok) assert.equal(out.install.map((p) => p.nevra).sort(), want.install);
  assert.equal([...out.order].sort(), out.install.map((p) => p.nevra as string).sort());
});

test('repo resolve: unsatisfiable → exit 1 with the explanation; no --repo → exit 2', () => {
  const r = ingot(['repo', 'resolve', '--repo', ZOO, 'cheetah']);
  assert.is(r.code, 1);
  assert.match(r.stderr, /nothing provides \/bin\/sh needed by cheetah-0\.3-0\.8\.noarch/);
  assert.is(r.stderr.trim().split('\n').length, 1);
  const u = ingot(['repo', 'resolve', 'lion']);
  assert.is(u.code, 2);
});

test('repo query: names, globs, provides; --json', () => {
  const r = ingot(['repo', 'query', '--repo', ZOO, 'armadillo']);
  assert.is(r.code, 0, r.stderr);
  assert.is(r.stdout.trim().split('\n').length, 3);
  const j = JSON.parse(ingot(['repo', 'query', '--repo', ZOO, '--json', 'l*']).stdout) as { name: string }[];
  assert.ok(j.length >= 1 && j.every((p) => p.name.startsWith('l')));
  assert.is(ingot(['repo', 'query', '--repo', ZOO, 'nothing-like-this']).code, 1);
});

test.run();
