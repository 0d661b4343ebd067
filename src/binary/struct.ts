/**
 * Declarative on-disk structures: each structure is described once as a
 * table of fields (name, offset, type) and gets symmetric decode/encode from
 * that table, so offsets are never written twice. Endianness is part of the
 * type name. Decoding checks bounds and reports the absolute offset of the
 * structure in errors.
 */
import { IngotError, type ErrorContext } from '../errors.js';

export type FieldType =
  | 'u8' | 'u16le' | 'u16be' | 'u32le' | 'u32be' | 'u64le' | 'u64be'
  | 'i32le' | 'i32be' | 'i64le' | 'i64be'
  | { bytes: number }
  | { ascii: number } // NUL-padded ASCII/Latin-1 text
  | { utf16le: number } // NUL-padded UTF-16LE text (GPT partition names)
  | 'guid'; // 16 bytes, mixed-endian GUID as in UEFI/GPT, decoded to canonical text

type FieldValue<T extends FieldType> =
  T extends 'u64le' | 'u64be' | 'i64le' | 'i64be' ? bigint :
  T extends { bytes: number } ? Uint8Array :
  T extends { ascii: number } | { utf16le: number } | 'guid' ? string :
  number;

export interface FieldSpec<T extends FieldType = FieldType> {
  readonly offset: number;
  readonly type: T;
}

export type Layout = Readonly<Record<string, FieldSpec>>;
export type Decoded<L extends Layout> = { -readonly [K in keyof L]: FieldValue<L[K]['type']> };

export function sizeOf(t: FieldType): number {
  if (typeof t === 'object') {
    if ('bytes' in t) return t.bytes;
    if ('ascii' in t) return t.ascii;
    return t.utf16le;
  }
  switch (t) {
    case 'u8': return 1;
    case 'u16le': case 'u16be': return 2;
    case 'u32le': case 'u32be': case 'i32le': case 'i32be': return 4;
    case 'u64le': case 'u64be': case 'i64le': case 'i64be': return 8;
    case 'guid': return 16;
  }
}

export class StructError extends IngotError {
  constructor(message: string, context: ErrorContext) {
    super('STRUCT', message, context);
  }
}

/** A structure: its name (for errors), byte size and field table. */
export class Struct<L extends Layout> {
  constructor(readonly name: string, readonly size: number, readonly fields: L) {
    for (const [k, f] of Object.entries(fields)) {
      if (f.offset < 0 || f.offset + sizeOf(f.type) > size) {
        throw new Error(`${name}.${k}: field outside the ${size}-byte structure`);
      }
    }
  }

  /** Decode from `buf` at `at`. `base` is the absolute offset of `buf[0]` in its file, for errors. */
  decode(buf: Uint8Array, at = 0, ctx: { file?: string; base?: number } = {}): Decoded<L> {
    if (at < 0 || at + this.size > buf.length) {
      throw new StructError(`truncated ${this.name}: need ${this.size} bytes, have ${Math.max(0, buf.length - at)}`, {
        file: ctx.file, offset: (ctx.base ?? 0) + at,
      });
    }
    const dv = new DataView(buf.buffer, buf.byteOffset + at, this.size);
    const out: Record<string, unknown> = {};
    for (const [k, f] of Object.entries(this.fields)) out[k] = readField(dv, buf, at, f);
    return out as Decoded<L>;
  }

  /** Encode into a new buffer (or into `into` at `at`). Fields absent from `value` are left zero. */
  encode(value: Partial<Decoded<L>>, into?: Uint8Array, at = 0): Uint8Array {
    const buf = into ?? new Uint8Array(this.size);
    if (at + this.size > buf.length) throw new Error(`${this.name}: encode target too small`);
    const dv = new DataView(buf.buffer, buf.byteOffset + at, this.size);
    for (const [k, f] of Object.entries(this.fields)) {
      const v = (value as Record<string, unknown>)[k];
      if (v !== undefined) writeField(dv, buf, at, f, v, `${this.name}.${k}`);
    }
    return buf;
  }
}

function readField(dv: DataView, buf: Uint8Array, at: number, f: FieldSpec): unknown {
  const o = f.offset;
  const t = f.type;
  if (typeof t === 'object') {
    if ('bytes' in t) return buf.slice(at + o, at + o + t.bytes);
    if ('ascii' in t) {
      const b = buf.subarray(at + o, at + o + t.ascii);
      const end = b.indexOf(0);
      return Buffer.from(end < 0 ? b : b.subarray(0, end)).toString('latin1');
    }
    const b = buf.subarray(at + o, at + o + t.utf16le);
    let s = Buffer.from(b).toString('utf16le');
    const nul = s.indexOf('\0');
    if (nul >= 0) s = s.slice(0, nul);
    return s;
  }
  switch (t) {
    case 'u8': return dv.getUint8(o);
    case 'u16le': return dv.getUint16(o, true);
    case 'u16be': return dv.getUint16(o, false);
    case 'u32le': return dv.getUint32(o, true);
    case 'u32be': return dv.getUint32(o, false);
    case 'i32le': return dv.getInt32(o, true);
    case 'i32be': return dv.getInt32(o, false);
    case 'u64le': return dv.getBigUint64(o, true);
    case 'u64be': return dv.getBigUint64(o, false);
    case 'i64le': return dv.getBigInt64(o, true);
    case 'i64be': return dv.getBigInt64(o, false);
    case 'guid': return guidToString(buf.subarray(at + o, at + o + 16));
  }
}

function writeField(dv: DataView, buf: Uint8Array, at: number, f: FieldSpec, v: unknown, name: string): void {
  const o = f.offset;
  const t = f.type;
  if (typeof t === 'object') {
    if ('bytes' in t) {
      const b = v as Uint8Array;
      if (b.length > t.bytes) throw new Error(`${name}: ${b.length} bytes exceed ${t.bytes}`);
      buf.set(b, at + o);
      return;
    }
    const n = 'ascii' in t ? t.ascii : t.utf16le;
    const enc = Buffer.from(v as string, 'ascii' in t ? 'latin1' : 'utf16le');
    if (enc.length > n) throw new Error(`${name}: text longer than ${n} bytes`);
    buf.fill(0, at + o, at + o + n);
    buf.set(enc, at + o);
    return;
  }
  switch (t) {
    case 'u8': dv.setUint8(o, v as number); return;
    case 'u16le': dv.setUint16(o, v as number, true); return;
    case 'u16be': dv.setUint16(o, v as number, false); return;
    case 'u32le': dv.setUint32(o, (v as number) >>> 0, true); return;
    case 'u32be': dv.setUint32(o, (v as number) >>> 0, false); return;
    case 'i32le': dv.setInt32(o, v as number, true); return;
    case 'i32be': dv.setInt32(o, v as number, false); return;
    case 'u64le': dv.setBigUint64(o, BigInt(v as bigint), true); return;
    case 'u64be': dv.setBigUint64(o, BigInt(v as bigint), false); return;
    case 'i64le': dv.setBigInt64(o, BigInt(v as bigint), true); return;
    case 'i64be': dv.setBigInt64(o, BigInt(v as bigint), false); return;
    case 'guid': buf.set(guidToBytes(v as string), at + o); return;
  }
}

/** UEFI GUID byte order: first three groups little-endian, last two as written (UEFI spec, Appendix A). */
export function guidToString(b: Uint8Array): string {
  const h = (i: number) => b[i]!.toString(16).padStart(2, '0');
  return (
    h(3) + h(2) + h(1) + h(0) + '-' + h(5) + h(4) + '-' + h(7) + h(6) + '-' + h(8) + h(9) + '-' +
    h(10) + h(11) + h(12) + h(13) + h(14) + h(15)
  ).toUpperCase();
}

export function guidToBytes(s: string): Uint8Array {
  const hex = s.replace(/-/g, '');
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw new Error(`not a GUID: ${s}`);
  const raw = Buffer.from(hex, 'hex');
  const out = new Uint8Array(16);
  out[0] = raw[3]!; out[1] = raw[2]!; out[2] = raw[1]!; out[3] = raw[0]!;
  out[4] = raw[5]!; out[5] = raw[4]!;
  out[6] = raw[7]!; out[7] = raw[6]!;
  out.set(raw.subarray(8), 8);
  return out;
}
