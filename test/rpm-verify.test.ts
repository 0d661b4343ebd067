/**
 * Integrity and trust. Oracles: rpm 4.18's `rpm -Kv` (recorded per package in
 * MANIFEST.tsv, and run live on packages damaged here), and keys/KEYS.tsv for
 * what a current rpm reports where 4.18 cannot judge (v6 keys, RPMTAG_OPENPGP,
 * some subkey layouts).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openRpm, verifyRpm, assertVerified, RpmIntegrityError, Tag, type VerifyReport } from '../src/rpm/index.js';
import { keyRows, manifest, RPMS } from './helpers/rpm-oracle.js';
import { requireTool } from './helpers/tools.js';
import { ingot } from './helpers/cli.js';

const work = mkdtempSync(join(tmpdir(), 'ingot-rpm-verify-'));

/** "Header SHA256 digest: OK Header V4 RSA/SHA256 Signature, key ID 1964c5fc: BAD (…) …" → name → status. */
function parseRpmK(text: string): Map<string, string> {
  const out = new Map<string, string>();
  const re = /((?:Header )?(?:V\d \S+ Signature, key ID [0-9a-f]+|SHA1 digest|SHA256 digest|SHA3-256 digest|Payload SHA256 digest|Payload SHA256 ALT digest|MD5 digest|RSA signature|DSA signature)): (OK|BAD|NOKEY|NOTFOUND|NOTTRUSTED)/g;
  for (const m of text.matchAll(re)) out.set(m[1]!, m[2]!);
  return out;
}

/** Our digest checks in rpm's words (rpm 4.18 does not know SHA3-256, tag 279). */
function digestStatuses(rep: VerifyReport): Map<string, string> {
  const m = new Map<string, string>();
  for (const d of rep.digests) if (d.tag !== 279) m.set(d.name, d.status.toUpperCase());
  return m;
}

test('digests agree with rpm -Kv (MANIFEST) for every package rpm can read', async () => {
  let n = 0;
  const failures: string[] = [];
  for (const row of manifest()) {
    if (row.unparseable) continue;
    const rep = await verifyRpm(row.path);
    const theirs = parseRpmK(row.rpmK);
    const mine = digestStatuses(rep);
    for (const [name, status] of mine) {
      const t = theirs.get(name);
      if (t !== status) failures.push(`${row.file}: ${name} ingot ${status}, rpm ${t ?? 'not checked'}`);
    }
    for (const [name, status] of theirs) {
      if (/digest$/.test(name) && !/ALT/.test(name) && (status === 'OK' || status === 'BAD') && !mine.has(name)) {
        failures.push(`${row.file}: rpm checks ${name} (${status}), ingot does not`);
      }
    }
    n++;
  }
  console.log(`rpm verify: digests agree with rpm -Kv for ${n - new Set(failures.map((f) => f.split(':')[0])).size}/${n} packages`);
  assert.equal(failures, []);
});

test('signatures verify with the keys KEYS.tsv names, as a current rpm reports', async () => {
  const failures: string[] = [];
  let checked = 0;
  for (const k of keyRows()) {
    for (const item of k.verifies.split(/\s+(?![^()]*\))/).filter(Boolean)) {
      const m = /^([^()]+)(?:\((.*)\))?$/.exec(item)!;
      const file = m[1]!;
      const note = m[2] ?? '';
      const rep = await verifyRpm(join(RPMS, file), { keyFiles: [k.path] });
      const st = rep.signatures.map((s) => `${s.name}=${s.status}`).join(', ');
      let ok: boolean;
      if (/expected BAD/.test(note)) ok = !rep.ok && (rep.signatures.some((s) => s.status === 'bad') || rep.digests.some((d) => d.status === 'bad'));
      else if (/NOTTRUSTED/.test(note)) ok = !rep.ok && rep.signatures.some((s) => s.status === 'nottrusted');
      else if (/ML-DSA/.test(note) || /mldsa/.test(k.file)) {
        // openpgp.js 6 implements no ML-DSA: such signatures must be reported as unsupported, never as OK or BAD.
        ok = rep.signatures.some((s) => s.status === 'unsupported') && !rep.signatures.some((s) => s.status === 'bad');
      } else ok = rep.signatures.some((s) => s.status === 'ok');
      if (!ok) failures.push(`${file} with ${k.file} (${note || 'expected OK'}): ${st}; digests ${rep.digests.map((d) => `${d.name}=${d.status}`).join(', ')}`);
      checked++;
    }
  }
  console.log(`rpm verify: ${checked - failures.length}/${checked} KEYS.tsv package/key pairs as expected`);
  assert.equal(failures, []);
});

/** rpm -Kv with a fresh database holding `keys` (rpm 4.18 imports what it can). */
function rpmK(file: string, keys: string[]): Map<string, string> {
  requireTool('rpmkeys');
  const db = mkdtempSync(join(work, 'db-'));
  for (const k of keys) spawnSync('rpmkeys', ['--dbpath', db, '--import', k]);
  const r = spawnSync('rpm', ['--dbpath', db, '-Kv', file], { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' } });
  return parseRpmK(r.stdout + r.stderr);
}

const SIGNED = join(RPMS, 'rpm/hello-2.0-1.x86_64-signed.rpm');
const KEY = join(RPMS, 'keys/rpm/rpm.org-rsa-2048-test.pub');

async function flipped(where: 'header' | 'payload'): Promise<string> {
  const pkg = await openRpm(SIGNED);
  const buf = readFileSync(SIGNED);
  // A byte of the Summary text inside the main header, or one in the middle of the payload.
  const summary = pkg.header.entry(Tag.SUMMARY)!;
  const at = where === 'header'
    ? pkg.layout.headerOffset + 16 + pkg.header.entries.length * 16 + summary.offset + 1
    : pkg.layout.payloadOffset + Math.floor((buf.length - pkg.layout.payloadOffset) / 2);
  buf[at] = buf[at]! ^ 0x01;
  const out = join(work, `flipped-${where}.rpm`);
  writeFileSync(out, buf);
  return out;
}

for (const where of ['header', 'payload'] as const) {
  test(`a flipped byte in the ${where} is reported, as rpm -K reports it`, async () => {
    const file = await flipped(where);
    const rep = await verifyRpm(file, { keyFiles: [KEY] });
    assert.not.ok(rep.ok);
    const theirs = rpmK(file, [KEY]);
    for (const [name, status] of digestStatuses(rep)) assert.is(status, theirs.get(name), `${name}`);
    // Signatures: header-only ones (RSAHEADER) vs rpm's "Header V4 …", header+payload (SIGPGP) vs "V4 …".
    for (const s of rep.signatures) {
      const key = [...theirs.keys()].find((n) => n.includes(' Signature, ') && (s.covers === 'header') === n.startsWith('Header V'));
      assert.ok(key, `rpm reports the ${s.name}`);
      assert.is(s.status.toUpperCase(), theirs.get(key!), `${s.name} vs ${key}`);
    }
    try { assertVerified(rep); assert.unreachable('passed'); } catch (e) { assert.instance(e, RpmIntegrityError); assert.match(String(e), /BAD/); }
    const cli = ingot(['rpm', 'verify', file, '--keyring', KEY]);
    assert.is(cli.code, 1, cli.stdout + cli.stderr);
    assert.match(cli.stdout, /BAD/);
  });
}

test('a wrong key gives NOKEY and a failed verify; the right key passes (CLI exit codes)', () => {
  const wrong = join(RPMS, 'keys/rpm-rs/v4/rpm-testkey-v4-ed25519.asc');
  const bad = ingot(['rpm', 'verify', SIGNED, '--keyring', wrong]);
  assert.is(bad.code, 1, bad.stdout + bad.stderr);
  assert.match(bad.stdout, /NOKEY/);
  const theirs = rpmK(SIGNED, [wrong]);
  assert.ok([...theirs.values()].includes('NOKEY'), 'rpm agrees: NOKEY');
  const good = ingot(['rpm', 'verify', SIGNED, '--keyring', KEY]);
  assert.is(good.code, 0, good.stdout + good.stderr);
  assert.match(good.stdout, /key ID 4344591e1964c5fc: OK/);
});

test('a revoked signing subkey is reported as not trusted', async () => {
  const rep = await verifyRpm(join(RPMS, 'rpm/hello-2.0-1.x86_64-signed-revoked.rpm'), { keyFiles: [join(RPMS, 'keys/rpm/rpm.org-ed25519-subkey-2-test.pub')] });
  assert.not.ok(rep.ok);
  const s = rep.signatures.find((x) => x.keyId === 'dbf8808f7bab107a');
  assert.ok(s, 'signature by subkey dbf8808f7bab107a');
  assert.is(s!.status, 'nottrusted');
  assert.is(s!.algorithm, 'EdDSA/SHA512');
});

test('rpm 6 multi-signature tag: every signature reported with key id and algorithm', async () => {
  const rep = await verifyRpm(join(RPMS, 'rpm-rs/RPMS/v6/signed/rpm-basic-multiple-signatures-2.3.4-5.el9.noarch.rpm'), {
    keyFiles: [join(RPMS, 'keys/rpm-rs/v6/rpm-testkey-v6-ed25519.asc'), join(RPMS, 'keys/rpm-rs/v6/rpm-testkey-v6-rsa4k.asc')],
  });
  assert.equal(rep.signatures.map((s) => [s.tag, s.version, s.algorithm, s.keyId, s.status]), [
    [278, 6, 'EdDSA/SHA512', '715619ae2365d909', 'ok'],
    [278, 6, 'RSA/SHA512', '12e1f31e46105918', 'ok'],
  ]);
  assert.ok(rep.ok);
});

test.after(() => rmSync(work, { recursive: true, force: true }));
test.run();
