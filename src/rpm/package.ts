/**
 * The package model read from a main header: NEVRA, descriptive tags,
 * dependencies, scriptlets, triggers and the file list. Pure functions of a
 * {@link Header}; arrays that must run in parallel are checked to.
 */
import { RpmFormatError } from './errors.js';
import { Header, decodeText } from './header.js';
import { FileFlag, HashAlgo, Sense, Tag, TagType } from './tags.js';

export interface Dependency {
  name: string;
  /** rpmsenseFlags: comparison bits plus context (pre/post/interp/…) bits. */
  flags: number;
  /** EVR text, '' when unversioned. Rich (boolean) dependencies keep their text in `name`. */
  version: string;
}

export const DEPENDENCY_KINDS = ['requires', 'provides', 'conflicts', 'obsoletes', 'recommends', 'suggests', 'supplements', 'enhances'] as const;
export type DependencyKind = (typeof DEPENDENCY_KINDS)[number];

const DEP_TAGS: Record<DependencyKind, [number, number, number]> = {
  requires: [Tag.REQUIRENAME, Tag.REQUIREFLAGS, Tag.REQUIREVERSION],
  provides: [Tag.PROVIDENAME, Tag.PROVIDEFLAGS, Tag.PROVIDEVERSION],
  conflicts: [Tag.CONFLICTNAME, Tag.CONFLICTFLAGS, Tag.CONFLICTVERSION],
  obsoletes: [Tag.OBSOLETENAME, Tag.OBSOLETEFLAGS, Tag.OBSOLETEVERSION],
  recommends: [Tag.RECOMMENDNAME, Tag.RECOMMENDFLAGS, Tag.RECOMMENDVERSION],
  suggests: [Tag.SUGGESTNAME, Tag.SUGGESTFLAGS, Tag.SUGGESTVERSION],
  supplements: [Tag.SUPPLEMENTNAME, Tag.SUPPLEMENTFLAGS, Tag.SUPPLEMENTVERSION],
  enhances: [Tag.ENHANCENAME, Tag.ENHANCEFLAGS, Tag.ENHANCEVERSION],
};

export interface Script {
  /** Script text; null when the scriptlet is only an interpreter (e.g. `%post -p /sbin/ldconfig`). */
  body: string | null;
  /** Interpreter and its arguments joined by spaces; null when absent (rpm then uses /bin/sh). */
  interpreter: string | null;
  /** rpmscriptFlags (expand, qformat, critical). */
  flags: number;
}

export const SCRIPT_KINDS = {
  pretrans: [Tag.PRETRANS, Tag.PRETRANSPROG, Tag.PRETRANSFLAGS],
  pre: [Tag.PREIN, Tag.PREINPROG, Tag.PREINFLAGS],
  post: [Tag.POSTIN, Tag.POSTINPROG, Tag.POSTINFLAGS],
  preun: [Tag.PREUN, Tag.PREUNPROG, Tag.PREUNFLAGS],
  postun: [Tag.POSTUN, Tag.POSTUNPROG, Tag.POSTUNFLAGS],
  posttrans: [Tag.POSTTRANS, Tag.POSTTRANSPROG, Tag.POSTTRANSFLAGS],
  preuntrans: [Tag.PREUNTRANS, Tag.PREUNTRANSPROG, Tag.PREUNTRANSFLAGS],
  postuntrans: [Tag.POSTUNTRANS, Tag.POSTUNTRANSPROG, Tag.POSTUNTRANSFLAGS],
  verify: [Tag.VERIFYSCRIPT, Tag.VERIFYSCRIPTPROG, Tag.VERIFYSCRIPTFLAGS],
} as const;
export type ScriptKind = keyof typeof SCRIPT_KINDS;

export interface TriggerCondition { name: string; flags: number; version: string }

export interface Trigger extends Script {
  /** triggerprein / triggerin / triggerun / triggerpostun, from the condition flags. */
  type: string;
  /** Index of the script in TRIGGERSCRIPTS. */
  index: number;
  /** File triggers only: priority (default 1000000 in rpm). */
  priority?: number;
  conditions: TriggerCondition[];
}

export interface ChangelogEntry { time: number; name: string; text: string }

export interface FileInfo {
  index: number;
  path: string;
  /** The path's bytes as stored (headers need not be UTF-8). */
  rawPath: Uint8Array;
  mode: number;
  user: string;
  group: string;
  size: number;
  mtime: number;
  /** Hex digest ('' for non-regular files). */
  digest: string;
  /** FILEDIGESTALGO name ('md5' when the tag is absent). */
  digestAlgo: string;
  linkTo: string;
  flags: number;
  verifyFlags: number;
  rdev: number;
  inode: number;
  device: number;
  lang: string;
  /** Text form of the file capabilities; null when none. */
  caps: string | null;
}

export interface PackageInfo {
  name: string;
  epoch: number | null;
  version: string;
  release: string;
  arch: string;
  nevra: string;
  sourcePackage: boolean;
  sourcerpm: string | null;
  summary: string;
  description: string;
  license: string;
  group: string | null;
  url: string | null;
  vendor: string | null;
  packager: string | null;
  buildtime: number | null;
  buildhost: string | null;
  os: string | null;
  rpmversion: string | null;
  /** PAYLOADCOMPRESSOR tag; null when absent (the payload is then recognised by its magic). */
  payloadCompressor: string | null;
  payloadFormat: string | null;
  /** rpm 6 package format (RPMFORMAT tag): 4 or 6; 4 when absent. */
  format: number;
  requires: Dependency[];
  provides: Dependency[];
  conflicts: Dependency[];
  obsoletes: Dependency[];
  recommends: Dependency[];
  suggests: Dependency[];
  supplements: Dependency[];
  enhances: Dependency[];
  scripts: Partial<Record<ScriptKind, Script>>;
  triggers: Trigger[];
  fileTriggers: Trigger[];
  transFileTriggers: Trigger[];
  changelog: ChangelogEntry[];
}

function err(h: Header, msg: string, field: string, expected?: string, actual?: string): RpmFormatError {
  return new RpmFormatError('BAD_HEADER', msg, { file: h.location.file, offset: h.location.offset, field, expected, actual });
}

/** Values of a per-item tag, checked to have `n` items (or to be absent, giving `fill`). */
function parallel<T>(h: Header, tag: number, n: number, get: () => T[], fill: T, name: string): T[] {
  if (!h.has(tag)) return new Array<T>(n).fill(fill);
  const v = get();
  if (v.length !== n) throw err(h, 'tag count mismatch', name, `${n}`, `${v.length}`);
  return v;
}

export function dependencies(h: Header, kind: DependencyKind): Dependency[] {
  const [nt, ft, vt] = DEP_TAGS[kind];
  const names = h.strings(nt);
  const flags = parallel(h, ft, names.length, () => h.numbers(ft), 0, `${kind} flags`);
  const versions = parallel(h, vt, names.length, () => h.strings(vt), '', `${kind} versions`);
  return names.map((name, i) => ({ name, flags: flags[i]!, version: versions[i]! }));
}

function joinProg(h: Header, tag: number): string | null {
  const v = h.strings(tag);
  return v.length ? v.join(' ') : null;
}

function scripts(h: Header): Partial<Record<ScriptKind, Script>> {
  const out: Partial<Record<ScriptKind, Script>> = {};
  for (const [kind, [bt, pt, ft]] of Object.entries(SCRIPT_KINDS) as [ScriptKind, readonly [number, number, number]][]) {
    if (!h.has(bt) && !h.has(pt)) continue;
    out[kind] = { body: h.string(bt) ?? null, interpreter: joinProg(h, pt), flags: h.number(ft) ?? 0 };
  }
  return out;
}

const TRIGGER_TYPES: [number, string][] = [
  [Sense.TRIGGERPREIN, 'triggerprein'], [Sense.TRIGGERIN, 'triggerin'],
  [Sense.TRIGGERUN, 'triggerun'], [Sense.TRIGGERPOSTUN, 'triggerpostun'],
];

interface TriggerTags { scripts: number; prog: number; flags: number; name: number; version: number; cflags: number; index: number; priorities?: number }

function triggers(h: Header, t: TriggerTags, file: boolean): Trigger[] {
  const bodies = h.strings(t.scripts);
  const progTag = h.entry(t.prog);
  // TRIGGERSCRIPTPROG is one interpreter per script (no arguments), so a plain array.
  const progs = progTag ? h.strings(t.prog) : [];
  const sflags = h.numbers(t.flags);
  const prios = t.priorities !== undefined ? h.numbers(t.priorities) : [];
  const names = h.strings(t.name);
  const cflags = parallel(h, t.cflags, names.length, () => h.numbers(t.cflags), 0, 'trigger flags');
  const versions = parallel(h, t.version, names.length, () => h.strings(t.version), '', 'trigger versions');
  const index = parallel(h, t.index, names.length, () => h.numbers(t.index), 0, 'trigger index');
  const out: Trigger[] = bodies.map((body, i) => ({
    type: '', index: i, body, interpreter: progs[i] ?? null, flags: sflags[i] ?? 0, conditions: [],
    ...(file ? { priority: prios[i] ?? 1000000 } : {}),
  }));
  names.forEach((name, j) => {
    const k = index[j]!;
    const trig = out[k];
    if (!trig) throw err(h, 'trigger index out of range', 'TRIGGERINDEX', `< ${out.length}`, `${k}`);
    const f = cflags[j]!;
    trig.type = TRIGGER_TYPES.find(([bit]) => f & bit)?.[1] ?? 'triggerin';
    trig.conditions.push({ name, flags: f, version: versions[j]! });
  });
  return out;
}

function optional(h: Header, tag: number): string | null {
  return h.string(tag) ?? null;
}

export function packageInfo(h: Header): PackageInfo {
  const name = h.string(Tag.NAME);
  const version = h.string(Tag.VERSION);
  const release = h.string(Tag.RELEASE);
  if (name === undefined || version === undefined || release === undefined) {
    throw err(h, 'header lacks name, version or release', 'NAME/VERSION/RELEASE');
  }
  const epoch = h.number(Tag.EPOCH) ?? null;
  const sourcePackage = h.has(Tag.SOURCEPACKAGE) || !h.has(Tag.SOURCERPM);
  const arch = h.string(Tag.ARCH) ?? '';
  const deps = Object.fromEntries(DEPENDENCY_KINDS.map((k) => [k, dependencies(h, k)])) as Record<DependencyKind, Dependency[]>;
  // rpm retrofits legacy (region-less, rpm 3) binary headers on import with a "N = [E:]V-R" self-provide
  // (lib/legacy.c providePackageNVR), appended even when an equal one exists.
  if (h.region === null && !sourcePackage) {
    deps.provides.push({ name, flags: Sense.EQUAL, version: `${epoch !== null ? `${epoch}:` : ''}${version}-${release}` });
  }
  const ctimes = h.numbers(Tag.CHANGELOGTIME);
  const cnames = h.strings(Tag.CHANGELOGNAME);
  const ctexts = h.strings(Tag.CHANGELOGTEXT);
  return {
    name, epoch, version, release, arch,
    nevra: `${name}-${epoch !== null ? `${epoch}:` : ''}${version}-${release}.${arch}`,
    sourcePackage,
    sourcerpm: optional(h, Tag.SOURCERPM),
    summary: h.string(Tag.SUMMARY) ?? '',
    description: h.string(Tag.DESCRIPTION) ?? '',
    license: h.string(Tag.LICENSE) ?? '',
    group: optional(h, Tag.GROUP),
    url: optional(h, Tag.URL),
    vendor: optional(h, Tag.VENDOR),
    packager: optional(h, Tag.PACKAGER),
    buildtime: h.number(Tag.BUILDTIME) ?? null,
    buildhost: optional(h, Tag.BUILDHOST),
    os: optional(h, Tag.OS),
    rpmversion: optional(h, Tag.RPMVERSION),
    payloadCompressor: optional(h, Tag.PAYLOADCOMPRESSOR),
    payloadFormat: optional(h, Tag.PAYLOADFORMAT),
    format: h.number(Tag.RPMFORMAT) ?? 4,
    ...deps,
    scripts: scripts(h),
    triggers: triggers(h, {
      scripts: Tag.TRIGGERSCRIPTS, prog: Tag.TRIGGERSCRIPTPROG, flags: Tag.TRIGGERSCRIPTFLAGS,
      name: Tag.TRIGGERNAME, version: Tag.TRIGGERVERSION, cflags: Tag.TRIGGERFLAGS, index: Tag.TRIGGERINDEX,
    }, false),
    fileTriggers: triggers(h, {
      scripts: Tag.FILETRIGGERSCRIPTS, prog: Tag.FILETRIGGERSCRIPTPROG, flags: Tag.FILETRIGGERSCRIPTFLAGS,
      name: Tag.FILETRIGGERNAME, version: Tag.FILETRIGGERVERSION, cflags: Tag.FILETRIGGERFLAGS,
      index: Tag.FILETRIGGERINDEX, priorities: Tag.FILETRIGGERPRIORITIES,
    }, true),
    transFileTriggers: triggers(h, {
      scripts: Tag.TRANSFILETRIGGERSCRIPTS, prog: Tag.TRANSFILETRIGGERSCRIPTPROG, flags: Tag.TRANSFILETRIGGERSCRIPTFLAGS,
      name: Tag.TRANSFILETRIGGERNAME, version: Tag.TRANSFILETRIGGERVERSION, cflags: Tag.TRANSFILETRIGGERFLAGS,
      index: Tag.TRANSFILETRIGGERINDEX, priorities: Tag.TRANSFILETRIGGERPRIORITIES,
    }, true),
    changelog: ctimes.map((time, i) => ({ time, name: cnames[i] ?? '', text: ctexts[i] ?? '' })),
  };
}

const concatBytes = (a: Uint8Array, b: Uint8Array): Uint8Array => {
  const o = new Uint8Array(a.length + b.length);
  o.set(a); o.set(b, a.length);
  return o;
};

/** The file list, in header order (the order of the stripped-cpio file index). */
export function fileList(h: Header): FileInfo[] {
  let raw: Uint8Array[];
  if (h.has(Tag.BASENAMES)) {
    const base = h.rawStrings(Tag.BASENAMES);
    const dirs = h.rawStrings(Tag.DIRNAMES);
    const idx = parallel(h, Tag.DIRINDEXES, base.length, () => h.numbers(Tag.DIRINDEXES), -1, 'DIRINDEXES');
    raw = base.map((b, i) => {
      const d = dirs[idx[i]!];
      if (d === undefined) throw err(h, 'file directory index out of range', 'DIRINDEXES', `< ${dirs.length}`, `${idx[i]}`);
      return concatBytes(d, b);
    });
  } else {
    raw = h.rawStrings(Tag.OLDFILENAMES);
  }
  const n = raw.length;
  const sizes = h.has(Tag.LONGFILESIZES)
    ? parallel(h, Tag.LONGFILESIZES, n, () => h.numbers(Tag.LONGFILESIZES), 0, 'LONGFILESIZES')
    : parallel(h, Tag.FILESIZES, n, () => h.numbers(Tag.FILESIZES), 0, 'FILESIZES');
  const modes = parallel(h, Tag.FILEMODES, n, () => h.numbers(Tag.FILEMODES), 0o100644, 'FILEMODES');
  const users = parallel(h, Tag.FILEUSERNAME, n, () => h.strings(Tag.FILEUSERNAME), 'root', 'FILEUSERNAME');
  const groups = parallel(h, Tag.FILEGROUPNAME, n, () => h.strings(Tag.FILEGROUPNAME), 'root', 'FILEGROUPNAME');
  const mtimes = parallel(h, Tag.FILEMTIMES, n, () => h.numbers(Tag.FILEMTIMES), 0, 'FILEMTIMES');
  const digests = parallel(h, Tag.FILEDIGESTS, n, () => h.strings(Tag.FILEDIGESTS), '', 'FILEDIGESTS');
  const links = parallel(h, Tag.FILELINKTOS, n, () => h.strings(Tag.FILELINKTOS), '', 'FILELINKTOS');
  const flags = parallel(h, Tag.FILEFLAGS, n, () => h.numbers(Tag.FILEFLAGS), 0, 'FILEFLAGS');
  const vflags = parallel(h, Tag.FILEVERIFYFLAGS, n, () => h.numbers(Tag.FILEVERIFYFLAGS), 0xffffffff, 'FILEVERIFYFLAGS');
  const rdevs = parallel(h, Tag.FILERDEVS, n, () => h.numbers(Tag.FILERDEVS), 0, 'FILERDEVS');
  const inodes = parallel(h, Tag.FILEINODES, n, () => h.numbers(Tag.FILEINODES), 0, 'FILEINODES');
  const devices = parallel(h, Tag.FILEDEVICES, n, () => h.numbers(Tag.FILEDEVICES), 0, 'FILEDEVICES');
  const langs = parallel(h, Tag.FILELANGS, n, () => h.strings(Tag.FILELANGS), '', 'FILELANGS');
  const caps = parallel(h, Tag.FILECAPS, n, () => h.strings(Tag.FILECAPS), '', 'FILECAPS');
  const algoId = h.number(Tag.FILEDIGESTALGO) ?? 1;
  const digestAlgo = HashAlgo[algoId]?.name ?? `unknown-${algoId}`;
  return raw.map((rp, i) => ({
    index: i,
    path: decodeText(rp),
    rawPath: rp,
    mode: modes[i]! & 0xffff,
    user: users[i]!,
    group: groups[i]!,
    size: sizes[i]!,
    mtime: mtimes[i]!,
    digest: digests[i]!,
    digestAlgo,
    linkTo: links[i]!,
    flags: flags[i]!,
    verifyFlags: vflags[i]!,
    rdev: rdevs[i]! & 0xffff,
    inode: inodes[i]!,
    device: devices[i]!,
    lang: langs[i]!,
    caps: caps[i] ? caps[i]! : null,
  }));
}

/** Bits of FileFlag as names, for listings. */
export function fileFlagNames(flags: number): string[] {
  return Object.entries(FileFlag).filter(([, bit]) => flags & bit).map(([n]) => n.toLowerCase());
}

export { TagType };
