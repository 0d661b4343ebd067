import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ingot } from './helpers/cli.js';

test('--help lists the commands and exits 0', () => {
  const r = ingot(['--help']);
  assert.is(r.code, 0);
  assert.match(r.stdout, /Usage: ingot/);
  assert.match(r.stdout, /build/);
});

test('an unknown command is a usage error (exit 2)', () => {
  const r = ingot(['no-such-command']);
  assert.is(r.code, 2);
  assert.match(r.stderr, /unknown command/);
});

test.run();
