/**
 * The RPM lead and header structures (rpm's "RPM file format" document and
 * lib/header.c behaviour): a 96-byte lead, then the signature header padded
 * to 8 bytes, then the main header, each header being
 *   magic(8) | il u32be | dl u32be | il × entry{tag, type, offset, count} | dl data bytes.
 * Index entries are validated as rpm validates them before any value is read:
 * known type, aligned offset inside the data area, count > 0, data that fits,
 * no overlap with the previous entry's data or the region trailer.
 */
import { Struct } from '../binary/struct.js';
import { RpmFormatError } from './errors.js';
import { TagType, TAG_TYPE_NAMES, Tag, type TagTypeCode } from './tags.js';

export const LEAD_MAGIC = 0xedabeedb;
export const HEADER_MAGIC = Uint8Array.of(0x8e, 0xad, 0xe8, 0x01, 0, 0, 0, 0);
/** RPMSIGTYPE_HEADERSIG: the only signature type rpm ≥ 3 writes or accepts in the lead. */
export const RPMSIGTYPE_HEADERSIG = 5;

export const Lead = new Struct('RpmLead', 96, {
  magic: { offset: 0, type: 'u32be' },
  major: { offset: 4, type: 'u8' },
  minor: { offset: 5, type: 'u8' },
  type: { offset: 6, type: 'u16be' },
  archnum: { offset: 8, type: 'u16be' },
  name: { offset: 10, type: { ascii: 66 } },
  osnum: { offset: 76, type: 'u16be' },
  signatureType: { offset: 78, type: 'u16be' },
  reserved: { offset: 80, type: { bytes: 16 } },
});

export const HeaderIntro = new Struct('HeaderIntro', 16, {
  magic: { offset: 0, type: { bytes: 8 } },
  il: { offset: 8, type: 'u32be' },
  dl: { offset: 12, type: 'u32be' },
});

export const IndexEntry = new Struct('HeaderIndexEntry', 16, {
  tag: { offset: 0, type: 'u32be' },
  type: { offset: 4, type: 'u32be' },
  offset: { offset: 8, type: 'i32be' },
  count: { offset: 12, type: 'u32be' },
});

/** Limits rpm applies (hdrblobRead): main header ≤ 0xffff tags, ≤ 256 MiB data; signature header ≤ 32 tags, ≤ 64 MiB. */
export const HEADER_TAGS_MAX = 0xffff;
export const HEADER_DATA_MAX = 0x0fffffff;
export const SIG_TAGS_MAX = 32;
export const SIG_DATA_MAX = 64 * 1024 * 1024;
const REGION_TAG_COUNT = 16;

const TYPE_SIZE = [0, 1, 1, 2, 4, 8, -1, 1, -1, -1];
const TYPE_ALIGN = [1, 1, 1, 2, 4, 8, 1, 1, 1, 1];

export interface HeaderEntry {
  readonly tag: number;
  readonly type: TagTypeCode;
  /** Offset of the value inside the data area. */
  readonly offset: number;
  readonly count: number;
  /** Byte length of the value. */
  readonly length: number;
}

export type TagValue = number[] | string[] | Uint8Array;

export interface HeaderLocation {
  file?: string;
  /** Byte offset of the header magic in the file. */
  offset: number;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Header strings are bytes; rpm prints them as they are. UTF-8 when valid, else Latin-1 (one char per byte). */
export function decodeText(b: Uint8Array): string {
  for (let i = 0; i < b.length; i++) {
    if (b[i]! >= 0x80) {
      try { return utf8.decode(b); } catch { return Buffer.from(b.buffer, b.byteOffset, b.length).toString('latin1'); }
    }
  }
  return Buffer.from(b.buffer, b.byteOffset, b.length).toString('latin1');
}

/** A parsed header. `raw` is the on-disk header (magic through data); `blob()` is the rpmdb form (no magic). */
export class Header {
  private readonly byTag = new Map<number, HeaderEntry>();
  private readonly dataStart: number;

  constructor(
    readonly raw: Uint8Array,
    readonly entries: readonly HeaderEntry[],
    /** The immutable region: its tag (62/63), entry count and data length; null for rpm 3 headers. */
    readonly region: { tag: number; il: number; dl: number } | null,
    readonly location: HeaderLocation,
  ) {
    this.dataStart = 16 + entries.length * 16;
    // The first occurrence wins, as in rpm (duplicates outside the region are dribbles and ignored).
    for (const e of entries) if (!this.byTag.has(e.tag)) this.byTag.set(e.tag, e);
  }

  /** Size on disk (16 + 16·il + dl). */
  get size(): number { return this.raw.length; }

  /** Header bytes without the 8-byte magic, as rpm stores them in its database. */
  blob(): Uint8Array { return this.raw.subarray(8); }

  has(tag: number): boolean { return this.byTag.has(tag); }
  entry(tag: number): HeaderEntry | undefined { return this.byTag.get(tag); }

  /** Raw value bytes of a tag (for BIN tags and digests). */
  bytes(tag: number): Uint8Array | undefined {
    const e = this.byTag.get(tag);
    if (!e) return undefined;
    const s = this.dataStart + e.offset;
    return this.raw.subarray(s, s + e.length);
  }

  /** Decoded value: numbers for integer types, strings for string types, bytes for BIN/CHAR. */
  get(tag: number): TagValue | undefined {
    const e = this.byTag.get(tag);
    return e ? this.decode(e) : undefined;
  }

  decode(e: HeaderEntry): TagValue {
    const start = this.dataStart + e.offset;
    const dv = new DataView(this.raw.buffer, this.raw.byteOffset + start, e.length);
    switch (e.type) {
      case TagType.NULL: return [];
      case TagType.CHAR: case TagType.BIN: return this.raw.slice(start, start + e.length);
      case TagType.INT8: return Array.from(this.raw.subarray(start, start + e.count));
      case TagType.INT16: return Array.from({ length: e.count }, (_, i) => dv.getUint16(i * 2));
      case TagType.INT32: return Array.from({ length: e.count }, (_, i) => dv.getUint32(i * 4));
      case TagType.INT64: return Array.from({ length: e.count }, (_, i) => Number(dv.getBigUint64(i * 8)));
      default: {
        const out: string[] = [];
        let p = start;
        for (let i = 0; i < e.count; i++) {
          const z = this.raw.indexOf(0, p);
          out.push(decodeText(this.raw.subarray(p, z)));
          p = z + 1;
        }
        return out;
      }
    }
  }

  /** Raw bytes of each string of a string tag (paths must keep their bytes). */
  rawStrings(tag: number): Uint8Array[] {
    const e = this.byTag.get(tag);
    if (!e || !(e.type === TagType.STRING || e.type === TagType.STRING_ARRAY || e.type === TagType.I18NSTRING)) return [];
    const out: Uint8Array[] = [];
    let p = this.dataStart + e.offset;
    for (let i = 0; i < e.count; i++) {
      const z = this.raw.indexOf(0, p);
      out.push(this.raw.subarray(p, z));
      p = z + 1;
    }
    return out;
  }

  /** A single string; for I18NSTRING the first (C locale) translation, as rpm shows with LC_ALL=C. */
  string(tag: number): string | undefined {
    const v = this.get(tag);
    if (v === undefined || !Array.isArray(v) || v.length === 0) return undefined;
    const first = v[0];
    return typeof first === 'string' ? first : String(first);
  }

  strings(tag: number): string[] {
    const v = this.get(tag);
    if (v === undefined || !Array.isArray(v)) return [];
    return v.map((x) => String(x));
  }

  numbers(tag: number): number[] {
    const v = this.get(tag);
    if (v === undefined) return [];
    if (v instanceof Uint8Array) return Array.from(v);
    return v.map((x) => (typeof x === 'number' ? x : Number(x)));
  }

  number(tag: number): number | undefined {
    return this.numbers(tag)[0];
  }
}

function fail(code: string, msg: string, loc: HeaderLocation, at: number, extra: { field?: string; expected?: string; actual?: string } = {}): never {
  throw new RpmFormatError(code, msg, { file: loc.file, offset: loc.offset + at, ...extra });
}

/** Read and check the 16-byte header intro; returns the total header size (16 + 16·il + dl). */
export function headerSize(intro: Uint8Array, loc: HeaderLocation, signature: boolean, fileSize?: number): number {
  if (intro.length < 16) fail('TRUNCATED', 'truncated header intro', loc, 0, { expected: '16 bytes', actual: `${intro.length}` });
  for (let i = 0; i < 8; i++) {
    if (intro[i] !== HEADER_MAGIC[i]) {
      fail('BAD_MAGIC', `bad ${signature ? 'signature ' : ''}header magic`, loc, 0, { expected: '8eade801 00000000', actual: Buffer.from(intro.subarray(0, 8)).toString('hex') });
    }
  }
  const h = HeaderIntro.decode(intro);
  const ilMax = signature ? SIG_TAGS_MAX : HEADER_TAGS_MAX;
  const dlMax = signature ? SIG_DATA_MAX : HEADER_DATA_MAX;
  if (h.il < 1 || h.il > ilMax) fail('BAD_HEADER', 'absurd header index count', loc, 8, { field: 'il', expected: `1..${ilMax}`, actual: `${h.il}` });
  if (h.dl > dlMax) fail('BAD_HEADER', 'absurd header data length', loc, 12, { field: 'dl', expected: `≤ ${dlMax}`, actual: `${h.dl}` });
  const size = 16 + h.il * 16 + h.dl;
  if (fileSize !== undefined && loc.offset + size > fileSize) {
    fail('TRUNCATED', `${signature ? 'signature' : 'main'} header runs past the end of the file`, loc, 0, { expected: `${size} bytes`, actual: `${fileSize - loc.offset}` });
  }
  return size;
}

/** Parse a complete header (magic, intro, index, data) and validate every index entry. */
export function parseHeader(raw: Uint8Array, loc: HeaderLocation, signature: boolean): Header {
  const size = headerSize(raw, loc, signature);
  if (raw.length < size) fail('TRUNCATED', 'truncated header', loc, 0, { expected: `${size} bytes`, actual: `${raw.length}` });
  raw = raw.subarray(0, size);
  const { il, dl } = HeaderIntro.decode(raw);
  const ds = 16 + il * 16;
  const entries: HeaderEntry[] = [];
  for (let i = 0; i < il; i++) {
    const r = IndexEntry.decode(raw, 16 + i * 16);
    entries.push({ tag: r.tag, type: r.type as TagTypeCode, offset: r.offset, count: r.count, length: 0 });
  }
  const region = verifyRegion(raw, entries, ds, dl, loc, signature);
  // hdrblobVerifyInfo: the region entry itself is checked by verifyRegion.
  let end = 0;
  const out: HeaderEntry[] = [];
  for (let i = 0; i < il; i++) {
    const e = entries[i]!;
    const at = 16 + i * 16;
    if (i === 0 && region) { out.push({ ...e, length: REGION_TAG_COUNT }); continue; }
    const ctx = { field: `entry ${i} (tag ${e.tag})` };
    if (e.offset < 0 || end > e.offset) fail('BAD_HEADER', 'header entry data overlaps the previous entry', loc, at + 8, { ...ctx, expected: `offset ≥ ${end}`, actual: `${e.offset}` });
    if (e.tag < Tag.HEADERI18NTABLE) fail('BAD_HEADER', 'reserved tag number in header index', loc, at, { ...ctx, expected: '≥ 100', actual: `${e.tag}` });
    if (e.type > TagType.I18NSTRING) fail('BAD_HEADER', 'unknown header data type', loc, at + 4, { ...ctx, expected: '0..9', actual: `${e.type}` });
    if (e.count === 0 || e.count > HEADER_DATA_MAX) fail('BAD_HEADER', 'absurd header entry count', loc, at + 12, { ...ctx, expected: `1..${HEADER_DATA_MAX}`, actual: `${e.count}` });
    if (e.offset & (TYPE_ALIGN[e.type]! - 1)) fail('BAD_HEADER', `misaligned ${TAG_TYPE_NAMES[e.type]} data`, loc, at + 8, { ...ctx, actual: `${e.offset}` });
    if (e.offset > dl) fail('BAD_HEADER', 'header entry offset outside the data area', loc, at + 8, { ...ctx, expected: `≤ ${dl}`, actual: `${e.offset}` });
    const len = dataLength(raw, ds + e.offset, ds + dl, e.type, e.count);
    if (len < 0 || len > dl - e.offset) fail('BAD_HEADER', 'header entry data runs past the data area', loc, at, { ...ctx, field: `entry ${i} (tag ${e.tag}) type ${TAG_TYPE_NAMES[e.type]} count ${e.count}` });
    end = e.offset + len;
    if (region && e.offset < region.dl && end > region.dl - REGION_TAG_COUNT) {
      fail('BAD_HEADER', 'header entry data overlaps the region trailer', loc, at, ctx);
    }
    out.push({ ...e, length: len });
  }
  return new Header(raw, out, region, loc);
}

/** Byte length of a value (rpm dataLength); -1 when a string is unterminated or the count is illegal. */
function dataLength(raw: Uint8Array, start: number, limit: number, type: number, count: number): number {
  const fixed = TYPE_SIZE[type]!;
  if (fixed >= 0) {
    const n = fixed * count;
    return start + n > limit ? -1 : n;
  }
  if (type === TagType.STRING && count !== 1) return -1;
  let p = start;
  for (let i = 0; i < count; i++) {
    if (p >= limit) return -1;
    const z = raw.indexOf(0, p);
    if (z < 0 || z >= limit) return -1;
    p = z + 1;
  }
  return p - start;
}

/** hdrblobVerifyRegion: the first entry may open an immutable region whose trailer points back at the index. */
function verifyRegion(raw: Uint8Array, entries: HeaderEntry[], ds: number, dl: number, loc: HeaderLocation, signature: boolean) {
  const regionTag = signature ? Tag.HEADERSIGNATURES : Tag.HEADERIMMUTABLE;
  const first = entries[0]!;
  if (first.tag !== regionTag) return null; // rpm 3 header: no region
  if (first.type !== TagType.BIN || first.count !== REGION_TAG_COUNT) {
    fail('BAD_REGION', 'bad region tag', loc, 16, { field: `tag ${regionTag}`, expected: `BIN count ${REGION_TAG_COUNT}`, actual: `type ${first.type} count ${first.count}` });
  }
  if (first.offset < 0 || first.offset + REGION_TAG_COUNT > dl) {
    fail('BAD_REGION', 'region trailer outside the data area', loc, 24, { expected: `≤ ${dl - REGION_TAG_COUNT}`, actual: `${first.offset}` });
  }
  const t = IndexEntry.decode(raw, ds + first.offset);
  let ttag = t.tag;
  // Some old packages carry HEADERIMAGE in the signature region trailer (rpm accepts it).
  if (ttag === Tag.HEADERIMAGE) ttag = regionTag;
  if (ttag !== regionTag || t.type !== TagType.BIN || t.count !== REGION_TAG_COUNT) {
    fail('BAD_REGION', 'bad region trailer', loc, 16 * (entries.length + 1) + first.offset, { field: `tag ${regionTag}` });
  }
  const negOffset = -t.offset;
  const ril = negOffset / 16;
  const rdl = first.offset + REGION_TAG_COUNT;
  if (negOffset % 16 !== 0 || ril < 1 || ril > entries.length || rdl > dl) {
    fail('BAD_REGION', 'region size outside the header', loc, 16 * (entries.length + 1) + first.offset + 8, { expected: `1..${entries.length} entries`, actual: `${ril}` });
  }
  return { tag: regionTag, il: ril, dl: rdl };
}
