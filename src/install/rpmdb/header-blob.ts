/**
 * RPM header blobs as the rpmdb stores them.
 *
 * A header blob (rpm's "hdrblob", the on-disk header without its 8-byte
 * magic) is: il (u32 BE), dl (u32 BE), il index entries {tag, type, offset,
 * count} (u32 BE each), then dl bytes of data. A package's main header keeps
 * its signed part in an immutable region: the first entry is
 * RPMTAG_HEADERIMMUTABLE (63), whose data (the region trailer) is itself an
 * index entry with a negative offset giving the region's size.
 *
 * What `rpm -i` stores (rpm 4.18 lib/package.c headerMergeLegacySigs,
 * lib/psm.c dbAdd, lib/header.c doExport), confirmed by diffing a blob written
 * by `rpm --justdb -i`: the package's main header bytes unchanged, followed by
 * the added tags in ascending tag order, each aligned for its type:
 * - the signature header's digests/sizes/signatures remapped to header tags
 *   (SIGSIZE, SIGMD5, SHA1HEADER, SHA256HEADER, ARCHIVESIZE, RSAHEADER, …);
 * - INSTALLTIME, INSTALLTID, INSTALLCOLOR, FILESTATES (one per file, if any)
 *   and INSTPREFIXES (relocatable packages).
 */
import { IngotError } from '../../errors.js';

export class RpmHeaderError extends IngotError {}

/** Header entry data types (rpm's rpmTagType). */
export const RPM_TYPE = {
  NULL: 0, CHAR: 1, INT8: 2, INT16: 3, INT32: 4, INT64: 5, STRING: 6, BIN: 7, STRING_ARRAY: 8, I18NSTRING: 9,
} as const;

/** Tags this module reads or writes (numbers from rpm's rpmtag.h). */
export const RPMTAG = {
  HEADERSIGNATURES: 62, HEADERIMMUTABLE: 63, HEADERI18NTABLE: 100,
  SIGSIZE: 257, SIGPGP: 259, SIGMD5: 261, SIGGPG: 262, DSAHEADER: 267, RSAHEADER: 268, SHA1HEADER: 269,
  LONGSIGSIZE: 270, LONGARCHIVESIZE: 271, SHA256HEADER: 273, VERITYSIGNATURES: 276, VERITYSIGNATUREALGO: 277,
  NAME: 1000, VERSION: 1001, RELEASE: 1002, EPOCH: 1003, INSTALLTIME: 1008, GROUP: 1016, OS: 1021, ARCH: 1022,
  FILESIZES: 1028, FILESTATES: 1029, FILEMODES: 1030, SOURCERPM: 1044, ARCHIVESIZE: 1046, PROVIDENAME: 1047,
  REQUIREFLAGS: 1048, REQUIRENAME: 1049, CONFLICTNAME: 1054, TRIGGERNAME: 1066, OBSOLETENAME: 1090,
  PREFIXES: 1098, INSTPREFIXES: 1099, DIRINDEXES: 1116, BASENAMES: 1117, DIRNAMES: 1118,
  INSTALLCOLOR: 1127, INSTALLTID: 1128,
  RECOMMENDNAME: 5046, SUGGESTNAME: 5049, SUPPLEMENTNAME: 5052, ENHANCENAME: 5055,
  FILETRIGGERNAME: 5069, FILETRIGGERINDEX: 5070, TRANSFILETRIGGERNAME: 5079, TRANSFILETRIGGERINDEX: 5080,
  FILESIGNATURES: 5090, FILESIGNATURELENGTH: 5091,
} as const;

/** Signature-header tags (rpm's rpmSigTag). */
const SIGTAG = {
  SIZE: 1000, PGP: 1002, MD5: 1004, GPG: 1005, PAYLOADSIZE: 1007, DSA: 267, RSA: 268, SHA1: 269,
  LONGSIZE: 270, LONGARCHIVESIZE: 271, SHA256: 273, FILESIGNATURES: 274, FILESIGNATURELENGTH: 275,
  VERITYSIGNATURES: 276, VERITYSIGNATUREALGO: 277,
} as const;

/**
 * rpm 4.18's xlateTags: signature tag → header tag, the type the header tag
 * must have, the exact count required (0: any), and whether the tag may
 * legitimately already be in the main header ("quirk").
 */
const SIG_XLATE: readonly { stag: number; xtag: number; type: number; count: number; quirk: boolean }[] = [
  { stag: SIGTAG.SIZE, xtag: RPMTAG.SIGSIZE, type: RPM_TYPE.INT32, count: 1, quirk: false },
  { stag: SIGTAG.PGP, xtag: RPMTAG.SIGPGP, type: RPM_TYPE.BIN, count: 0, quirk: false },
  { stag: SIGTAG.MD5, xtag: RPMTAG.SIGMD5, type: RPM_TYPE.BIN, count: 16, quirk: false },
  { stag: SIGTAG.GPG, xtag: RPMTAG.SIGGPG, type: RPM_TYPE.BIN, count: 0, quirk: false },
  { stag: SIGTAG.PAYLOADSIZE, xtag: RPMTAG.ARCHIVESIZE, type: RPM_TYPE.INT32, count: 1, quirk: true },
  { stag: SIGTAG.FILESIGNATURES, xtag: RPMTAG.FILESIGNATURES, type: RPM_TYPE.STRING_ARRAY, count: 0, quirk: true },
  { stag: SIGTAG.FILESIGNATURELENGTH, xtag: RPMTAG.FILESIGNATURELENGTH, type: RPM_TYPE.INT32, count: 1, quirk: true },
  { stag: SIGTAG.VERITYSIGNATURES, xtag: RPMTAG.VERITYSIGNATURES, type: RPM_TYPE.STRING_ARRAY, count: 0, quirk: false },
  { stag: SIGTAG.VERITYSIGNATUREALGO, xtag: RPMTAG.VERITYSIGNATUREALGO, type: RPM_TYPE.INT32, count: 1, quirk: false },
  { stag: SIGTAG.SHA1, xtag: RPMTAG.SHA1HEADER, type: RPM_TYPE.STRING, count: 1, quirk: false },
  { stag: SIGTAG.SHA256, xtag: RPMTAG.SHA256HEADER, type: RPM_TYPE.STRING, count: 1, quirk: false },
  { stag: SIGTAG.DSA, xtag: RPMTAG.DSAHEADER, type: RPM_TYPE.BIN, count: 0, quirk: false },
  { stag: SIGTAG.RSA, xtag: RPMTAG.RSAHEADER, type: RPM_TYPE.BIN, count: 0, quirk: false },
  { stag: SIGTAG.LONGSIZE, xtag: RPMTAG.LONGSIGSIZE, type: RPM_TYPE.INT64, count: 1, quirk: false },
  { stag: SIGTAG.LONGARCHIVESIZE, xtag: RPMTAG.LONGARCHIVESIZE, type: RPM_TYPE.INT64, count: 1, quirk: false },
];

const HEADER_MAGIC = Buffer.from([0x8e, 0xad, 0xe8, 0x01, 0, 0, 0, 0]);
const ENTRY_SIZE = 16;
/** rpm's hdrchkTags / hdrchkData bounds. */
const MAX_TAGS = 0xffff;
const MAX_DATA = 256 * 1024 * 1024;

export interface HeaderEntry { tag: number; type: number; offset: number; count: number }

/** A parsed header blob: index entries and the data store, with typed getters. */
export class HeaderBlob {
  readonly entries: HeaderEntry[];
  readonly data: Buffer;
  private readonly byTag = new Map<number, HeaderEntry>();

  /** Parse `bytes`: a header blob, optionally starting with the 8-byte header magic. */
  constructor(readonly bytes: Buffer, readonly what = 'header') {
    let b = bytes;
    if (b.length >= 8 && b.subarray(0, 8).equals(HEADER_MAGIC)) b = b.subarray(8);
    if (b.length < 8) throw new RpmHeaderError('RPM_HEADER_SHORT', 'header shorter than its intro', { file: what, offset: 0 });
    const il = b.readUInt32BE(0), dl = b.readUInt32BE(4);
    if (il < 1 || il > MAX_TAGS || dl > MAX_DATA) throw new RpmHeaderError('RPM_HEADER_BAD_SIZE', 'header index/data length out of range', { file: what, offset: 0, actual: `il=${il} dl=${dl}` });
    const need = 8 + il * ENTRY_SIZE + dl;
    if (b.length < need) throw new RpmHeaderError('RPM_HEADER_SHORT', 'header truncated', { file: what, expected: `${need} bytes`, actual: `${b.length}` });
    this.entries = [];
    for (let i = 0; i < il; i++) {
      const o = 8 + i * ENTRY_SIZE;
      const e = { tag: b.readUInt32BE(o), type: b.readUInt32BE(o + 4), offset: b.readInt32BE(o + 8), count: b.readUInt32BE(o + 12) };
      if (e.type > RPM_TYPE.I18NSTRING || (e.offset < 0 || e.offset > dl) && !(i === 0 && e.tag >= 61 && e.tag <= 63)) {
        throw new RpmHeaderError('RPM_HEADER_BAD_ENTRY', `bad index entry for tag ${e.tag}`, { file: what, offset: o });
      }
      this.entries.push(e);
      if (!this.byTag.has(e.tag)) this.byTag.set(e.tag, e);
    }
    this.data = b.subarray(8 + il * ENTRY_SIZE, need);
    this.blob = b.subarray(0, need);
    // Every entry's data must lie inside the data store (rpm's hdrblobVerifyInfo).
    for (const e of this.entries) {
      if (e.count > dl) throw new RpmHeaderError('RPM_HEADER_BAD_ENTRY', `count out of range for tag ${e.tag}`, { file: what, actual: `${e.count}` });
      const len = this.entryLength(e);
      if (e.offset + len > dl) throw new RpmHeaderError('RPM_HEADER_BAD_ENTRY', `data of tag ${e.tag} runs past the header`, { file: what, offset: 8 + il * ENTRY_SIZE + e.offset });
    }
  }

  /** The blob without magic and without trailing bytes. */
  readonly blob: Buffer;

  has(tag: number): boolean { return this.byTag.has(tag); }
  entry(tag: number): HeaderEntry | undefined { return this.byTag.get(tag); }

  /** The raw bytes of an entry's value. */
  raw(tag: number): Buffer | undefined {
    const e = this.byTag.get(tag);
    return e ? this.data.subarray(e.offset, e.offset + this.entryLength(e)) : undefined;
  }

  private entryLength(e: HeaderEntry): number {
    switch (e.type) {
      case RPM_TYPE.NULL: return 0;
      case RPM_TYPE.CHAR: case RPM_TYPE.INT8: case RPM_TYPE.BIN: return e.count;
      case RPM_TYPE.INT16: return 2 * e.count;
      case RPM_TYPE.INT32: return 4 * e.count;
      case RPM_TYPE.INT64: return 8 * e.count;
      default: {
        // String types: `count` NUL-terminated strings (STRING has count 1).
        let p = e.offset;
        for (let i = 0; i < e.count; i++) {
          const z = this.data.indexOf(0, p);
          if (z < 0 || p >= this.data.length) throw new RpmHeaderError('RPM_HEADER_BAD_STRING', `unterminated string in tag ${e.tag}`, { file: this.what, offset: e.offset });
          p = z + 1;
        }
        return p - e.offset;
      }
    }
  }

  strings(tag: number): string[] {
    const e = this.byTag.get(tag);
    if (!e) return [];
    if (e.type !== RPM_TYPE.STRING && e.type !== RPM_TYPE.STRING_ARRAY && e.type !== RPM_TYPE.I18NSTRING) {
      throw new RpmHeaderError('RPM_HEADER_BAD_TYPE', `tag ${e.tag} is not a string`, { file: this.what, field: String(tag), actual: `type ${e.type}` });
    }
    const raw = this.raw(tag)!;
    return raw.toString('utf8', 0, raw.length - 1).split('\0');
  }

  string(tag: number): string | undefined { return this.strings(tag)[0]; }

  numbers(tag: number): number[] {
    const e = this.byTag.get(tag);
    if (!e) return [];
    const raw = this.raw(tag)!;
    const out: number[] = [];
    for (let i = 0; i < e.count; i++) {
      switch (e.type) {
        case RPM_TYPE.CHAR: case RPM_TYPE.INT8: out.push(raw[i]!); break;
        case RPM_TYPE.INT16: out.push(raw.readUInt16BE(2 * i)); break;
        case RPM_TYPE.INT32: out.push(raw.readUInt32BE(4 * i)); break;
        case RPM_TYPE.INT64: out.push(Number(raw.readBigUInt64BE(8 * i))); break;
        default: throw new RpmHeaderError('RPM_HEADER_BAD_TYPE', `tag ${e.tag} is not numeric`, { file: this.what, field: String(tag) });
      }
    }
    return out;
  }

  /** Number of files (BASENAMES entries). */
  get fileCount(): number { return this.byTag.get(RPMTAG.BASENAMES)?.count ?? 0; }
}

/** A tag to add: its type, count and big-endian data bytes. */
export interface AddedTag { tag: number; type: number; count: number; data: Buffer }

const ALIGN: Record<number, number> = { [RPM_TYPE.INT16]: 2, [RPM_TYPE.INT32]: 4, [RPM_TYPE.INT64]: 8 };

export const int32Tag = (tag: number, values: number[]): AddedTag => {
  const data = Buffer.alloc(4 * values.length);
  values.forEach((v, i) => data.writeUInt32BE(v >>> 0, 4 * i));
  return { tag, type: RPM_TYPE.INT32, count: values.length, data };
};
export const stringArrayTag = (tag: number, values: string[]): AddedTag =>
  ({ tag, type: RPM_TYPE.STRING_ARRAY, count: values.length, data: Buffer.from(values.map((v) => `${v}\0`).join(''), 'utf8') });
export const charTag = (tag: number, values: number[]): AddedTag =>
  ({ tag, type: RPM_TYPE.CHAR, count: values.length, data: Buffer.from(values.map((v) => v & 0xff)) });

/**
 * Append tags to a header: the original index and data are kept byte for
 * byte (the immutable region stays verifiable), the new entries follow in
 * ascending tag order with their data appended, each aligned for its type.
 */
export function appendTags(header: HeaderBlob, added: AddedTag[]): Buffer {
  const sorted = [...added].sort((a, b) => a.tag - b.tag);
  for (const t of sorted) if (header.has(t.tag)) {
    throw new RpmHeaderError('RPM_HEADER_DUP_TAG', `tag ${t.tag} is already in the header`, { file: header.what, field: String(t.tag) });
  }
  const il0 = header.entries.length;
  let dl = header.data.length;
  const placed = sorted.map((t) => {
    const a = ALIGN[t.type] ?? 1;
    dl = Math.ceil(dl / a) * a;
    const offset = dl;
    dl += t.data.length;
    return { ...t, offset };
  });
  const il = il0 + placed.length;
  if (il > MAX_TAGS || dl > MAX_DATA) throw new RpmHeaderError('RPM_HEADER_TOO_BIG', 'header too large', { file: header.what });
  const out = Buffer.alloc(8 + il * ENTRY_SIZE + dl);
  out.writeUInt32BE(il, 0);
  out.writeUInt32BE(dl, 4);
  header.blob.copy(out, 8, 8, 8 + il0 * ENTRY_SIZE);
  const dataStart = 8 + il * ENTRY_SIZE;
  header.data.copy(out, dataStart);
  placed.forEach((t, i) => {
    const o = 8 + (il0 + i) * ENTRY_SIZE;
    out.writeUInt32BE(t.tag, o);
    out.writeUInt32BE(t.type, o + 4);
    out.writeUInt32BE(t.offset, o + 8);
    out.writeUInt32BE(t.count, o + 12);
    t.data.copy(out, dataStart + t.offset);
  });
  return out;
}

/** The signature-header tags rpm merges into the main header (headerMergeLegacySigs). */
export function mergedSignatureTags(main: HeaderBlob, sig: HeaderBlob): AddedTag[] {
  for (const x of SIG_XLATE) {
    if (main.has(x.xtag) && !(x.quirk && !sig.has(x.stag))) {
      throw new RpmHeaderError('RPM_HEADER_BAD_SIG_TAG', `invalid signature tag ${x.xtag}: present in the main header`, { file: main.what, field: String(x.xtag) });
    }
  }
  const out: AddedTag[] = [];
  for (const x of SIG_XLATE) {
    const e = sig.entry(x.stag);
    if (!e) continue;
    if (e.type !== x.type || e.count < 1 || e.count > 16 * 1024 * 1024 || (x.count && e.count !== x.count)) {
      throw new RpmHeaderError('RPM_HEADER_BAD_SIG_TAG', `invalid signature tag ${x.stag}`, { file: sig.what, field: String(x.stag), actual: `type ${e.type} count ${e.count}` });
    }
    if (main.has(x.xtag)) continue; // quirk tag present in both is refused above; present only in main: keep main's
    out.push({ tag: x.xtag, type: e.type, count: e.count, data: Buffer.from(sig.raw(x.stag)!) });
  }
  return out;
}

/** rpm's file states (rpmfileState). */
export const FILE_STATE = { NORMAL: 0, REPLACED: 1, NOTINSTALLED: 2, NETSHARED: 3, WRONGCOLOR: 4 } as const;

export interface InstallInfo {
  /** Seconds since the epoch recorded as INSTALLTIME (deterministic: SOURCE_DATE_EPOCH). */
  installTime: number;
  /** Transaction id (rpm uses the transaction's start time). Default: installTime. */
  tid?: number;
  /** Transaction colour: 3 on 64-bit multilib arches (rpm installplatform), else 0. */
  color: number;
  /** Per-file states (default: all NORMAL). */
  fileStates?: number[];
  /** Install prefixes of a relocatable package (default: its PREFIXES, unrelocated). */
  instPrefixes?: string[];
}

/** Transaction colour for an architecture, as rpm's installplatform sets %_transaction_color. */
export function transactionColor(arch: string): number {
  if (/^(x86_64|amd64|ia32e|aarch64|ppc64|ppc64le|ppc64p7|s390x|sparc64.*|riscv64|loongarch64)$/.test(arch)) return 3;
  if (/^mips64/.test(arch)) return 2;
  return 0;
}

/**
 * The blob rpm stores in the Packages table for a package being installed:
 * main header + merged signature tags + install-time tags.
 */
export function installedHeaderBlob(mainBytes: Uint8Array, sigBytes: Uint8Array | undefined, info: InstallInfo, what = 'package'): Buffer {
  const main = new HeaderBlob(Buffer.from(mainBytes.buffer, mainBytes.byteOffset, mainBytes.length), what);
  const first = main.entries[0]!;
  if (first.tag !== RPMTAG.HEADERIMMUTABLE) {
    throw new RpmHeaderError('RPM_HEADER_NO_REGION', 'header has no immutable region (RPM v3 package?)', { file: what, expected: 'tag 63 first', actual: `tag ${first.tag}` });
  }
  const added: AddedTag[] = sigBytes ? mergedSignatureTags(main, new HeaderBlob(Buffer.from(sigBytes.buffer, sigBytes.byteOffset, sigBytes.length), `${what} (signature header)`)) : [];
  added.push(int32Tag(RPMTAG.INSTALLTIME, [info.installTime]));
  added.push(int32Tag(RPMTAG.INSTALLTID, [info.tid ?? info.installTime]));
  added.push(int32Tag(RPMTAG.INSTALLCOLOR, [info.color]));
  const fc = main.fileCount;
  if (fc > 0) {
    const states = info.fileStates ?? new Array<number>(fc).fill(FILE_STATE.NORMAL);
    if (states.length !== fc) throw new RpmHeaderError('RPM_HEADER_BAD_FILESTATES', 'one file state per file needed', { file: what, expected: `${fc}`, actual: `${states.length}` });
    added.push(charTag(RPMTAG.FILESTATES, states));
  }
  const prefixes = info.instPrefixes ?? main.strings(RPMTAG.PREFIXES);
  if (main.has(RPMTAG.PREFIXES) && prefixes.length) added.push(stringArrayTag(RPMTAG.INSTPREFIXES, prefixes));
  return appendTags(main, added);
}
