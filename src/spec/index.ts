/**
 * `loadSpec(path)`: read an image definition whatever its front end —
 * kickstart (.ks/.cfg), TDL (.tdl/.xml) or JSON (.json) — chosen by
 * extension, or by content when the extension says nothing.
 */
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { SpecError, type ImageSpec } from './model.js';
import { parseKickstart } from './kickstart.js';
import { parseTdl } from './tdl.js';
import { parseJsonSpec } from './json.js';

export type SpecFormat = 'kickstart' | 'tdl' | 'json';
export interface LoadSpecOptions {
  /** Unknown kickstart commands/options and TDL elements become warnings. */
  lenient?: boolean;
  /** Force the front end instead of guessing. */
  format?: SpecFormat;
}

const MAX_SPEC_BYTES = 64 * 1024 * 1024;

/** Which front end reads `text` (named `path`). */
export function detectSpecFormat(path: string, text: string): SpecFormat {
  const ext = extname(path).toLowerCase();
  if (ext === '.ks' || ext === '.cfg') return 'kickstart';
  if (ext === '.tdl' || ext === '.xml') return 'tdl';
  if (ext === '.json') return 'json';
  const head = text.replace(/^\uFEFF/, '').trimStart();
  if (head.startsWith('{')) return 'json';
  if (head.startsWith('<')) return 'tdl';
  return 'kickstart';
}

export function loadSpec(path: string, opts: LoadSpecOptions = {}): ImageSpec {
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (e) {
    throw new SpecError(`cannot read the image definition (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, { file: path }, 'SPEC_UNREADABLE');
  }
  if (buf.length > MAX_SPEC_BYTES) throw new SpecError(`image definition larger than ${MAX_SPEC_BYTES} bytes`, { file: path }, 'SPEC_TOO_LARGE');
  const text = buf.toString('utf8');
  const format = opts.format ?? detectSpecFormat(path, text);
  const lenient = opts.lenient ? { lenient: true } : {};
  switch (format) {
    case 'kickstart': return parseKickstart(text, path, lenient);
    case 'tdl': return parseTdl(text, path, lenient);
    case 'json': return parseJsonSpec(text, path);
  }
}

export { parseKickstart, loadKickstart, kickstartIncludes } from './kickstart.js';
export { parseTdl, loadTdl } from './tdl.js';
export { parseJsonSpec, loadJsonSpec } from './json.js';
export * from './model.js';
