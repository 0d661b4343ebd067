/**
 * SHA-512 crypt ("$6$"), from Ulrich Drepper's specification "Unix crypt
 * using SHA-256 and SHA-512" (the algorithm glibc's crypt(3) implements),
 * built on node:crypto's SHA-512. Numbered steps refer to that document.
 */
import { createHash } from 'node:crypto';
import { IngotError } from '../errors.js';

export class CryptError extends IngotError {}

export const ROUNDS_DEFAULT = 5000;
export const ROUNDS_MIN = 1000;
export const ROUNDS_MAX = 999_999_999;
const SALT_MAX = 16;
const B64 = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** The spec's final permutation of the 64 digest bytes into 22 groups of 3. */
const PERMUTATION: readonly [number, number, number][] = [
  [0, 21, 42], [22, 43, 1], [44, 2, 23], [3, 24, 45], [25, 46, 4], [47, 5, 26], [6, 27, 48], [28, 49, 7],
  [50, 8, 29], [9, 30, 51], [31, 52, 10], [53, 11, 32], [12, 33, 54], [34, 55, 13], [56, 14, 35],
  [15, 36, 57], [37, 58, 16], [59, 17, 38], [18, 39, 60], [40, 61, 19], [62, 20, 41],
];

const sha512 = (...parts: Buffer[]): Buffer => {
  const h = createHash('sha512');
  for (const p of parts) h.update(p);
  return h.digest();
};

/** `len` bytes of `block` repeated (steps 16 and 20: the P and S sequences). */
function repeatTo(block: Buffer, len: number): Buffer {
  const out = Buffer.alloc(len);
  for (let i = 0; i < len; i += block.length) block.copy(out, i, 0, Math.min(block.length, len - i));
  return out;
}

function b64(w: number, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) { s += B64[w & 0x3f]; w >>>= 6; }
  return s;
}

export interface Sha512CryptOptions {
  /** Rounds; when given (even 5000) the result carries `rounds=N$` as glibc writes it. Clamped to [1000, 999999999]. */
  rounds?: number;
}

/** crypt(3) with a `$6$` setting: `sha512Crypt('pw', 'salt')` → `$6$salt$…`. */
export function sha512Crypt(password: string | Buffer, salt: string, opts: Sha512CryptOptions = {}): string {
  const P = typeof password === 'string' ? Buffer.from(password, 'utf8') : password;
  const saltStr = salt.slice(0, SALT_MAX);
  if (/[$:\n]/.test(saltStr)) throw new CryptError('CRYPT_BAD_SALT', 'salt may not contain $, : or newline', { actual: JSON.stringify(saltStr) });
  const S = Buffer.from(saltStr, 'utf8');
  const custom = opts.rounds !== undefined;
  const rounds = Math.min(ROUNDS_MAX, Math.max(ROUNDS_MIN, Math.floor(opts.rounds ?? ROUNDS_DEFAULT)));

  // Steps 4–8: digest B = H(P S P).
  const B = sha512(P, S, P);
  // Steps 1–3, 9–12: digest A.
  const a = createHash('sha512');
  a.update(P); a.update(S);
  let n = P.length;
  for (; n > 64; n -= 64) a.update(B);
  a.update(B.subarray(0, n));
  for (let len = P.length; len > 0; len >>>= 1) a.update(len & 1 ? B : P);
  let A = a.digest();
  // Steps 13–16: the P sequence from DP = H(P × |P|).
  const dp = createHash('sha512');
  for (let i = 0; i < P.length; i++) dp.update(P);
  const Pseq = repeatTo(dp.digest(), P.length);
  // Steps 17–20: the S sequence from DS = H(S × (16 + A[0])).
  const ds = createHash('sha512');
  for (let i = 0; i < 16 + A[0]!; i++) ds.update(S);
  const Sseq = repeatTo(ds.digest(), S.length);
  // Step 21: the rounds.
  for (let i = 0; i < rounds; i++) {
    const c = createHash('sha512');
    c.update(i & 1 ? Pseq : A);
    if (i % 3) c.update(Sseq);
    if (i % 7) c.update(Pseq);
    c.update(i & 1 ? A : Pseq);
    A = c.digest();
  }
  // Step 22: output.
  let out = '';
  for (const [x, y, z] of PERMUTATION) out += b64((A[x]! << 16) | (A[y]! << 8) | A[z]!, 4);
  out += b64(A[63]!, 2);
  return `$6$${custom ? `rounds=${rounds}$` : ''}${saltStr}$${out}`;
}

/** Parse a `$6$[rounds=N$]salt[$hash]` setting and hash `password` with it. */
export function cryptWithSetting(password: string, setting: string): string {
  const m = /^\$6\$(?:rounds=(\d+)\$)?([^$]*)/.exec(setting);
  if (!m) throw new CryptError('CRYPT_BAD_SETTING', 'only SHA-512 ($6$) settings are supported', { actual: setting.slice(0, 20) });
  return sha512Crypt(password, m[2]!, m[1] !== undefined ? { rounds: Number(m[1]) } : {});
}

/** Check a password against a `$6$` hash (constant-time compare of the results). */
export function verifySha512Crypt(password: string, hash: string): boolean {
  const again = Buffer.from(cryptWithSetting(password, hash));
  const h = Buffer.from(hash);
  return again.length === h.length && again.equals(h);
}

/**
 * A 16-character salt derived from `seed` and `context` (e.g. the user name):
 * deterministic, so the same image definition gives the same /etc/shadow.
 */
export function deriveSalt(seed: string, context: string): string {
  const d = sha512(Buffer.from('ingot-salt\0'), Buffer.from(seed), Buffer.from('\0'), Buffer.from(context));
  let s = '';
  for (let i = 0; i < SALT_MAX; i++) s += B64[d[i]! & 0x3f];
  return s;
}

/** A 16-character salt from the system's CSPRNG (for callers that ask for randomness). */
export function randomSalt(bytes: (n: number) => Buffer): string {
  return [...bytes(SALT_MAX)].map((b) => B64[b & 0x3f]).join('');
}
