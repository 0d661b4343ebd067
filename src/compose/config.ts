/**
 * COMPOSE.json: the matrix a compose builds (docs/compose.md).
 *
 *   { "name": "Fedora-Cloud", "version": "41", "label": "1.4",
 *     "arches": ["x86_64", "i686"],
 *     "repos": [{ "name": "everything", "baseurl": ["repo/$basearch"] }],
 *     "images": [{ "name": "generic", "spec": "generic.ks", "formats": ["qcow2", "raw.xz"] },
 *                { "name": "ec2", "spec": { …inline JSON spec… }, "formats": ["raw"] }],
 *     "sourceDateEpoch": 1700000000, "seed": "f41-rc1" }
 *
 * Parsing is strict: an unknown key, a wrong type or a bad value is a
 * ComposeConfigError naming the field (`images[1].formats[0]`).
 */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { IngotError } from '../errors.js';
import { parseFormatName, type FormatName } from '../../formats/index.js';
import type { Arch, ImageSpecInput, Repository } from '../spec/model.js';

export class ComposeConfigError extends IngotError {}

/** Largest COMPOSE.json read (it names specs; it does not hold images). */
const MAX_CONFIG_BYTES = 4 << 20;
export const ARCHES: readonly Arch[] = ['x86_64', 'aarch64', 'i686', 'i386', 'ppc64le', 'ppc64', 's390x', 'riscv64', 'armv7hl'];
/** Names become parts of file names: no separators, no leading dot. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$/;

export interface ComposeImageType {
  name: string;
  /** Absolute path of a .ks/.tdl/.xml/.json spec, or an inline JSON spec. */
  spec: string | ImageSpecInput;
  formats: FormatName[];
  /** Limit this image type to some of the compose's arches. */
  arches?: Arch[];
  /** Kickstart leniency for unknown commands. */
  lenient?: boolean;
  /** Files owned by users/groups the image does not define become root with a warning (`ingot build --lenient-owners`). */
  lenientOwners?: boolean;
}

export interface ComposeConfig {
  name: string;
  version: string;
  label?: string;
  arches: Arch[];
  /** Repositories added to every image's own; `$basearch`/`$arch` are substituted per arch. Local paths are absolute. */
  repos: Repository[];
  images: ComposeImageType[];
  /** A fixed SOURCE_DATE_EPOCH; absent: the SOURCE_DATE_EPOCH environment variable, else each image's newest package. */
  sourceDateEpoch?: number;
  /** Seed for UUIDs; each image's derives from it and its arch/type. Absent: derived from spec and packages. */
  seed?: string;
  /** Directory relative paths were resolved against (the compose file's). */
  baseDir: string;
  file: string;
}

type Obj = Record<string, unknown>;

function fail(file: string, field: string, message: string, code = 'COMPOSE_INVALID', extra: { expected?: string; actual?: string } = {}): never {
  throw new ComposeConfigError(code, message, { file, field, ...extra });
}

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function onlyKeys(file: string, field: string, o: Obj, keys: string[]): void {
  for (const k of Object.keys(o)) {
    if (!keys.includes(k)) fail(file, field ? `${field}.${k}` : k, `unknown key ${JSON.stringify(k)}`, 'COMPOSE_UNKNOWN_KEY', { expected: keys.join(', ') });
  }
}

function str(file: string, field: string, v: unknown, pattern?: RegExp): string {
  if (typeof v !== 'string' || v.length === 0) fail(file, field, 'must be a non-empty string', 'COMPOSE_INVALID', { actual: JSON.stringify(v) ?? 'undefined' });
  if (pattern && !pattern.test(v)) fail(file, field, `${JSON.stringify(v)} is not a valid name (letters, digits, . _ + -)`, 'COMPOSE_BAD_NAME', { actual: v });
  return v;
}

function list(file: string, field: string, v: unknown): unknown[] {
  if (!Array.isArray(v) || v.length === 0) fail(file, field, 'must be a non-empty array', 'COMPOSE_INVALID', { actual: JSON.stringify(v) ?? 'undefined' });
  return v;
}

function unique<T>(file: string, field: string, xs: T[]): T[] {
  const seen = new Set<T>();
  xs.forEach((x, i) => {
    if (seen.has(x)) fail(file, `${field}[${i}]`, `duplicate ${JSON.stringify(x)}`, 'COMPOSE_DUPLICATE');
    seen.add(x);
  });
  return xs;
}

function arches(file: string, field: string, v: unknown): Arch[] {
  return unique(file, field, list(file, field, v).map((a, i) => {
    const s = str(file, `${field}[${i}]`, a);
    if (!ARCHES.includes(s as Arch)) fail(file, `${field}[${i}]`, `unknown architecture ${JSON.stringify(s)}`, 'COMPOSE_BAD_ARCH', { expected: ARCHES.join(', '), actual: s });
    return s as Arch;
  }));
}

/** A repository's local baseurl is relative to the compose file; URLs pass through. */
function absUrl(base: string, u: string): string {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(u) || isAbsolute(u) ? u : resolve(base, u);
}

function repos(file: string, base: string, v: unknown): Repository[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) fail(file, 'repos', 'must be an array');
  return v.map((r, i) => {
    const f = `repos[${i}]`;
    if (!isObj(r)) fail(file, f, 'must be an object');
    onlyKeys(file, f, r, ['name', 'baseurl', 'mirrorlist', 'metalink', 'cost', 'includepkgs', 'excludepkgs', 'gpgcheck', 'gpgkey']);
    const name = str(file, `${f}.name`, r.name, NAME);
    const urls = r.baseurl === undefined ? undefined : (typeof r.baseurl === 'string' ? [r.baseurl] : list(file, `${f}.baseurl`, r.baseurl))
      .map((u, j) => absUrl(base, str(file, `${f}.baseurl[${j}]`, u)));
    if (!urls && r.mirrorlist === undefined && r.metalink === undefined) fail(file, f, 'needs a baseurl, mirrorlist or metalink', 'COMPOSE_REPO_NO_URL');
    const strings = (k: string): string[] | undefined => r[k] === undefined ? undefined : list(file, `${f}.${k}`, r[k]).map((x, j) => str(file, `${f}.${k}[${j}]`, x));
    if (r.cost !== undefined && !(Number.isInteger(r.cost) && (r.cost as number) >= 0)) fail(file, `${f}.cost`, 'must be a whole number ≥ 0');
    if (r.gpgcheck !== undefined && typeof r.gpgcheck !== 'boolean') fail(file, `${f}.gpgcheck`, 'must be true or false');
    return {
      name, ...(urls ? { baseurl: urls } : {}),
      ...(r.mirrorlist !== undefined ? { mirrorlist: str(file, `${f}.mirrorlist`, r.mirrorlist) } : {}),
      ...(r.metalink !== undefined ? { metalink: str(file, `${f}.metalink`, r.metalink) } : {}),
      ...(r.cost !== undefined ? { cost: r.cost as number } : {}),
      ...(strings('includepkgs') ? { includepkgs: strings('includepkgs') } : {}),
      ...(strings('excludepkgs') ? { excludepkgs: strings('excludepkgs') } : {}),
      ...(r.gpgcheck !== undefined ? { gpgcheck: r.gpgcheck as boolean } : {}),
      ...(strings('gpgkey') ? { gpgkey: strings('gpgkey') } : {}),
    };
  });
}

function images(file: string, base: string, v: unknown, composeArches: Arch[]): ComposeImageType[] {
  const out = list(file, 'images', v).map((x, i): ComposeImageType => {
    const f = `images[${i}]`;
    if (!isObj(x)) fail(file, f, 'must be an object');
    onlyKeys(file, f, x, ['name', 'spec', 'formats', 'arches', 'lenient', 'lenientOwners']);
    const name = str(file, `${f}.name`, x.name, NAME);
    let spec: ComposeImageType['spec'];
    if (typeof x.spec === 'string') spec = resolve(base, str(file, `${f}.spec`, x.spec));
    else if (isObj(x.spec)) spec = x.spec as ImageSpecInput;
    else fail(file, `${f}.spec`, 'must be a spec path (relative to the compose file) or an inline JSON spec object', 'COMPOSE_INVALID', { actual: JSON.stringify(x.spec) ?? 'undefined' });
    const formats = unique(file, `${f}.formats`, list(file, `${f}.formats`, x.formats).map((y, j) => {
      const s = str(file, `${f}.formats[${j}]`, y);
      try { return parseFormatName(s); } catch { return fail(file, `${f}.formats[${j}]`, `unknown output format ${JSON.stringify(s)}`, 'COMPOSE_BAD_FORMAT', { actual: s }); }
    }));
    const only = x.arches === undefined ? undefined : arches(file, `${f}.arches`, x.arches);
    only?.forEach((a, j) => { if (!composeArches.includes(a)) fail(file, `${f}.arches[${j}]`, `${a} is not one of the compose's arches`, 'COMPOSE_BAD_ARCH'); });
    for (const k of ['lenient', 'lenientOwners'] as const) if (x[k] !== undefined && typeof x[k] !== 'boolean') fail(file, `${f}.${k}`, 'must be true or false');
    return { name, spec, formats, ...(only ? { arches: only } : {}), ...(x.lenient ? { lenient: true } : {}), ...(x.lenientOwners ? { lenientOwners: true } : {}) };
  });
  unique(file, 'images', out.map((t) => t.name));
  return out;
}

/** Validate a parsed COMPOSE.json document; `file` names it in errors and anchors relative paths. */
export function parseComposeConfig(data: unknown, file: string): ComposeConfig {
  const base = dirname(resolve(file));
  if (!isObj(data)) fail(file, '(root)', 'the document must be a JSON object');
  onlyKeys(file, '', data, ['name', 'version', 'label', 'arches', 'repos', 'images', 'sourceDateEpoch', 'seed', '$schema', 'description']);
  const name = str(file, 'name', data.name, NAME);
  const version = str(file, 'version', data.version, NAME);
  const label = data.label === undefined ? undefined : str(file, 'label', data.label, NAME);
  const archList = arches(file, 'arches', data.arches);
  const sde = data.sourceDateEpoch;
  if (sde !== undefined && !(typeof sde === 'number' && Number.isInteger(sde) && sde >= 0 && sde < 2 ** 40)) {
    fail(file, 'sourceDateEpoch', 'must be a whole number of seconds since 1970', 'COMPOSE_BAD_EPOCH', { actual: JSON.stringify(sde) });
  }
  const seed = data.seed === undefined ? undefined : str(file, 'seed', data.seed);
  return {
    name, version, ...(label ? { label } : {}), arches: archList,
    repos: repos(file, base, data.repos), images: images(file, base, data.images, archList),
    ...(sde !== undefined ? { sourceDateEpoch: sde as number } : {}), ...(seed ? { seed } : {}),
    baseDir: base, file: resolve(file),
  };
}

/** Read and validate COMPOSE.json. */
export function loadComposeConfig(path: string): ComposeConfig {
  let text: string;
  try {
    const buf = readFileSync(path);
    if (buf.length > MAX_CONFIG_BYTES) fail(path, '(root)', `compose file larger than ${MAX_CONFIG_BYTES} bytes`, 'COMPOSE_TOO_LARGE');
    text = buf.toString('utf8');
  } catch (e) {
    if (e instanceof ComposeConfigError) throw e;
    throw new ComposeConfigError('COMPOSE_UNREADABLE', `cannot read the compose file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, { file: path });
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    const m = /position (\d+)/.exec((e as Error).message);
    const line = m ? text.slice(0, Number(m[1])).split('\n').length : undefined;
    throw new ComposeConfigError('COMPOSE_JSON_SYNTAX', `not valid JSON: ${(e as Error).message}`, { file: path, ...(line ? { line } : {}) });
  }
  return parseComposeConfig(data, path);
}
