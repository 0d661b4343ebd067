/**
 * Long and short names (fatgen103 §7 "Long Directory Entries" and the
 * basis-name generation algorithm): which names need long-name entries,
 * the 8.3 alias with its ~N numeric tail, and the alias checksum.
 */
import { FatError } from './errors.js';
import { KANJI_E5, LFN_MAX_CHARS, NTRES_LOWER_BASE, NTRES_LOWER_EXT } from './structs.js';

/** Characters allowed in a short name besides A–Z and 0–9 (fatgen103 §6.1). */
const SHORT_SPECIALS = new Set("$%'-_@~`!(){}^#&");
/** Characters no FAT name may contain. */
const FORBIDDEN = /[\x00-\x1f"*/:<>?\\|\x7f]/;

const isShortChar = (c: string): boolean => /^[A-Z0-9]$/.test(c) || SHORT_SPECIALS.has(c);

/** The 8.3 alias checksum stored in every long-name entry (fatgen103 §7.2). */
export function shortNameChecksum(name11: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < 11; i++) sum = (((sum & 1) << 7) + (sum >> 1) + name11[i]!) & 0xff;
  return sum;
}

/** Throws unless `name` can be stored as a FAT long name. */
export function validateLongName(name: string, path: string): void {
  if (name.length === 0 || name === '.' || name === '..') throw new FatError('FAT_BAD_NAME', `invalid name ${JSON.stringify(name)}`, { file: path });
  if (FORBIDDEN.test(name)) throw new FatError('FAT_BAD_NAME', `name contains a character FAT forbids (" * / : < > ? \\ | or control)`, { file: path });
  if (/[. ]$/.test(name)) throw new FatError('FAT_BAD_NAME', 'FAT names cannot end with a period or space (they would be stripped)', { file: path });
  if (name.length > LFN_MAX_CHARS) throw new FatError('FAT_NAME_TOO_LONG', `name longer than ${LFN_MAX_CHARS} UTF-16 units`, { file: path });
}

export interface ShortName {
  /** The 11 bytes of the directory entry name (0xE5 lead stored as 0x05). */
  bytes: Uint8Array;
  /** NTRes case bits (set only when no long name is stored). */
  ntRes: number;
  /** Whether long-name entries must precede the short entry. */
  needsLfn: boolean;
}

function pack(base: string, ext: string): Uint8Array {
  const b = Buffer.from(base.padEnd(8, ' ') + ext.padEnd(3, ' '), 'latin1');
  if (b[0] === 0xe5) b[0] = KANJI_E5;
  return new Uint8Array(b);
}

const key = (b: Uint8Array): string => Buffer.from(b).toString('latin1');

/**
 * A name that is already a valid 8.3 name, all upper or all lower case per
 * part, is stored without long-name entries (lower case through the NTRes
 * bits, as Windows NT and Linux `shortname=mixed` do).
 */
function exactShortName(name: string): ShortName | undefined {
  const m = /^([^.]{1,8})(?:\.([^.]{1,3}))?$/.exec(name);
  if (!m) return undefined;
  const [, base, ext = ''] = m as unknown as [string, string, string | undefined];
  let ntRes = 0;
  for (const [part, bit] of [[base, NTRES_LOWER_BASE], [ext, NTRES_LOWER_EXT]] as const) {
    const up = part.toUpperCase();
    if (![...up].every(isShortChar)) return undefined;
    if (part !== up) {
      if (part !== part.toLowerCase()) return undefined; // mixed case needs a long name
      ntRes |= bit;
    }
  }
  return { bytes: pack(base.toUpperCase(), ext.toUpperCase()), ntRes, needsLfn: false };
}

/** Allocates the names of one directory, keeping aliases unique. */
export class ShortNameAllocator {
  private readonly used = new Set<string>();

  /** Reserve names that are valid 8.3 as given; call for every entry before {@link alias}. */
  tryExact(name: string): ShortName | undefined {
    const s = exactShortName(name);
    if (!s || this.used.has(key(s.bytes))) return undefined;
    this.used.add(key(s.bytes));
    return s;
  }

  /** Generate the alias for a name that needs long-name entries (basis name + numeric tail). */
  alias(name: string, path: string): ShortName {
    let lossy = false;
    const conv = (s: string): string => {
      let out = '';
      for (const ch of s.toUpperCase()) {
        if (ch === ' ' || ch === '.') { lossy = true; continue; }
        if (isShortChar(ch)) out += ch;
        else { out += '_'; lossy = true; }
      }
      return out;
    };
    const stripped = name.replace(/^[. ]+/, '');
    if (stripped !== name) lossy = true;
    const dot = stripped.lastIndexOf('.');
    let base = conv(dot > 0 ? stripped.slice(0, dot) : stripped);
    let ext = conv(dot > 0 ? stripped.slice(dot + 1) : '');
    if (ext.length > 3) { ext = ext.slice(0, 3); lossy = true; }
    if (base.length > 8) lossy = true;
    if (base.length === 0) { base = '_'; lossy = true; }
    if (!lossy) {
      const b = pack(base, ext);
      if (!this.used.has(key(b))) { this.used.add(key(b)); return { bytes: b, ntRes: 0, needsLfn: true }; }
    }
    for (let n = 1; n < 1_000_000; n++) {
      const tail = `~${n}`;
      const b = pack(base.slice(0, 8 - tail.length) + tail, ext);
      if (!this.used.has(key(b))) { this.used.add(key(b)); return { bytes: b, ntRes: 0, needsLfn: true }; }
    }
    throw new FatError('FAT_ALIAS_EXHAUSTED', 'no free 8.3 alias left in this directory', { file: path });
  }
}

/** UTF-16 code units of `name` split into 13-unit long-name entries (NUL-terminated, 0xFFFF-padded). */
export function longNameChunks(name: string): Uint16Array[] {
  const units = Buffer.from(name, 'utf16le');
  const n = units.length / 2;
  const count = Math.ceil(n / 13);
  const chunks: Uint16Array[] = [];
  for (let i = 0; i < count; i++) {
    const c = new Uint16Array(13).fill(0xffff);
    for (let j = 0; j < 13; j++) {
      const k = i * 13 + j;
      if (k < n) c[j] = units.readUInt16LE(k * 2);
      else if (k === n) { c[j] = 0; break; }
    }
    chunks.push(c);
  }
  return chunks;
}

/** Display form of an 11-byte short name, applying NTRes case bits. */
export function shortNameToString(b: Uint8Array, ntRes = 0): string {
  const bytes = Buffer.from(b);
  if (bytes[0] === KANJI_E5) bytes[0] = 0xe5;
  let base = bytes.subarray(0, 8).toString('latin1').replace(/ +$/, '');
  let ext = bytes.subarray(8, 11).toString('latin1').replace(/ +$/, '');
  if (ntRes & NTRES_LOWER_BASE) base = base.toLowerCase();
  if (ntRes & NTRES_LOWER_EXT) ext = ext.toLowerCase();
  return ext ? `${base}.${ext}` : base;
}
