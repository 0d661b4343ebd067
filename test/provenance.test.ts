// Provenance beside every build: the CycloneDX 1.5 SBOM validated by the
// CycloneDX project's own strict JSON validator (the published bom-1.5 schema
// with ajv), its packages checked against what `rpm -qa` finds in the image's
// rpmdb and against `rpm -qp`/`sha256sum` of the repository's RPM files, its
// purls parsed by packageurl-js; the manifest checked the same way; CHECKSUM
// checked by `sha256sum -c`.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Spec, Validation } from '@cyclonedx/cyclonedx-library';
import { PackageURL } from 'packageurl-js';
import { requireTool } from './helpers/tools.js';
import { repoRpms, rootTree, rpmQa, runIngot, writeSpec } from './provenance-fixture.js';

const work = mkdtempSync(join(tmpdir(), 'ingot-prov-'));
const out = join(work, 'out');
const EPOCH = '1700000000';

interface CdxComponent {
  'bom-ref': string; type: string; name: string; version: string; purl: string;
  hashes: { alg: string; content: string }[];
  licenses?: ({ expression: string } | { license: { name?: string; id?: string } })[];
  properties: { name: string; value: string }[];
}
interface Cdx {
  specVersion: string; serialNumber: string;
  metadata: { timestamp: string; component: { 'bom-ref': string; name: string } };
  components: CdxComponent[];
  dependencies: { ref: string; dependsOn?: string[] }[];
}

let bom: Cdx;
let bomText = '';

test('every build writes NAME.cdx.json, valid against the CycloneDX 1.5 JSON schema (strict)', async () => {
  for (const t of ['sfdisk', 'debugfs', 'rpm', 'sha256sum']) requireTool(t);
  requireTool('blkid', 'util-linux');
  const r = runIngot(['build', writeSpec(work, 'prov', { kernel: true }), '-o', out, '--format', 'raw,qcow2', '-q'], { env: { SOURCE_DATE_EPOCH: EPOCH } });
  assert.is(r.code, 0, r.stderr);
  bomText = readFileSync(join(out, 'prov.cdx.json'), 'utf8');
  bom = JSON.parse(bomText) as Cdx;
  const validator = new Validation.JsonStrictValidator(Spec.Version.v1dot5);
  assert.is(await validator.validate(bomText), null);
  // The validator is a real reader: a broken document is refused.
  const bad = JSON.parse(bomText) as Cdx;
  bad.components[0]!.hashes[0]!.content = 'not-hex';
  assert.ok(await validator.validate(JSON.stringify(bad)), 'a bad hash must fail the schema');
  const noSerial = JSON.parse(bomText) as Record<string, unknown>;
  noSerial.serialNumber = 'serial-1';
  assert.ok(await validator.validate(JSON.stringify(noSerial)), 'a non-URN serial must fail the schema');
  assert.is(bom.specVersion, '1.5');
  assert.match(bom.serialNumber, /^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.is(bom.metadata.timestamp, new Date(Number(EPOCH) * 1000).toISOString().replace('.000', ''));
});

test('the SBOM lists exactly what rpm -qa lists in the image, with the RPM files\' sha256, licenses and purls', () => {
  const tree = rootTree(join(out, 'prov.raw'), work);
  const qa = rpmQa(tree);
  const repo = repoRpms();
  assert.ok(qa.length >= 4, `rpm -qa found ${qa.length} packages`);
  const nevraOf = (c: CdxComponent) => c.properties.find((p) => p.name === 'ingot:rpm:nevra')!.value;
  assert.equal(bom.components.map(nevraOf).sort(), qa.map((q) => q.nevra).sort());
  // os-release of the image names the purl namespace and distro (read by rpm's view of the tree: the file itself).
  const osRelease = readFileSync(join(tree, 'etc/os-release'), 'utf8');
  const id = /^ID="?([^"\n]*)"?$/m.exec(osRelease)![1]!;
  const versionId = /^VERSION_ID="?([^"\n]*)"?$/m.exec(osRelease)?.[1];
  for (const q of qa) {
    const c = bom.components.find((x) => nevraOf(x) === q.nevra)!;
    const file = repo.get(q.nevra);
    assert.ok(file, `${q.nevra} is in the repository`);
    assert.is(c.name, q.name);
    assert.is(c.version, `${q.epoch ? `${q.epoch}:` : ''}${q.version}-${q.release}`);
    assert.equal(c.hashes, [{ alg: 'SHA-256', content: file!.sha256 }]);
    const lic = c.licenses![0]!;
    assert.is('expression' in lic ? lic.expression : lic.license.name, q.license);
    if (q.license === 'MIT') assert.ok('expression' in lic, 'an SPDX license tag is an expression');
    if (q.license.startsWith('see ')) assert.ok(!('expression' in lic), 'a free-text license tag is a name');
    assert.is(c.properties.find((p) => p.name === 'ingot:rpm:sourcerpm')?.value, q.sourcerpm);
    assert.is(c.properties.find((p) => p.name === 'ingot:rpm:repository')?.value, 'fixtures');
    const purl = PackageURL.fromString(c.purl);
    assert.is(c['bom-ref'], c.purl);
    assert.is(purl.type, 'rpm');
    assert.is(purl.namespace, id.toLowerCase());
    assert.is(purl.name, q.name);
    assert.is(purl.version, `${q.version}-${q.release}`);
    assert.is(purl.qualifiers?.arch, q.arch);
    assert.is(purl.qualifiers?.epoch, q.epoch ? String(q.epoch) : undefined);
    assert.is(purl.qualifiers?.distro, versionId ? `${id}-${versionId}` : id);
  }
  // The image contains every package: one dependency entry from the image to all of them.
  const img = bom.metadata.component['bom-ref'];
  assert.equal(bom.dependencies, [{ ref: img, dependsOn: bom.components.map((c) => c['bom-ref']) }]);
});

test('the manifest gives NEVRA, sha256, source RPM, license and repo as rpm and sha256sum read them', () => {
  const manifest = JSON.parse(readFileSync(join(out, 'prov.manifest.json'), 'utf8')) as { nevra: string; sha256: string; sourcerpm: string; license: string; repo: string }[];
  const repo = repoRpms();
  const qa = rpmQa(join(work, readdirSync(work).find((d) => d.startsWith('tree'))!));
  assert.equal(manifest.map((m) => m.nevra).sort(), qa.map((q) => q.nevra).sort());
  for (const m of manifest) {
    const f = repo.get(m.nevra)!;
    assert.equal([m.sha256, m.sourcerpm, m.license, m.repo], [f.sha256, f.sourcerpm, f.license, 'fixtures']);
  }
});

test('CHECKSUM covers every image the build wrote and sha256sum -c accepts it', () => {
  const sums = readFileSync(join(out, 'CHECKSUM'), 'utf8');
  const listed = [...sums.matchAll(/^SHA256 \((.*)\) = [0-9a-f]{64}$/gm)].map((m) => m[1]);
  assert.equal(listed.sort(), ['prov.qcow2', 'prov.raw']);
  const c = spawnSync('sha256sum', ['-c', 'CHECKSUM'], { cwd: out, encoding: 'utf8' });
  assert.is(c.status, 0, c.stdout + c.stderr);
  assert.match(c.stdout, /prov\.raw: OK/);
  assert.match(c.stdout, /prov\.qcow2: OK/);
  // And it can fail: a flipped byte in an image is reported.
  execFileSync('sh', ['-c', `printf 'X' | dd of=${join(out, 'prov.raw')} bs=1 seek=100 conv=notrunc status=none`]);
  const bad = spawnSync('sha256sum', ['-c', 'CHECKSUM'], { cwd: out, encoding: 'utf8' });
  assert.is.not(bad.status, 0);
  assert.match(bad.stdout, /prov\.raw: FAILED/);
});

test('a spec without os-release still gets purls namespaced by repository', async () => {
  const { cyclonedxBom } = await import('../src/provenance/cyclonedx.js');
  const doc = cyclonedxBom({
    name: 'x', arch: 'x86_64', seed: 's', sourceDateEpoch: 0, tool: { name: 'ingot', version: '0' },
    packages: [{ nevra: 'a-1:2-3.noarch', name: 'a', epoch: 1, version: '2+git', release: '3', arch: 'noarch', repo: 'Updates', sha256: 'ab'.repeat(32), license: 'GPLv2+', sourcerpm: null, url: 'not a url', vendor: 'Fedora Project' }],
  }) as unknown as Cdx & { components: (CdxComponent & { supplier?: { name: string }; externalReferences?: unknown })[] };
  const c = doc.components[0]!;
  const p = PackageURL.fromString(c.purl);
  assert.equal([p.namespace, p.name, p.version, p.qualifiers?.epoch, p.qualifiers?.distro], ['updates', 'a', '2+git-3', '1', undefined]);
  assert.equal(c.licenses, [{ license: { name: 'GPLv2+' } }]);
  assert.equal(c.supplier, { name: 'Fedora Project' });
  assert.is(c.externalReferences, undefined);
  assert.is(await new Validation.JsonStrictValidator(Spec.Version.v1dot5).validate(JSON.stringify(doc)), null);
});

test('os-release is read as the shell reads it, through the /etc → /usr/lib symlink', async () => {
  const { readOsRelease, parseOsRelease } = await import('../src/provenance/os-release.js');
  const { StagingTree, BufferContent } = await import('../src/tree/tree.js');
  const text = [
    '# comment', 'NAME="Fedora Linux"', 'ID=fedora', "VERSION_ID='40'", 'PRETTY_NAME="Fedora \\"Forty\\" \\$x"',
    '  ID_LIKE="rhel centos"', 'EMPTY=', 'CPE_NAME="cpe:/o:fedoraproject:fedora:40"', '',
  ].join('\n');
  const file = join(work, 'os-release');
  writeFileSync(file, text);
  const keys = ['NAME', 'ID', 'VERSION_ID', 'PRETTY_NAME', 'ID_LIKE', 'EMPTY', 'CPE_NAME'];
  // The reference reader: os-release(5) files are shell-compatible variable assignments.
  const sh = execFileSync('sh', ['-c', `. "$1"; for k in ${keys.join(' ')}; do eval "printf '%s\\0' \\"\\$$k\\""; done`, 'sh', file], { encoding: 'utf8' }).split('\0').slice(0, -1);
  const ours = parseOsRelease(text);
  assert.equal(keys.map((k) => ours[k] ?? ''), sh);
  const tree = new StagingTree();
  tree.mkdirp('/usr/lib');
  tree.mkdirp('/etc');
  tree.addFile('/usr/lib/os-release', BufferContent.of(text));
  tree.symlink('/etc/os-release', '../usr/lib/os-release');
  assert.equal(await readOsRelease(tree), { id: 'fedora', versionId: '40', name: 'Fedora Linux' });
  assert.is(await readOsRelease(new StagingTree()), undefined);
});

test.after(() => rmSync(work, { recursive: true, force: true }));
test.run();
