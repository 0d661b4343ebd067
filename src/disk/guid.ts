/**
 * Partition GUIDs: canonical text form, random or deterministic from a seed.
 * Deterministic GUIDs are name-based (RFC 9562 §5.5, UUIDv5 construction:
 * SHA-1 of namespace + name, version and variant bits set), so the same seed
 * and purpose always give the same GUID and different purposes never collide.
 */
import { createHash, randomUUID } from 'node:crypto';

/** Namespace for ingot's seed-derived GUIDs (itself a fixed random UUID). */
export const INGOT_GUID_NAMESPACE = '6F0E5B3A-9C1D-4E27-8B44-2D7A1C9E5F30';

const GUID_RE = /^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$/;

export function isGuid(s: string): boolean {
  return GUID_RE.test(s.toUpperCase());
}

/** Upper-case canonical text, as sgdisk/sfdisk print it. */
export function normalizeGuid(s: string): string {
  const u = s.toUpperCase();
  if (!GUID_RE.test(u)) throw new TypeError(`not a GUID: ${s}`);
  return u;
}

function format(b: Uint8Array): string {
  const h = Buffer.from(b).toString('hex').toUpperCase();
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/** A name-based GUID for `purpose` (e.g. `disk`, `partition:2`) under `seed`. */
export function seededGuid(seed: string, purpose: string): string {
  const ns = Buffer.from(INGOT_GUID_NAMESPACE.replace(/-/g, ''), 'hex');
  const d = createHash('sha1').update(ns).update(`${seed}\0${purpose}`, 'utf8').digest();
  const b = new Uint8Array(d.subarray(0, 16));
  b[6] = (b[6]! & 0x0f) | 0x50;
  b[8] = (b[8]! & 0x3f) | 0x80;
  return format(b);
}

/** A GUID for `purpose`: seeded when a seed is given, random otherwise. */
export function makeGuid(seed: string | undefined, purpose: string): string {
  return seed === undefined ? randomUUID().toUpperCase() : seededGuid(seed, purpose);
}

/** 32 bits derived from a seed (MBR disk signature, FAT volume serial). */
export function seededU32(seed: string, purpose: string): number {
  return createHash('sha256').update(`${seed}\0${purpose}`, 'utf8').digest().readUInt32LE(0);
}
