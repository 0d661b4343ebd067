/**
 * Package integrity and trust, as `rpm -K` checks them: header digests
 * (SHA1 269, SHA256 273, SHA3-256 279 over the main header), the payload
 * digest (PAYLOADDIGEST 5092 over the compressed payload), the legacy MD5
 * (1004, over main header + payload), and OpenPGP signatures — header-only
 * (RSA 268, DSA 267, and each signature of OPENPGP 278) and header+payload
 * (PGP 1002, GPG 1005) — verified with openpgp.js against armored keys.
 */
import { createHash, createPublicKey, createVerify, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type * as openpgp from 'openpgp';
import { openRpm, type RpmPackage } from './reader.js';
import { RpmIntegrityError } from './errors.js';
import { HashAlgo, SigTag, Tag, TagType } from './tags.js';

/** openpgp.js is loaded on first use: every process that only reads or extracts packages would otherwise pay ~60 ms to load it. */
let openpgpLib: typeof openpgp | undefined;
const pgp = async (): Promise<typeof openpgp> => (openpgpLib ??= await import('openpgp'));

export type CheckStatus = 'ok' | 'bad' | 'nokey' | 'nottrusted' | 'unsupported';

export interface DigestCheck {
  kind: 'digest';
  /** e.g. "Header SHA256 digest", "Payload SHA256 digest", "MD5 digest" (rpm -K wording). */
  name: string;
  tag: number;
  status: 'ok' | 'bad';
  expected: string;
  actual: string;
}

export interface SignatureInfo {
  tag: number;
  /** Signature packet version (3, 4 or 6). */
  version: number;
  /** Issuer key id, 16 hex digits (lower case); '' when the packet names none. */
  keyId: string;
  /** Issuer fingerprint (v4: 40 hex, v6: 64 hex) when the packet has one. */
  fingerprint: string;
  /** rpm's wording: "RSA/SHA256", "EdDSA/SHA512", "DSA/SHA1", "ECDSA/SHA256", … */
  algorithm: string;
  /** Signature creation time (seconds). */
  created: number;
  /** What it signs. */
  covers: 'header' | 'header+payload';
}

export interface SignatureCheck extends SignatureInfo {
  kind: 'signature';
  name: string;
  status: CheckStatus;
  /** Why it failed, or which key verified it. */
  detail: string;
}

export interface VerifyReport {
  file: string;
  digests: DigestCheck[];
  signatures: SignatureCheck[];
  /** Keys that could not be read (unsupported algorithms). */
  keyErrors: string[];
  /** Digests all OK, and — when keys were given — every signature verified (and one present, if required). */
  ok: boolean;
}

export interface VerifyOptions {
  /** Armored (or binary) OpenPGP public keys / keyrings. */
  keys?: (string | Uint8Array)[];
  /** Require a verified signature (default: when keys are given). */
  requireSignature?: boolean;
}

const PK_NAMES: Record<string, string> = {
  rsaEncryptSign: 'RSA', rsaSign: 'RSA', rsaEncrypt: 'RSA', dsa: 'DSA', ecdsa: 'ECDSA',
  eddsaLegacy: 'EdDSA', ed25519: 'EdDSA', ed448: 'EdDSA', elgamal: 'ELGAMAL',
};

const EXTRA_PK: Record<number, string> = { 27: 'Ed25519', 28: 'Ed448', 30: 'ML-DSA-65+Ed25519', 31: 'ML-DSA-87+Ed448', 107: 'ML-DSA-65+Ed25519', 108: 'ML-DSA-87+Ed448' };

function algoName(pg: typeof openpgp, pk: number, hash: number): string {
  if (EXTRA_PK[pk] && pk >= 30) {
    let h: string;
    try { h = (pg.enums.read(pg.enums.hash, hash) as string).toUpperCase(); } catch { h = `HASH${hash}`; }
    return `${EXTRA_PK[pk]}/${h}`;
  }
  let p: string;
  try { p = pg.enums.read(pg.enums.publicKey, pk) as string; } catch { p = `PK${pk}`; }
  let h: string;
  try { h = (pg.enums.read(pg.enums.hash, hash) as string).toUpperCase(); } catch { h = `HASH${hash}`; }
  return `${PK_NAMES[p] ?? p}/${h}`;
}

/** rpm 4.18 accepts SHA-1 signatures and short RSA keys of old distributions; so do we, for the same packages. */
const PGP_CONFIG = {
  minRSABits: 1024,
  rejectHashAlgorithms: new Set<openpgp.enums.hash>(),
  rejectMessageHashAlgorithms: new Set<openpgp.enums.hash>(),
  rejectPublicKeyAlgorithms: new Set<openpgp.enums.publicKey>(),
  rejectCurves: new Set<openpgp.enums.curve>(),
} as unknown as openpgp.PartialConfig;

interface RawSignature { tag: number; name: string; bytes: Uint8Array; covers: 'header' | 'header+payload' }

function rawSignatures(pkg: RpmPackage): RawSignature[] {
  const s = pkg.signature;
  const out: RawSignature[] = [];
  const bin = (tag: number, name: string, covers: RawSignature['covers']) => {
    const b = s.get(tag);
    if (b instanceof Uint8Array) out.push({ tag, name, bytes: b, covers });
  };
  bin(SigTag.RSA, 'Header RSA signature', 'header');
  bin(SigTag.DSA, 'Header DSA signature', 'header');
  const e = s.entry(SigTag.OPENPGP);
  if (e && (e.type === TagType.STRING_ARRAY || e.type === TagType.STRING)) {
    s.strings(SigTag.OPENPGP).forEach((b64, i) => out.push({ tag: SigTag.OPENPGP, name: `OpenPGP signature ${i + 1}`, bytes: Buffer.from(b64, 'base64'), covers: 'header' }));
  }
  bin(SigTag.PGP, 'PGP signature', 'header+payload');
  bin(SigTag.GPG, 'GPG signature', 'header+payload');
  return out;
}

/** A v3 signature packet (RFC 4880 §5.2.2), which openpgp.js 6 no longer parses. */
export interface V3Signature { sigType: number; created: number; keyId: string; pkAlgo: number; hashAlgo: number; left16: Uint8Array; mpis: Uint8Array[] }

export function parseV3Signature(b: Uint8Array): V3Signature | null {
  const pb = packetBody(b);
  if (!pb || pb.tag !== 2 || pb.body[0] !== 3 || pb.body[1] !== 5 || pb.body.length < 19) return null;
  const body = pb.body;
  const dv = Buffer.from(body);
  const out: V3Signature = {
    sigType: body[2]!, created: dv.readUInt32BE(3), keyId: dv.subarray(7, 15).toString('hex'),
    pkAlgo: body[15]!, hashAlgo: body[16]!, left16: body.subarray(17, 19), mpis: [],
  };
  let q = 19;
  while (q + 2 <= body.length) {
    const bits = (body[q]! << 8) | body[q + 1]!;
    const n = (bits + 7) >> 3;
    if (q + 2 + n > body.length) return null;
    out.mpis.push(body.subarray(q + 2, q + 2 + n));
    q += 2 + n;
  }
  return out;
}

/** Verify a v3 RSA signature with Node's crypto (PKCS#1 v1.5 over data ‖ sigtype ‖ created, RFC 4880 §5.2.4). */
async function verifyV3(pkg: RpmPackage, raw: RawSignature, v3: V3Signature, keys: openpgp.PublicKey[]): Promise<{ status: CheckStatus; detail: string }> {
  if (v3.pkAlgo !== 1 && v3.pkAlgo !== 3) return { status: 'unsupported', detail: `v3 signature with public-key algorithm ${v3.pkAlgo}` };
  const hash = HashAlgo[v3.hashAlgo];
  if (!hash) return { status: 'unsupported', detail: `hash algorithm ${v3.hashAlgo}` };
  for (const k of keys) {
    for (const sk of k.getKeys()) {
      if (sk.getKeyID().toHex() !== v3.keyId) continue;
      const params = (sk as unknown as { keyPacket: { publicParams: { n?: Uint8Array; e?: Uint8Array } } }).keyPacket.publicParams;
      if (!params.n || !params.e) return { status: 'unsupported', detail: 'key is not RSA' };
      const key = createPublicKey({ key: { kty: 'RSA', n: Buffer.from(params.n).toString('base64url'), e: Buffer.from(params.e).toString('base64url') }, format: 'jwk' });
      const v = createVerify(hash.node);
      const data = signedData(pkg, raw.covers);
      if (data instanceof Uint8Array) v.update(data);
      else for await (const c of data as unknown as AsyncIterable<Uint8Array>) v.update(c);
      const trailer = Buffer.alloc(5);
      trailer[0] = v3.sigType;
      trailer.writeUInt32BE(v3.created, 1);
      v.update(trailer);
      const ok = v.verify(key, Buffer.from(v3.mpis[0] ?? new Uint8Array()));
      return ok ? { status: 'ok', detail: `verified with key ${v3.keyId}` } : { status: 'bad', detail: 'v3 signature does not match' };
    }
  }
  return { status: 'nokey', detail: `no key ${v3.keyId} in the keyring` };
}

/** Packet header (RFC 9580 §4.2): tag and body, or null. */
function packetBody(b: Uint8Array): { tag: number; body: Uint8Array } | null {
  let p = 0;
  const t = b[p++];
  if (t === undefined || !(t & 0x80)) return null;
  let tag: number;
  let len: number;
  if (t & 0x40) {
    tag = t & 0x3f;
    const l0 = b[p++]!;
    if (l0 < 192) len = l0;
    else if (l0 < 224) len = ((l0 - 192) << 8) + b[p++]! + 192;
    else if (l0 === 255) { len = Buffer.from(b.subarray(p, p + 4)).readUInt32BE(0); p += 4; } else return null;
  } else {
    tag = (t >> 2) & 0xf;
    const lt = t & 3;
    if (lt === 0) len = b[p++]!;
    else if (lt === 1) { len = (b[p]! << 8) | b[p + 1]!; p += 2; } else if (lt === 2) { len = Buffer.from(b.subarray(p, p + 4)).readUInt32BE(0); p += 4; } else len = b.length - p;
  }
  if (p + len > b.length) return null;
  return { tag, body: b.subarray(p, p + len) };
}

/**
 * Fields of a v4/v6 signature packet openpgp.js could not load (an algorithm it
 * does not implement, e.g. ML-DSA): version, algorithms, issuer (RFC 9580 §5.2.3).
 */
function sketchSignature(b: Uint8Array): { version: number; pkAlgo: number; hashAlgo: number; keyId: string; fingerprint: string; created: number } | null {
  const pb = packetBody(b);
  if (!pb || pb.tag !== 2) return null;
  const body = Buffer.from(pb.body);
  const version = body[0];
  if (version !== 4 && version !== 6) return null;
  const lenSize = version === 6 ? 4 : 2;
  let keyId = '';
  let fingerprint = '';
  let created = 0;
  let p = 4;
  for (let area = 0; area < 2 && p + lenSize <= body.length; area++) {
    const n = lenSize === 4 ? body.readUInt32BE(p) : body.readUInt16BE(p);
    p += lenSize;
    const end = Math.min(body.length, p + n);
    while (p < end) {
      let l = body[p++]!;
      if (l >= 192 && l < 255) { l = ((l - 192) << 8) + body[p++]! + 192; } else if (l === 255) { l = body.readUInt32BE(p); p += 4; }
      const type = body[p]! & 0x7f;
      const data = body.subarray(p + 1, p + l);
      if (type === 2 && data.length === 4) created = data.readUInt32BE(0);
      if (type === 16) keyId = data.toString('hex');
      if (type === 33) fingerprint = data.subarray(1).toString('hex');
      p += l;
    }
    p = end;
  }
  if (!keyId && fingerprint) keyId = version === 6 ? fingerprint.slice(0, 16) : fingerprint.slice(-16);
  return { version, pkAlgo: body[2]!, hashAlgo: body[3]!, keyId, fingerprint, created };
}

async function describe(raw: RawSignature): Promise<{ info: SignatureInfo; sig: openpgp.Signature | null; v3?: V3Signature; error?: string }> {
  const pg = await pgp();
  const base: SignatureInfo = { tag: raw.tag, version: 0, keyId: '', fingerprint: '', algorithm: 'unknown', created: 0, covers: raw.covers };
  const v3 = parseV3Signature(raw.bytes);
  if (v3) {
    return { info: { ...base, version: 3, keyId: v3.keyId, algorithm: algoName(pg, v3.pkAlgo, v3.hashAlgo), created: v3.created }, sig: null, v3 };
  }
  try {
    const sig = await pg.readSignature({ binarySignature: raw.bytes, config: PGP_CONFIG });
    if (sig.packets.length === 0 || typeof (sig.packets[0] as { version?: number }).version !== 'number') throw new Error('unparseable signature packet');
    const p = sig.packets[0] as unknown as {
      version: number; publicKeyAlgorithm: number; hashAlgorithm: number; created: Date | null;
      issuerKeyID: { toHex(): string; isNull(): boolean }; issuerFingerprint: Uint8Array | null;
    };
    const fp = p.issuerFingerprint ? Buffer.from(p.issuerFingerprint).toString('hex') : '';
    let keyId = p.issuerKeyID && !p.issuerKeyID.isNull() ? p.issuerKeyID.toHex() : '';
    if (!keyId && fp) keyId = p.version === 6 ? fp.slice(0, 16) : fp.slice(-16);
    return {
      info: { ...base, version: p.version, keyId, fingerprint: fp, algorithm: algoName(pg, p.publicKeyAlgorithm, p.hashAlgorithm), created: p.created ? Math.floor(p.created.getTime() / 1000) : 0 },
      sig,
    };
  } catch (e) {
    const sk = sketchSignature(raw.bytes);
    const error = e instanceof Error ? e.message : String(e);
    // Only an algorithm openpgp.js does not implement makes a well-formed packet "unsupported"; anything else is broken.
    let known = true;
    try { pg.enums.read(pg.enums.publicKey, sk?.pkAlgo ?? 1); } catch { known = false; }
    if (sk && !known) {
      return {
        info: { ...base, version: sk.version, keyId: sk.keyId, fingerprint: sk.fingerprint, algorithm: algoName(pg, sk.pkAlgo, sk.hashAlgo), created: sk.created },
        sig: null, error: `unsupported: ${error}`,
      };
    }
    return { info: base, sig: null, error };
  }
}

/** The OpenPGP signatures a package carries (no verification): key id and algorithm of each. */
export async function packageSignatures(pkg: RpmPackage): Promise<SignatureInfo[]> {
  const out: SignatureInfo[] = [];
  for (const raw of rawSignatures(pkg)) out.push((await describe(raw)).info);
  return out;
}

function signedData(pkg: RpmPackage, covers: RawSignature['covers']): Uint8Array | ReadableStream<Uint8Array> {
  if (covers === 'header') return pkg.header.raw;
  return Readable.toWeb(createReadStream(pkg.file, { start: pkg.layout.headerOffset, highWaterMark: 1 << 20 })) as unknown as ReadableStream<Uint8Array>;
}

async function checkSignature(pkg: RpmPackage, raw: RawSignature, keys: openpgp.PublicKey[]): Promise<SignatureCheck> {
  const pg = await pgp();
  const { info, sig, v3, error } = await describe(raw);
  const out = (status: CheckStatus, detail: string): SignatureCheck => ({ kind: 'signature', name: raw.name, ...info, status, detail });
  if (v3) { const r = await verifyV3(pkg, raw, v3, keys); return out(r.status, r.detail); }
  if (!sig) {
    return error?.startsWith('unsupported: ')
      ? out('unsupported', `public-key algorithm not implemented by openpgp.js (${info.algorithm})`)
      : out('bad', `not an OpenPGP signature: ${error}`);
  }
  const ids = new Set(sig.getSigningKeyIDs().map((k) => k.toHex()));
  const candidates = keys.filter((k) => k.getKeys().some((sk) => ids.has(sk.getKeyID().toHex()) || (info.fingerprint && sk.getFingerprint() === info.fingerprint)));
  if (candidates.length === 0) return out('nokey', `no key ${info.keyId} in the keyring`);
  try {
    const message = await pg.createMessage({ binary: signedData(pkg, raw.covers) });
    const res = await pg.verify({ message, signature: sig, verificationKeys: candidates, format: 'binary', config: PGP_CONFIG });
    // Streamed messages verify only once their data has been read.
    const data = res.data as unknown;
    if (data && typeof (data as ReadableStream).getReader === 'function') {
      const reader = (data as ReadableStream<Uint8Array>).getReader();
      while (!(await reader.read()).done) { /* drain */ }
    }
    for (const s of res.signatures) {
      try {
        await s.verified;
        return out('ok', `verified with key ${s.keyID.toHex()}`);
      } catch (e) {
        const m = e instanceof Error ? e.message : String(e);
        if (/revoked|expired|binding|not valid|signing key|Could not find valid/i.test(m) && !/Signed digest did not match|verification failed/i.test(m)) return out('nottrusted', m);
        if (/unsupported|not supported|Unknown|not implemented/i.test(m)) return out('unsupported', m);
        return out('bad', m);
      }
    }
    return out('nokey', 'no signature matched the keyring');
  } catch (e) {
    const m = e instanceof Error ? e.message : String(e);
    return out(/unsupported|not supported|Unknown/i.test(m) ? 'unsupported' : 'bad', m);
  }
}

async function hashFileRange(file: string, start: number, algos: string[]): Promise<string[]> {
  const hs: Hash[] = algos.map((a) => createHash(a));
  for await (const c of createReadStream(file, { start, highWaterMark: 1 << 20 })) for (const h of hs) h.update(c as Buffer);
  return hs.map((h) => h.digest('hex'));
}

/** Parse keys; a source openpgp.js cannot read (e.g. ML-DSA keys) is reported in `errors`, not thrown. */
export async function readKeys(sources: (string | Uint8Array)[]): Promise<{ keys: openpgp.PublicKey[]; errors: string[] }> {
  const pg = await pgp();
  const keys: openpgp.PublicKey[] = [];
  const errors: string[] = [];
  for (const [i, src] of sources.entries()) {
    const text = typeof src === 'string' ? src : Buffer.from(src).toString('latin1');
    try {
      const got = text.includes('-----BEGIN PGP')
        ? await pg.readKeys({ armoredKeys: text, config: PGP_CONFIG })
        : await pg.readKeys({ binaryKeys: typeof src === 'string' ? Buffer.from(src, 'latin1') : src, config: PGP_CONFIG });
      for (const k of got) keys.push(k.toPublic());
    } catch (e) {
      errors.push(`key ${i + 1}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  return { keys, errors };
}

/** Check digests and signatures of an opened package. */
export async function verifyPackage(pkg: RpmPackage, opts: VerifyOptions = {}): Promise<VerifyReport> {
  const s = pkg.signature;
  const h = pkg.header;
  const digests: DigestCheck[] = [];
  const add = (name: string, tag: number, expected: string, actual: string) =>
    digests.push({ kind: 'digest', name, tag, status: expected.toLowerCase() === actual ? 'ok' : 'bad', expected: expected.toLowerCase(), actual });
  const headerHash = (a: string) => createHash(a).update(h.raw).digest('hex');
  if (s.has(SigTag.SHA3_256)) add('Header SHA3-256 digest', SigTag.SHA3_256, s.string(SigTag.SHA3_256) ?? '', headerHash('sha3-256'));
  if (s.has(SigTag.SHA256)) add('Header SHA256 digest', SigTag.SHA256, s.string(SigTag.SHA256) ?? '', headerHash('sha256'));
  if (s.has(SigTag.SHA1)) add('Header SHA1 digest', SigTag.SHA1, s.string(SigTag.SHA1) ?? '', headerHash('sha1'));
  // One pass over header+payload serves MD5 and the payload digest.
  const md5 = s.bytes(SigTag.MD5);
  const pdAlgoId = h.number(Tag.PAYLOADDIGESTALGO) ?? 8;
  const pdAlgo = HashAlgo[pdAlgoId];
  const pd = h.has(Tag.PAYLOADDIGEST) ? h.string(Tag.PAYLOADDIGEST) ?? '' : null;
  if (pd !== null) {
    const [actual] = pdAlgo ? await hashFileRange(pkg.file, pkg.layout.payloadOffset, [pdAlgo.node]) : ['unsupported'];
    add(`Payload ${pdAlgo?.name.toUpperCase() ?? `algo ${pdAlgoId}`} digest`, Tag.PAYLOADDIGEST, pd, actual!);
  }
  if (md5) {
    const [actual] = await hashFileRange(pkg.file, pkg.layout.headerOffset, ['md5']);
    add('MD5 digest', SigTag.MD5, Buffer.from(md5).toString('hex'), actual!);
  }
  const { keys, errors: keyErrors } = await readKeys(opts.keys ?? []);
  const signatures: SignatureCheck[] = [];
  for (const raw of rawSignatures(pkg)) signatures.push(await checkSignature(pkg, raw, keys));
  const requireSig = opts.requireSignature ?? false;
  const checkSigs = requireSig || (opts.keys !== undefined && opts.keys.length > 0);
  const digestsOk = digests.every((d) => d.status === 'ok');
  // As rpm -K: with keys, every signature must verify (one the library cannot judge is tolerated when another verified).
  const anyOk = signatures.some((x) => x.status === 'ok');
  const sigsOk = !checkSigs ||
    (signatures.length === 0 ? !requireSig : anyOk && signatures.every((x) => x.status === 'ok' || x.status === 'unsupported'));
  return { file: pkg.file, digests, signatures, keyErrors, ok: digestsOk && sigsOk };
}

/** Open a package and check its digests and signatures against armored key files. */
export async function verifyRpm(file: string, opts: { keyFiles?: string[]; keys?: (string | Uint8Array)[]; requireSignature?: boolean } = {}): Promise<VerifyReport> {
  const keys = [...(opts.keys ?? [])];
  const names = [...(opts.keys ?? []).map((_, i) => `key ${i + 1}`), ...(opts.keyFiles ?? [])];
  for (const k of opts.keyFiles ?? []) keys.push(await readFile(k));
  const pkg = await openRpm(file);
  const rep = await verifyPackage(pkg, { keys, requireSignature: opts.requireSignature });
  rep.keyErrors = rep.keyErrors.map((m) => m.replace(/^key (\d+)/, (_, n: string) => names[Number(n) - 1] ?? `key ${n}`));
  return rep;
}

/** Throw RpmIntegrityError naming every failed check of a report (for stages that require a verified package). */
export function assertVerified(rep: VerifyReport): void {
  if (rep.ok) return;
  const bad = [
    ...rep.digests.filter((d) => d.status !== 'ok').map((d) => `${d.name} ${d.status.toUpperCase()}`),
    ...rep.signatures.filter((s) => s.status !== 'ok').map((s) => `${s.name} (key ${s.keyId || '?'}) ${s.status.toUpperCase()}`),
  ];
  throw new RpmIntegrityError('VERIFY', `package failed verification: ${bad.join('; ') || 'no verified signature'}`, { file: rep.file });
}
