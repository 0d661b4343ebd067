/**
 * TDL front end: Oz/ImageFactory template XML (Oz `oz/tdl.rng`, `oz/TDL.py`)
 * into an {@link ImageSpec}. The checks follow what Oz enforces — one
 * `<template>`, required name/os/name/version/arch/install, one install of
 * type url or iso, at most one ISO checksum, named packages/files/commands/
 * repositories, raw/base64/url content, command `position` ordering, Oz's
 * disk-size units — so templates Oz rejects are rejected here too, with the
 * element path in the error. `<commands>` are kept as scripts and reported.
 */
import { readFileSync } from 'node:fs';
import { parseString } from 'xml2js';
import { SpecError, normalizeSpec, type ImageSpec, type ImageSpecInput, type Script, type Arch } from './model.js';

export interface TdlOptions {
  /** Accept templates without `<name>`/`<os>` (command-only fragments) and unknown elements, with warnings. */
  lenient?: boolean;
}

/** xml2js node with `explicitCharkey`: text under `_`, attributes under `$`. */
interface XNode { _?: string; $?: Record<string, string>; [child: string]: XNode[] | string | Record<string, string> | undefined }

const MAX_TDL_BYTES = 64 * 1024 * 1024;

class TdlError extends SpecError {
  constructor(message: string, file: string, field: string, actual?: string) {
    super(message, { file, field, ...(actual !== undefined ? { actual: JSON.stringify(actual.length > 80 ? actual.slice(0, 77) + '...' : actual) } : {}) }, 'TDL_INVALID');
  }
}

const kids = (n: XNode | undefined, name: string): XNode[] => {
  const v = n?.[name];
  return Array.isArray(v) ? v : [];
};

/** Oz's `string_to_bool`: yes/true/no/false in any case. */
function toBool(v: string | undefined): boolean | undefined {
  if (v === undefined) return undefined;
  const s = v.trim().toLowerCase();
  if (s === 'yes' || s === 'true') return true;
  if (s === 'no' || s === 'false') return false;
  return undefined;
}

const ARCHES: Record<string, Arch> = { i386: 'i386', x86_64: 'x86_64', ppc64: 'ppc64', ppc64le: 'ppc64le', aarch64: 'aarch64', armv7l: 'armv7hl', s390x: 's390x' };

const KNOWN: Record<string, string[]> = {
  template: ['name', 'os', 'description', 'packages', 'repositories', 'files', 'commands', 'precommands', 'disk'],
  os: ['name', 'version', 'arch', 'install', 'rootpw', 'key', 'icicle', 'kernelparam', 'password'],
};

/** Oz's disk size rule: digits then an optional SI/IEC suffix; bare numbers and G/T mean GiB/TiB. */
export function parseTdlDiskSize(text: string, file: string): number {
  const s = text.replace(/ /g, '').toLowerCase();
  const m = /^(\d*)(.*)$/.exec(s)!;
  const units: Record<string, number> = { b: 1, g: 2 ** 30, t: 2 ** 40 };
  ['k', 'm', 'g', 't', 'p', 'e', 'z', 'y'].forEach((p, i) => { units[`${p}b`] = 10 ** (3 * (i + 1)); units[`${p}ib`] = 2 ** (10 * (i + 1)); });
  const factor = units[m[2] || 'gib'];
  if (!m[1] || !factor) throw new TdlError("invalid disk size; expected an integer with an optional SI or IEC suffix such as '10TB' or '16GiB'", file, 'template/disk/size', text);
  return Number(m[1]) * factor;
}

function isBase64(s: string): boolean {
  const t = s.replace(/\s+/g, '');
  return t.length % 4 === 0 && /^[A-Za-z0-9+/]*={0,2}$/.test(t);
}

/** Parse TDL XML text; `file` names it in errors. */
export function parseTdl(xml: string, file: string, opts: TdlOptions = {}): ImageSpec {
  let doc: Record<string, XNode> | undefined;
  let parseErr: Error | undefined;
  // xml2js calls back synchronously when `async` is off (its default).
  try {
    parseString(xml, { explicitCharkey: true, explicitArray: true, trim: false, normalize: false }, (err: Error | null, res: Record<string, XNode>) => {
      if (err) parseErr = err; else doc = res;
    });
  } catch (e) {
    // sax errors after the first can escape parseString synchronously.
    parseErr ??= e as Error;
  }
  if (parseErr) throw new TdlError(`not well-formed XML: ${parseErr.message.split('\n').join(' ')}`, file, '(document)');
  if (!doc) throw new TdlError('empty document', file, '(document)');
  const warnings: string[] = [];
  const rootName = Object.keys(doc)[0]!;
  if (rootName !== 'template') throw new TdlError('the root element must be <template>', file, rootName);
  // xml2js turns an empty element into '' rather than an object.
  const t: XNode = typeof doc.template === 'object' && doc.template !== null ? doc.template : {};
  const version = t.$?.version;
  if (version !== undefined && !(Number(version) <= 1.0)) throw new TdlError('TDL version is higher than 1.0, the newest known', file, 'template@version', version);
  const lenient = !!opts.lenient;
  const unknown = (path: string, node: XNode, known: string[]): void => {
    for (const k of Object.keys(node)) {
      if (k === '_' || k === '$' || known.includes(k)) continue;
      if (lenient) warnings.push(`${file}: unknown element <${k}> in ${path} ignored`);
      else throw new TdlError(`unknown element <${k}>`, file, `${path}/${k}`);
    }
  };
  /** The single text child `name` of `node`; `undefined` when optional and absent. */
  const one = (node: XNode | undefined, name: string, path: string, optional: boolean): string | undefined => {
    const k = kids(node, name);
    if (k.length > 1) throw new TdlError(`expected at most one <${name}>, saw ${k.length}`, file, `${path}/${name}`);
    if (k.length === 0) {
      if (optional) return undefined;
      throw new TdlError(`missing <${name}>`, file, `${path}/${name}`);
    }
    return (k[0]!._ ?? '').trim();
  };
  unknown('template', t, KNOWN.template!);
  const input: ImageSpecInput = { scripts: [], warnings };
  const name = one(t, 'name', 'template', lenient);
  if (name !== undefined) {
    if (!name) throw new TdlError('empty template name', file, 'template/name');
    input.name = name.replace(/[^A-Za-z0-9_.+-]+/g, '-');
  }
  const description = one(t, 'description', 'template', true);
  if (description) input.description = description;

  const oses = kids(t, 'os');
  if (oses.length > 1) throw new TdlError(`expected one <os>, saw ${oses.length}`, file, 'template/os');
  const os = oses[0];
  if (!os && !lenient) throw new TdlError('missing <os>', file, 'template/os');
  if (os) parseOs(os, input, file, one, unknown, warnings);

  // Packages
  const pk = kids(kids(t, 'packages')[0], 'package');
  pk.forEach((p, i) => {
    const pn = p.$?.name;
    if (!pn) throw new TdlError('package without a name', file, `template/packages/package[${i + 1}]@name`);
    for (const extra of ['repository', 'file', 'arguments']) {
      if (kids(p, extra).length) warnings.push(`${file}: package ${pn}: <${extra}> is ignored (packages come from the resolved repositories)`);
    }
    (input.packages ??= {}).include = [...(input.packages.include ?? []), pn];
  });

  // Repositories
  kids(kids(t, 'repositories')[0], 'repository').forEach((r, i) => {
    const path = `template/repositories/repository[${i + 1}]`;
    const rn = r.$?.name;
    if (!rn) throw new TdlError('repository without a name', file, `${path}@name`);
    const url = one(r, 'url', path, false)!;
    // Oz refuses localhost repositories because its guest fetches them; ingot fetches on the host, so they work.
    const flagOf = (k: string, dflt: boolean): boolean => {
      const v = one(r, k, path, true);
      if (v === undefined) return dflt;
      const b = toBool(v);
      if (b === undefined) throw new TdlError(`<${k}> must be true, yes, false or no`, file, `${path}/${k}`, v);
      return b;
    };
    const repo = { name: rn.replace(/[^A-Za-z0-9_.:-]+/g, '-'), baseurl: [url], gpgcheck: flagOf('signed', false), install: flagOf('persisted', true), sslverify: flagOf('sslverify', false) };
    input.repositories = [...(input.repositories ?? []).filter((x) => x.name !== repo.name), repo];
  });

  // Files
  kids(kids(t, 'files')[0], 'file').forEach((f, i) => {
    const path = `template/files/file[${i + 1}]`;
    const fname = f.$?.name;
    if (!fname) throw new TdlError('file without a name', file, `${path}@name`);
    const type = f.$?.type ?? 'raw';
    const content = (f._ ?? '').trim();
    const dest = fname.startsWith('/') ? fname : `/${fname}`;
    if (type === 'raw') (input.files ??= []).push({ kind: 'inline', path: dest, content, encoding: 'utf8' });
    else if (type === 'base64') {
      if (!isBase64(content)) throw new TdlError('invalid base64 content', file, path, content);
      (input.files ??= []).push({ kind: 'inline', path: dest, content: content.replace(/\s+/g, ''), encoding: 'base64' });
    } else if (type === 'url') (input.files ??= []).push({ kind: 'host', path: dest, source: content });
    else throw new TdlError("type must be 'raw', 'url' or 'base64'", file, `${path}@type`, type);
  });

  // Commands (after install) and precommands (Oz runs them before).
  for (const [section, phase] of [['commands', 'command'], ['precommands', 'pre']] as const) {
    input.scripts!.push(...parseCommands(kids(kids(t, section)[0], 'command'), `template/${section}`, phase, file));
  }

  // Disk
  const disk = kids(t, 'disk')[0];
  if (disk) {
    const size = one(disk, 'size', 'template/disk', true);
    if (size !== undefined) input.disk = { size: parseTdlDiskSize(size, file) };
  }
  return normalizeSpec(input, file);
}

function parseOs(
  os: XNode, input: ImageSpecInput, file: string,
  one: (n: XNode | undefined, name: string, path: string, optional: boolean) => string | undefined,
  unknown: (path: string, node: XNode, known: string[]) => void, warnings: string[],
): void {
  unknown('template/os', os, KNOWN.os!);
  const osName = one(os, 'name', 'template/os', false)!;
  const osVersion = one(os, 'version', 'template/os', false)!;
  input.os = { name: osName, version: osVersion };
  const archText = one(os, 'arch', 'template/os', false)!;
  const arch = ARCHES[archText];
  if (!arch) throw new TdlError(`architecture must be one of ${Object.keys(ARCHES).join(', ')}`, file, 'template/os/arch', archText);
  input.arch = arch;
  const installs = kids(os, 'install');
  if (installs.length !== 1) throw new TdlError(`expected one <install>, saw ${installs.length}`, file, 'template/os/install');
  const inst = installs[0]!;
  const type = inst.$?.type;
  if (type === 'url') {
    const url = one(inst, 'url', 'template/os/install', false)!;
    input.repositories = [{ name: 'install', baseurl: [url], installSource: true }];
  } else if (type === 'iso') {
    const iso = one(inst, 'iso', 'template/os/install', false)!;
    const sums = ['md5sum', 'sha1sum', 'sha256sum'].filter((k) => one(inst, k, 'template/os/install', true) !== undefined);
    if (sums.length > 1) throw new TdlError('only one of <md5sum>, <sha1sum>, <sha256sum> may be given', file, `template/os/install/${sums[1]}`);
    input.repositories = [{ name: 'install', iso, installSource: true }];
  } else if (type === undefined) {
    throw new TdlError('missing install type', file, 'template/os/install@type');
  } else {
    throw new TdlError("install type must be 'url' or 'iso'", file, 'template/os/install@type', type);
  }
  if (kids(inst, 'extras').length) {
    if (type !== 'iso') throw new TdlError('extra ISO data can only be used with the iso install type', file, 'template/os/install/extras');
    input.ignored = [...(input.ignored ?? []), { directive: 'template/os/install/extras', file, reason: 'installer ISO extras have no meaning without an installer' }];
  }
  const rootpw = one(os, 'rootpw', 'template/os', true) ?? one(os, 'password', 'template/os', true);
  if (kids(os, 'password').length) warnings.push(`${file}: <os><password> is not TDL; read as <rootpw>`);
  if (rootpw !== undefined) input.root = { password: { plain: rootpw }, lock: false };
  const kp = one(os, 'kernelparam', 'template/os', true);
  if (kp) input.bootloader = { kernelArgs: kp.split(/\s+/).filter(Boolean) };
  for (const k of ['key', 'icicle']) {
    if (kids(os, k).length) input.ignored = [...(input.ignored ?? []), { directive: `template/os/${k}`, file, reason: k === 'key' ? 'product key for Windows installs' : 'icicle package manifests are produced by the build report' }];
  }
}

/** Oz's ordering rule: all commands have a `position` (1..n, no gaps or duplicates) or none does. */
function parseCommands(cmds: XNode[], path: string, phase: Script['phase'], file: string): Script[] {
  const items = cmds.map((c, i) => {
    const at = `${path}/command[${i + 1}]`;
    const cname = c.$?.name;
    if (!cname) throw new TdlError('command without a name', file, `${at}@name`);
    const type = c.$?.type ?? 'raw';
    const content = (c._ ?? '').trim();
    if (!content) throw new TdlError('empty commands are not allowed', file, at);
    const s: Script = { phase, interpreter: '/bin/sh', body: '', nochroot: false, errorOnFail: true, name: cname, file };
    if (type === 'raw') s.body = content + '\n';
    else if (type === 'base64') {
      if (!isBase64(content)) throw new TdlError('invalid base64 content', file, at, content);
      s.body = Buffer.from(content, 'base64').toString('utf8');
    } else if (type === 'url') s.url = content;
    else throw new TdlError("type must be 'raw', 'url' or 'base64'", file, `${at}@type`, type);
    const pos = c.$?.position;
    if (pos !== undefined && !/^\s*[+-]?\d+\s*$/.test(pos)) throw new TdlError('position must be an integer', file, `${at}@position`, pos);
    return { pos: pos === undefined ? undefined : Number(pos), s, at };
  });
  if (!items.some((x) => x.pos !== undefined)) return items.map((x) => x.s);
  const sorted = items.slice().sort((a, b) => (a.pos ?? -Infinity) - (b.pos ?? -Infinity));
  sorted.forEach((x, i) => {
    if (x.pos === undefined) throw new TdlError('all commands must have a position, or none of them', file, `${x.at}@position`);
    if (x.pos !== i + 1) throw new TdlError('command positions must run 1, 2, 3, … without duplicates or gaps', file, `${x.at}@position`, String(x.pos));
  });
  return sorted.map((x) => x.s);
}

/** Read and parse a TDL file. */
export function loadTdl(path: string, opts: TdlOptions = {}): ImageSpec {
  const buf = readFileSync(path);
  if (buf.length > MAX_TDL_BYTES) throw new SpecError(`TDL larger than ${MAX_TDL_BYTES} bytes`, { file: path }, 'TDL_TOO_LARGE');
  return parseTdl(buf.toString('utf8'), path, opts);
}
