/**
 * Field-by-field comparison of `ingot rpm info/ls --json` objects with rpm's
 * own answers (rpm -qp --qf). Returns a list of differences (empty = agree).
 * '(none)' is how rpm prints an absent tag; it maps to ingot's null/''/default.
 */
import { rpmSections, type Section } from './rpm-oracle.js';
import type { infoJson, fileJson } from '../../src/cli/rpm.js';

type Info = Awaited<ReturnType<typeof infoJson>>;
type FileRow = ReturnType<typeof fileJson>;

const none = (v: string | undefined): string | null => (v === undefined || v === '(none)' ? null : v);
const num = (v: string | undefined): number | null => (none(v) === null ? null : Number(v));

export function diff(label: string, a: unknown, b: unknown, out: string[]): void {
  const sa = JSON.stringify(a);
  const sb = JSON.stringify(b);
  if (sa !== sb) out.push(`${label}: ingot ${sa.slice(0, 300)} ≠ rpm ${sb.slice(0, 300)}`);
}

const DEP_TAGS = {
  requires: 'REQUIRE', provides: 'PROVIDE', conflicts: 'CONFLICT', obsoletes: 'OBSOLETE',
  recommends: 'RECOMMEND', suggests: 'SUGGEST', supplements: 'SUPPLEMENT', enhances: 'ENHANCE',
} as const;
const PROVIDE_NAME: Record<string, string> = { PROVIDE: 'PROVIDENAME', OBSOLETE: 'OBSOLETENAME' };

/** Script kinds rpm 4.18 knows (PREUNTRANS/POSTUNTRANS came with rpm 4.20). */
const SCRIPT_TAGS = {
  pretrans: ['PRETRANS', 'PRETRANSPROG', 'PRETRANSFLAGS'], pre: ['PREIN', 'PREINPROG', 'PREINFLAGS'],
  post: ['POSTIN', 'POSTINPROG', 'POSTINFLAGS'], preun: ['PREUN', 'PREUNPROG', 'PREUNFLAGS'],
  postun: ['POSTUN', 'POSTUNPROG', 'POSTUNFLAGS'], posttrans: ['POSTTRANS', 'POSTTRANSPROG', 'POSTTRANSFLAGS'],
  verify: ['VERIFYSCRIPT', 'VERIFYSCRIPTPROG', 'VERIFYSCRIPTFLAGS'],
} as const;

const SIG_TAGS: [string, number][] = [['RSAHEADER', 268], ['DSAHEADER', 267], ['SIGPGP', 1002], ['SIGGPG', 1005]];

const SCALARS = ['NAME', 'EPOCH', 'VERSION', 'RELEASE', 'ARCH', 'SOURCERPM', 'SUMMARY', 'LICENSE', 'BUILDTIME', 'PAYLOADCOMPRESSOR', 'PAYLOADFORMAT', 'NEVRA'];
const FILE_TAGS = ['FILENAMES', 'FILEMODES', 'FILEUSERNAME', 'FILEGROUPNAME', 'LONGFILESIZES', 'FILEMTIMES', 'FILEDIGESTS',
  'FILELINKTOS', 'FILEFLAGS', 'FILERDEVS', 'FILEINODES', 'FILECAPS', 'FILEVERIFYFLAGS', 'FILELANGS'];

/** Everything the comparisons need from rpm, in one call. */
export function rpmAnswers(file: string) {
  const secs: Section[] = [{ scalars: SCALARS }];
  const depIdx: Record<string, number> = {};
  for (const [kind, t] of Object.entries(DEP_TAGS)) {
    depIdx[kind] = secs.push({ records: [PROVIDE_NAME[t] ?? `${t}NAME`, `${t}FLAGS`, `${t}VERSION`] }) - 1;
  }
  const scriptIdx: Record<string, [number, number]> = {};
  for (const [kind, [body, prog, flags]] of Object.entries(SCRIPT_TAGS)) {
    scriptIdx[kind] = [secs.push({ scalars: [body, flags] }) - 1, secs.push({ records: [prog] }) - 1];
  }
  const trigIdx: Record<string, [number, number]> = {};
  for (const pre of ['TRIGGER', 'FILETRIGGER', 'TRANSFILETRIGGER']) {
    trigIdx[pre] = [
      secs.push({ records: [`${pre}NAME`, `${pre}FLAGS`, `${pre}VERSION`, `${pre}INDEX`] }) - 1,
      secs.push({ records: [`${pre}SCRIPTS`, `${pre}SCRIPTPROG`] }) - 1,
    ];
  }
  const sigIdx = secs.push({ scalars: SIG_TAGS.map(([t]) => `${t}:pgpsig`) }) - 1;
  const algoIdx = secs.push({ scalars: ['FILEDIGESTALGO'] }) - 1;
  const filesIdx = secs.push({ records: FILE_TAGS }) - 1;
  const r = rpmSections(file, secs);
  const scal = (i: number, names: string[]) => Object.fromEntries(names.map((n, j) => [n, r[i]![0]![j]]));
  return {
    scalars: scal(0, SCALARS) as Record<string, string | undefined>,
    deps: Object.fromEntries(Object.entries(depIdx).map(([k, i]) => [k, r[i]!])),
    scripts: Object.fromEntries(Object.entries(scriptIdx).map(([k, [a, b]]) => [k, { sc: r[a]![0]!, progs: r[b]!.map((x) => x[0]!) }])),
    triggers: Object.fromEntries(Object.entries(trigIdx).map(([k, [a, b]]) => [k, { conds: r[a]!, scripts: r[b]! }])),
    sigs: scal(sigIdx, SIG_TAGS.map(([t]) => t)) as Record<string, string | undefined>,
    digestAlgo: r[algoIdx]![0]![0]!,
    files: r[filesIdx]!,
  };
}
export type RpmAnswers = ReturnType<typeof rpmAnswers>;

export function compareInfo(a: RpmAnswers, info: Info): string[] {
  const d: string[] = [];
  const s = a.scalars;
  diff('name', info.name, s.NAME, d);
  diff('epoch', info.epoch, num(s.EPOCH), d);
  diff('version', info.version, s.VERSION, d);
  diff('release', info.release, s.RELEASE, d);
  diff('arch', info.arch, s.ARCH, d);
  diff('nevra', info.nevra, s.NEVRA, d);
  diff('sourcerpm', info.sourcerpm, none(s.SOURCERPM), d);
  diff('summary', info.summary, none(s.SUMMARY) ?? '', d);
  diff('license', info.license, none(s.LICENSE) ?? '', d);
  diff('buildtime', info.buildtime, num(s.BUILDTIME), d);
  diff('payloadCompressor', info.payloadCompressor, none(s.PAYLOADCOMPRESSOR), d);
  diff('payloadFormat', info.payloadFormat, none(s.PAYLOADFORMAT), d);
  for (const kind of Object.keys(DEP_TAGS)) {
    const expected = a.deps[kind]!.map(([name, flags, version]) => ({ name, flags: Number(flags), version: none(version) ?? '' }));
    diff(kind, info[kind as keyof typeof DEP_TAGS], expected, d);
  }
  for (const kind of Object.keys(SCRIPT_TAGS)) {
    const { sc, progs: rawProgs } = a.scripts[kind]!;
    const progs = rawProgs.filter((p) => p !== '(none)');
    const mine = info.scripts[kind as keyof typeof SCRIPT_TAGS];
    const expected = none(sc[0]) === null && progs.length === 0 ? undefined
      : { body: none(sc[0]), interpreter: progs.length ? progs.join(' ') : null, flags: num(sc[1]) ?? 0 };
    diff(`scripts.${kind}`, mine, expected, d);
  }
  for (const [key, pre] of [['triggers', 'TRIGGER'], ['fileTriggers', 'FILETRIGGER'], ['transFileTriggers', 'TRANSFILETRIGGER']] as const) {
    const t = a.triggers[pre]!;
    const conds = t.conds.map(([name, flags, version, index]) => ({ name, flags: Number(flags), version: none(version) ?? '', index: Number(index) }));
    const scripts = t.scripts.map(([body, prog]) => ({ body: none(body), interpreter: none(prog) }));
    const mineConds = info[key].flatMap((x) => x.conditions.map((c) => ({ ...c, index: x.index })));
    const byIndex = (x: { index: number }, y: { index: number }) => x.index - y.index;
    diff(`${key}.conditions`, [...mineConds].sort(byIndex), [...conds].sort(byIndex), d);
    diff(`${key}.scripts`, info[key].map((x) => ({ body: x.body, interpreter: x.interpreter })), scripts, d);
  }
  for (const [t, tagNum] of SIG_TAGS) {
    const v = a.sigs[t];
    const mine = info.signatures.filter((x) => x.tag === tagNum);
    if (v === undefined || v === '(none)') { diff(`signature ${t}`, mine.length, 0, d); continue; }
    const m = /^([^,]+), .*Key ID ([0-9a-f]+)$/.exec(v);
    if (!m) { diff(`signature ${t} (rpm cannot parse it)`, mine.map((x) => x.algorithm), ['unknown'], d); continue; }
    diff(`signature ${t}`, mine.map((x) => `${x.algorithm} ${x.keyId}`), [`${m[1]} ${m[2]}`], d);
  }
  return d;
}

const ALGOS: Record<string, string> = { '1': 'md5', '2': 'sha1', '8': 'sha256', '9': 'sha384', '10': 'sha512', '11': 'sha224' };

export function compareFiles(a: RpmAnswers, rows: FileRow[]): string[] {
  const d: string[] = [];
  const algo = a.digestAlgo;
  const recs = a.files;
  diff('file count', rows.length, recs.length, d);
  const expectedAlgo = algo === '(none)' ? 'md5' : ALGOS[algo] ?? algo;
  recs.forEach((r, i) => {
    const f = rows[i];
    if (!f) return;
    const [path, mode, user, group, size, mtime, digest, linkTo, flags, rdev, inode, caps, vflags, lang] = r;
    const n = (v: string | undefined, dflt: number) => (none(v) === null ? dflt : Number(v));
    const mine = { path: f.path, mode: f.mode, user: f.user, group: f.group, size: f.size, mtime: f.mtime, digest: f.digest, digestAlgo: f.digestAlgo, linkTo: f.linkTo, flags: f.flags, rdev: f.rdev, inode: f.inode, caps: f.caps, verifyFlags: f.verifyFlags, lang: f.lang };
    const theirs = {
      path, mode: n(mode, 0) & 0xffff, user, group, size: n(size, 0), mtime: n(mtime, 0), digest: none(digest) ?? '', digestAlgo: expectedAlgo,
      linkTo: none(linkTo) ?? '', flags: n(flags, 0), rdev: n(rdev, 0) & 0xffff, inode: n(inode, 0), caps: none(caps) || null,
      verifyFlags: n(vflags, 0xffffffff) >>> 0, lang: none(lang) ?? '',
    };
    diff(`file ${i} ${path}`, mine, theirs, d);
  });
  return d;
}
