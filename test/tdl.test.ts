import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadTdl, parseTdl } from '../src/spec/tdl.js';
import { loadSpec } from '../src/spec/index.js';
import { SpecError } from '../src/spec/model.js';
import { SHARED } from './helpers/cli.js';

const TDL: string = join(existsSync(SHARED) ? SHARED : '/work/shared', 'fixtures/tdl');
const rows = readFileSync(join(TDL, 'MANIFEST.tsv'), 'utf8').trim().split('\n').slice(1).map((l) => l.split('\t'));
const templates = rows.filter((r) => !r[0]!.startsWith('oz/schema/') && !r[0]!.startsWith('imagefactory/schema/'));

// Not in Oz's expectations table, but oz/TDL.py (same commit) raises for both:
// "All command elements must have a position…" and "Cannot have duplicate or sparse command position order!".
const OZ_CODE_REJECTS = new Set(['oz/tests/test-60-command-mix-positions-and-not.tdl', 'oz/tests/test-61-command-duplicate-position.tdl']);
// A commands-only fragment handed to another tool; it has no <name>/<os>.
const FRAGMENTS = new Set(['imagefactory/imagefactory_plugins/IndirectionCloud/example/utility_tasks.tdl']);

test('every TDL template: accepted or rejected exactly as Oz does, rejections name the field', () => {
  let accepted = 0, rejected = 0, fragments = 0;
  const wrong: string[] = [];
  for (const r of templates) {
    const f = r[0]!;
    const expectReject = r[8] === 'reject' || OZ_CODE_REJECTS.has(f);
    try {
      loadTdl(join(TDL, f), FRAGMENTS.has(f) ? { lenient: true } : {});
      if (expectReject) wrong.push(`${f}: accepted, Oz rejects`); else if (FRAGMENTS.has(f)) fragments++; else accepted++;
    } catch (e) {
      if (!expectReject) { wrong.push(`${f}: ${(e as Error).message}`); continue; }
      assert.ok(e instanceof SpecError, f);
      assert.ok((e as SpecError).context.field, `${f}: error names a field`);
      assert.ok((e as SpecError).message.includes(f), `${f}: error names the file`);
      rejected++;
    }
  }
  console.log(`TDL: ${templates.length} templates, ${accepted} accepted, ${rejected} rejected as Oz does, ${fragments} fragment (lenient)`);
  assert.equal(wrong, []);
  assert.is(templates.length, 98);
  assert.is(rejected, 32);
});

test('the fragment needs lenient mode; strict names the missing field', () => {
  const f = join(TDL, [...FRAGMENTS][0]!);
  assert.throws(() => loadTdl(f), /field template\/name: missing <name>/);
  const s = loadTdl(f, { lenient: true });
  assert.equal(s.scripts.map((x) => x.name), ['mount', 'livecd']);
});

test('values: os, install url, repositories, packages, files, commands, disk, rootpw', () => {
  const s = loadTdl(join(TDL, 'oz/tests/test-16-signed-repository.tdl'));
  assert.equal(s.os, { name: 'Fedora', version: '12' });
  assert.is(s.arch, 'i386');
  assert.equal(s.repositories.map((r) => [r.name, r.baseurl, r.gpgcheck ?? null]), [
    ['install', ['http://download.fedoraproject.org/pub/fedora/linux/releases/12/Fedora/x86_64/os/'], null],
    ['myrepo', ['http://path/to/my/repo'], true],
  ]);
  assert.equal(s.packages.include, ['chris']);
  const persisted = loadTdl(join(TDL, 'oz/tests/test-43-persisted-repos.tdl')).repositories.filter((r) => !r.installSource);
  assert.equal(persisted.map((r) => r.install), [false, false, false, false, false, false, true, true, true, true, true, true]);
  const files = loadTdl(join(TDL, 'oz/tests/test-32-file-base64-type.tdl')).files;
  assert.is(files.length, 1);
  assert.is(files[0]!.kind, 'inline');
  const cmd = loadTdl(join(TDL, 'oz/tests/test-40-command-base64-type.tdl')).scripts;
  assert.is(cmd[0]!.body, 'echo "hello" > /tmp/foo\n');
  const sorted = loadTdl(join(TDL, 'oz/tests/test-59-command-sorting.tdl')).scripts;
  assert.equal(sorted.map((x) => x.name), ['cmd1', 'cmd3', 'cmd2']);
  assert.is(loadTdl(join(TDL, 'oz/tests/test-58-disk-size-tebibyte-compat.tdl')).disk.size, 10 * 2 ** 40);
  assert.is(loadTdl(join(TDL, 'oz/tests/test-65-disk-size-byte.tdl')).disk.size, 10000000);
  assert.is(loadTdl(join(TDL, 'oz/tests/test-64-disk-size-zettabyte.tdl')).disk.size, 10e21);
  assert.is(loadTdl(join(TDL, 'oz/tests/test-51-disk-size.tdl')).disk.size! % 2 ** 30, 0);
  assert.equal(loadTdl(join(TDL, 'oz/tests/test-18-rootpw.tdl')).root.password !== undefined, true);
  const iso = loadTdl(join(TDL, 'oz/tests/test-22-md5sum.tdl'));
  assert.match(iso.repositories[0]!.iso!, /\.iso$/);
});

test('loadSpec reads .xml TDL by extension, and by content without one', () => {
  const s = loadSpec(join(TDL, 'imagefactory-examples/bugs/fedora_koji/tdl-x86_64.xml'));
  assert.is(s.arch, 'x86_64');
  const t = parseTdl('<template><name>a b</name><os><name>Fedora</name><version>40</version><arch>x86_64</arch><install type="url"><url>http://x/</url></install><rootpw>pw</rootpw></os></template>', 'mem.tdl');
  assert.is(t.name, 'a-b');
  assert.equal(t.root.password, { plain: 'pw' });
  assert.is(t.root.lock, false);
});

test('malformed XML and unknown elements are typed errors', () => {
  assert.throws(() => parseTdl('<template><name>x</template>', 'bad.tdl'), (e: unknown) => e instanceof SpecError && /bad\.tdl.*not well-formed/.test((e as Error).message));
  assert.throws(() => parseTdl('<template><name>x</name><bogus/></template>', 'u.tdl'), /field template\/bogus: unknown element/);
});

test.run();
