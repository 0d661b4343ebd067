/**
 * JSON front end: a JSON document that follows `image-spec.schema.json`
 * maps straight onto the model; schema errors name the field path.
 */
import { readFileSync } from 'node:fs';
import { SpecError, normalizeSpec, type ImageSpec, type ImageSpecInput } from './model.js';

const MAX_JSON_BYTES = 64 * 1024 * 1024;

/** Parse JSON text; `file` names it in errors. */
export function parseJsonSpec(text: string, file: string): ImageSpec {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    // V8 reports "... at position N": turn it into a line number.
    const m = /position (\d+)/.exec((e as Error).message);
    const line = m ? text.slice(0, Number(m[1])).split('\n').length : undefined;
    throw new SpecError(`not valid JSON: ${(e as Error).message}`, { file, ...(line ? { line } : {}) }, 'JSON_SYNTAX');
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw new SpecError('the document must be a JSON object', { file, field: '(root)' });
  }
  return normalizeSpec(data as ImageSpecInput, file);
}

export function loadJsonSpec(path: string): ImageSpec {
  const buf = readFileSync(path);
  if (buf.length > MAX_JSON_BYTES) throw new SpecError(`JSON spec larger than ${MAX_JSON_BYTES} bytes`, { file: path }, 'JSON_TOO_LARGE');
  return parseJsonSpec(buf.toString('utf8'), path);
}
