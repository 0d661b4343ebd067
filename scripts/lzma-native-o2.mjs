#!/usr/bin/env node
// Rebuild lzma-native's addon from the xz source bundled in the package, optimised.
//
// Why: the package's prebuilt linux binary and its own source build both compile liblzma
// without optimisation (its liblzma-config.sh passes CFLAGS="-fPIC $CFLAGS" to configure,
// which replaces autoconf's default "-g -O2"), so raw.xz / tar.xz output costs ~2.2x the CPU of
// the system's xz for the same bytes. Built with CFLAGS=-O2 it is within ~1.2x. node-gyp-build
// prefers build/Release over prebuilds/, so the rebuilt addon is the one loaded.
//
// Runs as `postinstall`; never fails the install: on any problem the prebuilt binary stays.
// INGOT_SKIP_LZMA_REBUILD=1 skips it; an existing build/Release/lzma_native.node is kept.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);
const warn = (msg) => { process.stderr.write(`ingot: lzma-native stays on its prebuilt (unoptimised) binary: ${msg}\n`); process.exit(0); };

if (process.env.INGOT_SKIP_LZMA_REBUILD) process.exit(0);
let dir;
try { dir = dirname(require.resolve('lzma-native/package.json')); } catch { warn('lzma-native is not installed'); }
if (existsSync(join(dir, 'build', 'Release', 'lzma_native.node'))) process.exit(0);

// npm tells lifecycle scripts where its bundled node-gyp is; otherwise look beside npm.
const candidates = [
  process.env.npm_config_node_gyp,
  process.env.npm_execpath && join(dirname(process.env.npm_execpath), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
].filter(Boolean);
const gyp = candidates.find((p) => existsSync(p));
if (!gyp) warn('node-gyp not found');

// Build against the running node's own headers when it has them (no header download, works offline).
const prefix = join(dirname(process.execPath), '..');
const nodedir = process.env.npm_config_nodedir || (existsSync(join(prefix, 'include', 'node', 'node_api.h')) ? prefix : '');
const r = spawnSync(process.execPath, [gyp, 'rebuild', ...(nodedir ? [`--nodedir=${nodedir}`] : [])], {
  cwd: dir, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8',
  env: { ...process.env, CFLAGS: `-O2 ${process.env.CFLAGS ?? ''}`.trim() },
});
if (r.status !== 0) warn(`node-gyp rebuild failed (${(r.stderr ?? '').trim().split('\n').slice(-3).join(' | ')})`);
// A failed build can leave a partial build/; the loader then must not find a broken addon.
try { require(join(dir, 'index.js')); } catch (e) { spawnSync('rm', ['-rf', join(dir, 'build')]); warn(`the rebuilt addon does not load: ${e.message}`); }
