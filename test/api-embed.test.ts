/**
 * Embedding: a program outside the repository that imports `ingot` as a
 * package (through package.json "exports", i.e. the compiled dist/) builds
 * the default image, converts it, inspects it and boots the converted file —
 * using nothing but the public API. qemu (booting), qemu-img (reading the
 * conversion) and sgdisk (the partition table) are the outside judges.
 * Also: the injected logger and progress callback receive events, and an
 * AbortSignal fired mid-build leaves no file behind.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './helpers/cli.js';
import { requireTool } from './helpers/tools.js';

const work = mkdtempSync(join(tmpdir(), 'ingot-embed-'));

test.before(() => {
  requireTool('qemu-img');
  requireTool('qemu-system-x86_64');
  requireTool('sgdisk');
  // What a user installing the package gets: `prepare` compiles to dist/. Rebuild so the test sees this checkout.
  const tsc = spawnSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(ROOT, 'tsconfig.json')], { encoding: 'utf8' });
  assert.is(tsc.status, 0, `tsc failed: ${tsc.stdout}${tsc.stderr}`);
  // A consumer project whose node_modules/ingot is this package.
  mkdirSync(join(work, 'app', 'node_modules'), { recursive: true });
  symlinkSync(ROOT, join(work, 'app', 'node_modules', 'ingot'));
});

test.after(() => rmSync(work, { recursive: true, force: true }));

function runApp(source: string, timeoutMs = 600_000): { code: number; stdout: string; stderr: string } {
  const file = join(work, 'app', `app-${Math.random().toString(36).slice(2)}.mjs`);
  writeFileSync(file, source);
  const r = spawnSync(process.execPath, [file], { cwd: join(work, 'app'), encoding: 'utf8', timeout: timeoutMs, env: { ...process.env, SOURCE_DATE_EPOCH: '1700000000' } });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

test('a consumer builds, converts, inspects and boots with the public API only', () => {
  const out = join(work, 'out');
  const r = runApp(`
import { build, convert, inspect, boot, fixtureRepo, BOOT_MARKER } from 'ingot';
const events = new Set(); const logs = [];
const logger = { info: (m) => logs.push(m), warn: (m) => logs.push('W ' + m) };
const b = await build({ outputDir: ${JSON.stringify(out)}, defaultRepo: fixtureRepo(), formats: ['qcow2'],
  onProgress: (e) => events.add(e.stage), logger });
const qcow2 = b.outputs[0].path;
const vmdk = ${JSON.stringify(join(out, 'converted.vmdk'))};
await convert(qcow2, vmdk, { format: 'vmdk' });
const info = await inspect(vmdk);
const r = await boot({ image: vmdk, firmware: 'bios', expect: new RegExp(BOOT_MARKER), timeout: 240 });
console.log(JSON.stringify({ outputs: b.outputs, stages: [...events], logs, info, boot: { ok: r.ok, outcome: r.outcome } }));
`);
  assert.is(r.code, 0, `consumer failed: ${r.stderr.slice(-2000)}`);
  const res = JSON.parse(r.stdout.trim().split('\n').pop()!) as {
    outputs: { path: string; sha256: string }[]; stages: string[]; logs: string[];
    info: { format: string; virtualSize: number; table: string; partitions: { fs: string | null }[] }; boot: { ok: boolean; outcome: string };
  };
  assert.ok(res.boot.ok, `boot of the converted vmdk: ${res.boot.outcome}`);
  for (const s of ['spec', 'resolve', 'download', 'unpack', 'configure', 'bootloader', 'disk', 'output']) assert.ok(res.stages.includes(s), `progress stage ${s}`);
  assert.ok(res.logs.some((l) => /resolved \d+ packages/.test(l)), 'the injected logger is used');
  // qemu-img reads the converted file as what ingot says it is, with the same content as the qcow2.
  const qi = JSON.parse(spawnSync('qemu-img', ['info', '--output=json', join(out, 'converted.vmdk')], { encoding: 'utf8' }).stdout) as { format: string; 'virtual-size': number };
  assert.is(qi.format, 'vmdk');
  assert.is(res.info.virtualSize, qi['virtual-size']);
  const cmp = spawnSync('qemu-img', ['compare', res.outputs[0]!.path, join(out, 'converted.vmdk')], { encoding: 'utf8' });
  assert.is(cmp.status, 0, `qemu-img compare: ${cmp.stdout}${cmp.stderr}`);
  // sgdisk sees the partitions inspect() reported.
  const raw = join(work, 'check.raw');
  assert.is(spawnSync('qemu-img', ['convert', '-O', 'raw', join(out, 'converted.vmdk'), raw]).status, 0);
  const sg = spawnSync('sgdisk', ['-p', raw], { encoding: 'utf8' });
  const rows = sg.stdout.split('\n').filter((l) => /^\s+\d+\s+\d+\s+\d+/.test(l));
  assert.is(res.info.table, 'gpt');
  assert.is(rows.length, res.info.partitions.length, sg.stdout);
  rmSync(raw, { force: true });
});

test('an AbortSignal fired mid-build leaves nothing in the output directory', () => {
  const out = join(work, 'aborted');
  const r = runApp(`
import { build, fixtureRepo, AbortedError } from 'ingot';
const ac = new AbortController();
try {
  await build({ outputDir: ${JSON.stringify(out)}, defaultRepo: fixtureRepo(), formats: ['raw', 'qcow2'], signal: ac.signal,
    onProgress: (e) => { if (e.stage === 'disk') ac.abort(); } });
  console.log('NOT ABORTED');
} catch (e) {
  console.log(e instanceof AbortedError ? 'ABORTED' : 'OTHER ' + e);
}
`);
  assert.is(r.code, 0, r.stderr);
  assert.is(r.stdout.trim(), 'ABORTED');
  const left = readdirSync(out);
  assert.equal(left, [], `left behind: ${left.join(', ')}`);
});

test.run();
