/**
 * The index files of a compose directory:
 *
 * - `images.json`: every image with arch, type, format, path, size, sha256
 *   and SOURCE_DATE_EPOCH (schema: src/compose/images.schema.json);
 * - `CHECKSUM`: `SHA256 (path) = hex` lines, the tagged form Fedora composes
 *   publish and `sha256sum -c` reads, each after a `# path: N bytes` comment;
 * - `STATUS`: FINISHED, FINISHED_INCOMPLETE or DOOMED, as pungi marks composes.
 *
 * Both index files hold only what the images determine (no wall-clock time),
 * sorted by path, so the same compose built whole or in shards and merged
 * has byte-identical indexes.
 */
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { IngotError } from '../errors.js';
import { atomicOutput } from '../util/atomic.js';
import type { Shard } from './matrix.js';

export class ComposeMetadataError extends IngotError {}

export const IMAGES_JSON_TYPE = 'ingot.compose.images';
export const IMAGES_JSON_VERSION = '1.0';

export interface ComposeImage {
  /** File name. */
  name: string;
  arch: string;
  /** Image type (the compose's `images[].name`). */
  type: string;
  format: string;
  /** Relative to the compose directory, `/`-separated. */
  path: string;
  size: number;
  checksums: { sha256: string };
  sourceDateEpoch: number;
  /** SOURCE_DATE_EPOCH as an ISO 8601 UTC time: the time the image's contents claim. */
  buildTime: string;
}

export interface ComposeInfo {
  id: string;
  name: string;
  version: string;
  label?: string;
  /** Present only in a shard's output; a merged or unsharded compose has none. */
  shard?: Shard;
}

export interface ImagesJson {
  header: { type: typeof IMAGES_JSON_TYPE; version: typeof IMAGES_JSON_VERSION };
  compose: ComposeInfo;
  images: ComposeImage[];
}

export type ComposeStatus = 'FINISHED' | 'FINISHED_INCOMPLETE' | 'DOOMED';

export function byPath(a: { path: string }, b: { path: string }): number {
  return a.path < b.path ? -1 : a.path > b.path ? 1 : 0;
}

export function imagesJsonText(compose: ComposeInfo, images: ComposeImage[]): string {
  const doc: ImagesJson = { header: { type: IMAGES_JSON_TYPE, version: IMAGES_JSON_VERSION }, compose, images: [...images].sort(byPath) };
  return JSON.stringify(doc, null, 2) + '\n';
}

export function checksumText(images: { path: string; size: number; checksums: { sha256: string } }[]): string {
  return [...images].sort(byPath).map((i) => `# ${i.path}: ${i.size} bytes\nSHA256 (${i.path}) = ${i.checksums.sha256}\n`).join('');
}

/** Write images.json and CHECKSUM (each atomically); STATUS last, so FINISHED means both are in place. */
export async function writeComposeIndex(dir: string, compose: ComposeInfo, images: ComposeImage[], status: ComposeStatus): Promise<void> {
  await atomicOutput(join(dir, 'images.json'), (tmp) => writeFile(tmp, imagesJsonText(compose, images)));
  await atomicOutput(join(dir, 'CHECKSUM'), (tmp) => writeFile(tmp, checksumText(images)));
  await writeStatus(dir, status);
}

export function writeStatus(dir: string, status: ComposeStatus): Promise<void> {
  return atomicOutput(join(dir, 'STATUS'), (tmp) => writeFile(tmp, `${status}\n`));
}

const HEX64 = /^[0-9a-f]{64}$/;

function bad(file: string, field: string, message: string): never {
  throw new ComposeMetadataError('IMAGES_JSON_INVALID', message, { file, field });
}

/** Read a compose directory's images.json, checking the shape merge relies on. */
export function readImagesJson(file: string): ImagesJson {
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new ComposeMetadataError('IMAGES_JSON_UNREADABLE', `cannot read images.json (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, { file });
  }
  const d = doc as Partial<ImagesJson>;
  if (d?.header?.type !== IMAGES_JSON_TYPE || d.header.version !== IMAGES_JSON_VERSION) bad(file, 'header', `not an ingot images.json ${IMAGES_JSON_VERSION}`);
  const c = d.compose;
  if (!c || typeof c.id !== 'string' || typeof c.name !== 'string' || typeof c.version !== 'string') bad(file, 'compose', 'compose id/name/version missing');
  if (c.shard !== undefined && !(Number.isInteger(c.shard.index) && Number.isInteger(c.shard.count) && c.shard.index >= 0 && c.shard.index < c.shard.count)) bad(file, 'compose.shard', 'bad shard');
  if (!Array.isArray(d.images)) bad(file, 'images', 'must be an array');
  d.images.forEach((i, n) => {
    const f = `images[${n}]`;
    for (const k of ['name', 'arch', 'type', 'format', 'path', 'buildTime'] as const) if (typeof i?.[k] !== 'string') bad(file, `${f}.${k}`, 'must be a string');
    if (!Number.isSafeInteger(i.size) || i.size < 0) bad(file, `${f}.size`, 'must be a byte count');
    if (!Number.isSafeInteger(i.sourceDateEpoch)) bad(file, `${f}.sourceDateEpoch`, 'must be an integer');
    if (!HEX64.test(i.checksums?.sha256 ?? '')) bad(file, `${f}.checksums.sha256`, 'must be 64 hex digits');
    // Paths stay inside the compose directory.
    if (i.path.startsWith('/') || i.path.split('/').some((s) => s === '..' || s === '' || s === '.')) bad(file, `${f}.path`, `path ${JSON.stringify(i.path)} leaves the compose directory`);
  });
  return d as ImagesJson;
}
