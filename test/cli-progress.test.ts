/**
 * What `ingot build` prints while it works: bars on a terminal (run under a
 * real pseudo-terminal made by util-linux `script`), plain stage lines when
 * stderr is a pipe, nothing but the result with --quiet.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT, ingot } from './helpers/cli.js';
import { requireTool } from './helpers/tools.js';

const work = mkdtempSync(join(tmpdir(), 'ingot-progress-'));
test.after(() => rmSync(work, { recursive: true, force: true }));

test('on a terminal: progress bars, redrawn in place', () => {
  requireTool('script');
  const loader = pathToFileURL(join(ROOT, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href;
  const cmd = [process.execPath, '--import', loader, join(ROOT, 'src/cli/main.ts'), 'build', '--no-boot-test', '--format', 'raw', '-o', join(work, 'tty')]
    .map((a) => `'${a}'`).join(' ');
  const log = join(work, 'typescript');
  const env: NodeJS.ProcessEnv = { ...process.env, TERM: 'xterm', COLUMNS: '120' };
  delete env.CI;
  delete env.INGOT_PROGRESS;
  const r = spawnSync('script', ['-qec', cmd, log], { encoding: 'utf8', env, timeout: 300_000 });
  assert.is(r.status, 0, `${r.stdout}${r.stderr}`);
  const text = readFileSync(log, 'latin1');
  assert.match(text, /\x1b\[\?25l/, 'cursor hidden while drawing');
  assert.match(text, /unpack\s+\S*\s+6\/6|unpack +[^\n]*\d+\/\d+/, 'an unpack bar with its count');
  assert.not.match(text, /^\[unpack\]/m, 'no plain lines on a terminal');
});

test('not a terminal: one plain line per stage; --quiet: nothing on stderr', () => {
  const plain = ingot(['build', '--no-boot-test', '--format', 'raw', '-o', join(work, 'plain')], { env: { INGOT_PROGRESS: '' } });
  assert.is(plain.code, 0, plain.stderr);
  for (const s of ['resolve', 'download', 'unpack', 'configure', 'bootloader', 'disk', 'output']) assert.match(plain.stderr, new RegExp(`^\\[${s}\\]`, 'm'));
  assert.not.match(plain.stderr, /\x1b\[/, 'no escape sequences in a pipe');
  const quiet = ingot(['build', '--no-boot-test', '--format', 'raw', '-q', '-o', join(work, 'quiet')]);
  assert.is(quiet.code, 0, quiet.stderr);
  assert.is(quiet.stderr, '');
  assert.is(quiet.stdout, '');
});

test.run();
