/**
 * The RPM oracles: the fixture corpus (MANIFEST.tsv, KEYS.tsv) and Debian's
 * rpm 4.18 queried with --qf. rpm prints header strings as raw bytes; they are
 * decoded here with the same rule ingot uses for JSON (UTF-8 when valid, else
 * Latin-1), so byte-identical values compare equal.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { SHARED } from './cli.js';
import { requireTool } from './tools.js';
import { decodeText } from '../../src/rpm/header.js';

export const RPMS = join(SHARED, 'fixtures', 'rpms');

export interface ManifestRow {
  file: string; path: string; compressor: string; format: string; nevra: string; numFiles: string;
  signed: string; rpmK: string; license: string; warnings: string; note: string; unparseable: boolean;
}

export function manifest(): ManifestRow[] {
  const lines = readFileSync(join(RPMS, 'MANIFEST.tsv'), 'utf8').split('\n').filter((l) => l.trim());
  const head = lines[0]!.split('\t');
  const col = (name: string) => head.indexOf(name);
  return lines.slice(1).map((l) => {
    const c = l.split('\t');
    const nevra = c[col('nevra')]!;
    return {
      file: c[0]!, path: join(RPMS, c[0]!), compressor: c[col('payload_compressor')]!, format: c[col('payload_format')]!,
      nevra, numFiles: c[col('num_files')]!, signed: c[col('signed')]!, rpmK: c[col('rpm_K')]!,
      license: c[col('license_tag')]!, warnings: c[col('rpm_warnings')]!, note: c[col('note')] ?? '',
      unparseable: nevra.startsWith('unparseable'),
    };
  });
}

export interface KeyRow { file: string; path: string; verifies: string }

export function keyRows(): KeyRow[] {
  const lines = readFileSync(join(RPMS, 'keys', 'KEYS.tsv'), 'utf8').split('\n').filter((l) => l.trim());
  const head = lines[0]!.split('\t');
  return lines.slice(1).map((l) => {
    const c = l.split('\t');
    return { file: c[0]!, path: join(RPMS, c[0]!), verifies: c[head.indexOf('verifies')]! };
  });
}

export function allKeyFiles(): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d).sort()) {
      const p = join(d, e);
      if (statSync(p).isDirectory()) walk(p);
      else if (!e.endsWith('.tsv')) out.push(p);
    }
  };
  walk(join(RPMS, 'keys'));
  return out;
}

/** `rpm -qp --nosignature --nodigest --qf FORMAT FILE` as raw bytes (throws with rpm's stderr on failure). */
export function rpmQuery(file: string, qf: string): Buffer {
  requireTool('rpm');
  const r = spawnSync('rpm', ['-qp', '--nosignature', '--nodigest', '--qf', qf, file], {
    env: { ...process.env, LC_ALL: 'C', TZ: 'UTC' }, maxBuffer: 1 << 28,
  });
  if (r.status !== 0) throw new Error(`rpm --qf failed on ${file}: ${String(r.stderr).trim()}`);
  return r.stdout;
}

/**
 * Query an array group: one record per element, fields split on \v, records on \f.
 * Each field is decoded like ingot decodes header strings.
 */
export function rpmRecords(file: string, fields: string[]): string[][] {
  const qf = `[${fields.map((f) => `%{${f}}`).join('\\v')}\\f]`;
  const out = rpmQuery(file, qf);
  const recs: string[][] = [];
  let start = 0;
  for (let i = 0; i < out.length; i++) {
    if (out[i] === 0x0c) {
      const rec = out.subarray(start, i);
      const parts: string[] = [];
      let s = 0;
      for (let j = 0; j <= rec.length; j++) {
        if (j === rec.length || rec[j] === 0x0b) { parts.push(decodeText(rec.subarray(s, j))); s = j + 1; }
      }
      recs.push(parts);
      start = i + 1;
    }
  }
  return recs;
}

/** Scalar tags: '(none)' when absent, as rpm prints it. */
export function rpmScalars(file: string, tags: string[]): Record<string, string> {
  const out = rpmQuery(file, tags.map((t) => `%{${t}}`).join('\\v'));
  const parts: string[] = [];
  let s = 0;
  for (let j = 0; j <= out.length; j++) {
    if (j === out.length || out[j] === 0x0b) { parts.push(decodeText(out.subarray(s, j))); s = j + 1; }
  }
  return Object.fromEntries(tags.map((t, i) => [t, parts[i] ?? '']));
}

const MARK = '=@@SECTION@@=';

function splitFields(b: Buffer, sep: number): string[] {
  const parts: string[] = [];
  let s = 0;
  for (let j = 0; j <= b.length; j++) {
    if (j === b.length || b[j] === sep) { parts.push(decodeText(b.subarray(s, j))); s = j + 1; }
  }
  return parts;
}

/** A section of a combined query: scalar tags (one record) or an array group (one record per element). */
export type Section = { scalars: string[] } | { records: string[] };

function sectionFormat(sec: Section): string {
  if ('scalars' in sec) return sec.scalars.map((t) => `%{${t}}`).join('\\v');
  return `[${sec.records.map((f) => `%{${f}}`).join('\\v')}\\f]`;
}

function parseSection(b: Buffer, sec: Section): string[][] {
  if ('scalars' in sec) return [splitFields(b, 0x0b)];
  const recs: string[][] = [];
  let start = 0;
  for (let i = 0; i < b.length; i++) {
    if (b[i] === 0x0c) { recs.push(splitFields(b.subarray(start, i), 0x0b)); start = i + 1; }
  }
  return recs;
}

/**
 * Several sections in one rpm call (an rpm process per section would make the
 * corpus run take minutes); falls back to one call per section if rpm refuses
 * the combination (e.g. arrays of different sizes in one group).
 */
export function rpmSections(file: string, sections: Section[]): string[][][] {
  try {
    const out = rpmQuery(file, sections.map(sectionFormat).join(MARK));
    const parts: Buffer[] = [];
    let s = 0;
    const m = Buffer.from(MARK);
    for (;;) {
      const i = out.indexOf(m, s);
      if (i < 0) { parts.push(out.subarray(s)); break; }
      parts.push(out.subarray(s, i));
      s = i + m.length;
    }
    if (parts.length === sections.length) return sections.map((sec, i) => parseSection(parts[i]!, sec));
  } catch { /* fall through */ }
  return sections.map((sec) => {
    try { return parseSection(rpmQuery(file, sectionFormat(sec)), sec); } catch { return [['(rpm error)']]; }
  });
}

/** Payload magic after rpm2cpio ('070701', '07070X', or '' when rpm2cpio fails). */
export function rpm2cpioMagic(file: string): string {
  requireTool('rpm2cpio');
  const r = spawnSync('sh', ['-c', `rpm2cpio "$1" | head -c 6`, 'sh', file], { encoding: 'latin1' });
  return r.stdout;
}
