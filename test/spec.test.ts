import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IMAGE_SPEC_SCHEMA, IMAGE_SPEC_SCHEMA_PATH, normalizeSpec, parseSize, SpecError, type ImageSpecInput } from '../src/spec/model.js';
import { validate } from '../src/spec/validate.js';
import { parseJsonSpec } from '../src/spec/json.js';
import { loadSpec } from '../src/spec/index.js';
import { requireTool } from './helpers/tools.js';

const FULL: ImageSpecInput = {
  name: 'demo', arch: 'x86_64',
  repositories: [{ name: 'fedora', metalink: 'https://mirrors.fedoraproject.org/metalink?repo=fedora-41&arch=x86_64' }, { name: 'local', baseurl: ['file:///srv/repo'] }],
  packages: { include: ['kernel', 'openssh-server'], groups: [{ name: 'core' }], exclude: ['plymouth'], weakDeps: false, excludeDocs: true, instLangs: ['en'] },
  disk: { table: 'gpt', size: '8GiB', partitions: [{ mount: '/boot/efi', size: '200MiB', fs: 'efi' }, { mount: '/', size: 2147483648, grow: true, fs: 'ext4', label: 'root' }] },
  bootloader: { kind: 'grub', timeout: 1, kernelArgs: ['console=ttyS0'], firmware: 'uefi' },
  root: { password: { hashed: '$6$abc$def' } },
  users: [{ name: 'alice', groups: ['wheel'], password: { plain: 'pw' }, sshKeys: ['ssh-ed25519 AAAA alice'] }],
  hostname: 'demo.example', timezone: { name: 'Europe/Berlin', utc: true }, locale: 'de_DE.UTF-8', keyboard: { vconsole: 'de' },
  network: [{ device: 'eth0', bootproto: 'static', ip: '10.0.0.2', netmask: '24', gateway: '10.0.0.1', nameservers: ['10.0.0.1'] }],
  services: { enable: ['sshd'], disable: ['kdump'] }, defaultTarget: 'multi-user.target', selinux: 'permissive',
  files: [{ kind: 'inline', path: '/etc/motd', content: 'hi\n', encoding: 'utf8', mode: 0o644 }, { kind: 'overlay', path: '/', archive: 'overlay.tar', format: 'tar' }],
  outputs: [{ format: 'qcow2', name: 'demo.qcow2' }, { format: 'raw' }],
  deferredScriptletsUnit: true,
};

/** Documents that break one rule each, with the field path our errors must name. */
const BAD: [string, unknown, string][] = [
  ['unknown top-level field', { nmae: 'x' }, 'nmae'],
  ['bad enum', { selinux: 'on' }, 'selinux'],
  ['bad partition fs', { disk: { partitions: [{ mount: '/', fs: 'ntfs' }] } }, 'disk.partitions[0].fs'],
  ['bad partition mount', { disk: { partitions: [{ mount: 'root' }] } }, 'disk.partitions[0].mount'],
  ['repo without url', { repositories: [{ name: 'r' }] }, 'repositories[0]'],
  ['repo name with space', { repositories: [{ name: 'a b', baseurl: ['x'] }] }, 'repositories[0].name'],
  ['password both forms', { root: { password: { plain: 'a', hashed: 'b' } } }, 'root.password'],
  ['password number', { users: [{ name: 'bob', password: { plain: 5 } }] }, 'users[0].password.plain'],
  ['user without name', { users: [{ groups: [] }] }, 'users[0].name'],
  ['user name uppercase', { users: [{ name: 'Bob' }] }, 'users[0].name'],
  ['file without kind', { files: [{ path: '/x', content: 'y' }] }, 'files[0]'],
  ['file relative path', { files: [{ kind: 'host', path: 'etc/x', source: '/tmp/x' }] }, 'files[0].path'],
  ['mode too big', { files: [{ kind: 'inline', path: '/x', content: '', encoding: 'utf8', mode: 70000 }] }, 'files[0].mode'],
  ['timeout string', { bootloader: { timeout: '5' } }, 'bootloader.timeout'],
  ['bad output format', { outputs: [{ format: 'iso' }] }, 'outputs[0].format'],
  ['default target name', { defaultTarget: 'multi-user' }, 'defaultTarget'],
  ['packages include not array', { packages: { include: 'vim' } }, 'packages.include'],
  ['mtu too small', { network: [{ device: 'eth0', mtu: 10 }] }, 'network[0].mtu'],
  ['hostname invalid', { hostname: '-bad host' }, 'hostname'],
  ['arch unknown', { arch: 'sparc' }, 'arch'],
];

test('the schema is a valid draft 2020-12 schema and agrees with python-jsonschema on every document', () => {
  requireTool('jsonschema');
  const docs: unknown[] = [FULL, {}, { name: 'x' }, ...BAD.map((b) => b[1])];
  const script = [
    'import json, sys',
    'from jsonschema import Draft202012Validator as V',
    's = json.load(open(sys.argv[1]))',
    'V.check_schema(s)',
    'v = V(s)',
    'print(json.dumps([v.is_valid(d) for d in json.load(open(sys.argv[2]))]))',
  ].join('\n');
  const dir = mkdtempSync(join(tmpdir(), 'schema-'));
  writeFileSync(join(dir, 'docs.json'), JSON.stringify(docs));
  const r = spawnSync('/usr/bin/python3', ['-c', script, IMAGE_SPEC_SCHEMA_PATH, join(dir, 'docs.json')], { encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  const theirs = JSON.parse(r.stdout) as boolean[];
  const ours = docs.map((d) => validate(IMAGE_SPEC_SCHEMA, d).length === 0);
  assert.equal(ours, theirs);
  assert.equal(theirs.slice(0, 3), [true, true, true]);
  assert.ok(theirs.slice(3).every((v) => !v));
});

test('validation errors name the field path', () => {
  for (const [what, doc, path] of BAD) {
    assert.throws(() => normalizeSpec(doc as ImageSpecInput, 'spec.json'), (e: unknown) => {
      const ok = e instanceof SpecError && (e.context.field === path || e.context.field!.startsWith(path));
      if (!ok) console.log(what, (e as Error).message);
      return ok;
    }, what);
  }
});

test('defaults an Anaconda/cloud-image user expects', () => {
  const s = normalizeSpec({}, 'empty.json');
  assert.is(s.selinux, 'enforcing');
  assert.is(s.root.lock, true);
  assert.is(s.locale, 'en_US.UTF-8');
  assert.equal(s.timezone, { name: 'UTC', utc: true, ntp: true, ntpServers: [] });
  assert.equal([s.packages.core, s.packages.weakDeps, s.packages.excludeDocs], [true, true, false]);
  assert.is(s.packages.instLangs, undefined);
  assert.is(s.disk.table, 'gpt');
  assert.ok(s.disk.partitions.some((p) => p.mount === '/' && p.grow));
  assert.equal(s.outputs, [{ format: 'raw' }]);
  const uefi = normalizeSpec({ bootloader: { firmware: 'hybrid' } });
  assert.equal(uefi.disk.partitions.map((p) => p.fs), ['biosboot', 'efi', 'ext4']);
});

test('sizes: units and bytes', () => {
  assert.is(parseSize('512MiB', 'f'), 512 * 2 ** 20);
  assert.is(parseSize('1.5G', 'f'), 1.5 * 2 ** 30);
  assert.is(parseSize('10 GB', 'f'), 10e9);
  assert.is(parseSize(4096, 'f'), 4096);
  assert.throws(() => parseSize('ten', 'disk.size'), /field disk\.size: bad size/);
  assert.throws(() => parseSize(-1, 'disk.size'), /non-negative/);
  const s = normalizeSpec(FULL);
  assert.is(s.disk.size, 8 * 2 ** 30);
  assert.is(s.disk.partitions[0]!.size, 200 * 2 ** 20);
});

test('JSON front end: syntax errors carry the line; loadSpec dispatches .json', () => {
  assert.throws(() => parseJsonSpec('{\n  "name": "x",\n  oops\n}', 'a.json'), /a\.json:3: not valid JSON/);
  assert.throws(() => parseJsonSpec('[1]', 'a.json'), /must be a JSON object/);
  const d = mkdtempSync(join(tmpdir(), 'spec-'));
  writeFileSync(join(d, 's.json'), JSON.stringify(FULL));
  const s = loadSpec(join(d, 's.json'));
  assert.is(s.users[0]!.name, 'alice');
  assert.equal(s.users[0]!.groups, ['wheel']);
  assert.is(s.users[0]!.lock, false);
  writeFileSync(join(d, 'noext'), JSON.stringify({ selinux: 'bogus' }));
  assert.throws(() => loadSpec(join(d, 'noext')), /noext, field selinux: must be one of/);
});

test('the JSON example in docs/spec.md is a valid spec (python-jsonschema agrees)', () => {
  const md = readFileSync(new URL('../docs/spec.md', import.meta.url), 'utf8');
  const m = /```json\n([\s\S]*?)```/.exec(md);
  assert.ok(m, 'docs/spec.md has a json block');
  const s = parseJsonSpec(m![1]!, 'docs/spec.md');
  assert.is(s.bootloader.firmware, 'hybrid');
  assert.is(s.disk.partitions.length, 4);
  const dir = mkdtempSync(join(tmpdir(), 'doc-'));
  writeFileSync(join(dir, 'doc.json'), m![1]!);
  const r = spawnSync('/usr/bin/python3', ['-c', 'import json,sys; from jsonschema import Draft202012Validator as V; V(json.load(open(sys.argv[1]))).validate(json.load(open(sys.argv[2])))', IMAGE_SPEC_SCHEMA_PATH, join(dir, 'doc.json')], { encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
});

test('mount points are unique', () => {
  assert.throws(() => normalizeSpec({ disk: { partitions: [{ mount: '/' }, { mount: '/' }] } }), /mount point \/ used twice/);
});

test.run();
