/**
 * Single-field writers derived from a {@link Struct}'s field table, for the
 * writer's per-inode and per-entry hot paths: `Struct.encode` walks every
 * field of the table on each call, which for ~100,000 inodes (four encodes
 * each) and their directory entries was the largest CPU cost of the writer.
 * Offsets still come from the one table in structs.ts.
 */
import type { Layout, Struct } from '../../binary/struct.js';

type Setter = (buf: Uint8Array, at: number, v: number) => void;
type NumericKeys<L extends Layout> = { [K in keyof L]: L[K]['type'] extends 'u8' | 'u16le' | 'u32le' ? K : never }[keyof L];
export type Setters<L extends Layout> = { readonly [K in NumericKeys<L>]: Setter };

function u8(o: number): Setter {
  return (b, at, v) => { b[at + o] = v & 0xff; };
}
function u16le(o: number): Setter {
  return (b, at, v) => { b[at + o] = v & 0xff; b[at + o + 1] = (v >>> 8) & 0xff; };
}
function u32le(o: number): Setter {
  return (b, at, v) => {
    b[at + o] = v & 0xff; b[at + o + 1] = (v >>> 8) & 0xff; b[at + o + 2] = (v >>> 16) & 0xff; b[at + o + 3] = (v >>> 24) & 0xff;
  };
}

/** A writer per little-endian integer field (u8, u16le, u32le) of `s`; other fields are left to `encode`. */
export function settersOf<L extends Layout>(s: Struct<L>): Setters<L> {
  const out: Record<string, Setter> = {};
  for (const [name, f] of Object.entries(s.fields)) {
    if (f.type === 'u8') out[name] = u8(f.offset);
    else if (f.type === 'u16le') out[name] = u16le(f.offset);
    else if (f.type === 'u32le') out[name] = u32le(f.offset);
  }
  return out as Setters<L>;
}
