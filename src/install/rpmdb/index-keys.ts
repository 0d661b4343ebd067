/**
 * The secondary-index rows rpm derives from an installed header (rpm 4.18
 * lib/rpmdb.c: the dbiTags list, tag2index, td2key, updateRichDep).
 */
import { HeaderBlob, RPMTAG, RPM_TYPE } from './header-blob.js';

/** Index tables in rpm's order, with the tag each indexes and its key class. */
export const RPMDB_INDEXES: readonly { table: string; tag: number; key: 'TEXT' | 'BLOB'; array: boolean }[] = [
  { table: 'Name', tag: RPMTAG.NAME, key: 'TEXT', array: false },
  { table: 'Basenames', tag: RPMTAG.BASENAMES, key: 'TEXT', array: true },
  { table: 'Group', tag: RPMTAG.GROUP, key: 'TEXT', array: false },
  { table: 'Requirename', tag: RPMTAG.REQUIRENAME, key: 'TEXT', array: true },
  { table: 'Providename', tag: RPMTAG.PROVIDENAME, key: 'TEXT', array: true },
  { table: 'Conflictname', tag: RPMTAG.CONFLICTNAME, key: 'TEXT', array: true },
  { table: 'Obsoletename', tag: RPMTAG.OBSOLETENAME, key: 'TEXT', array: true },
  { table: 'Triggername', tag: RPMTAG.TRIGGERNAME, key: 'TEXT', array: true },
  { table: 'Dirnames', tag: RPMTAG.DIRNAMES, key: 'TEXT', array: true },
  { table: 'Installtid', tag: RPMTAG.INSTALLTID, key: 'BLOB', array: false },
  { table: 'Sigmd5', tag: RPMTAG.SIGMD5, key: 'BLOB', array: false },
  { table: 'Sha1header', tag: RPMTAG.SHA1HEADER, key: 'TEXT', array: false },
  { table: 'Filetriggername', tag: RPMTAG.FILETRIGGERNAME, key: 'TEXT', array: true },
  { table: 'Transfiletriggername', tag: RPMTAG.TRANSFILETRIGGERNAME, key: 'TEXT', array: true },
  { table: 'Recommendname', tag: RPMTAG.RECOMMENDNAME, key: 'TEXT', array: true },
  { table: 'Suggestname', tag: RPMTAG.SUGGESTNAME, key: 'TEXT', array: true },
  { table: 'Supplementname', tag: RPMTAG.SUPPLEMENTNAME, key: 'TEXT', array: true },
  { table: 'Enhancename', tag: RPMTAG.ENHANCENAME, key: 'TEXT', array: true },
];

/** One index row: key bytes and the element index within the tag. */
export interface IndexRow { key: Buffer; idx: number }

// rpmsenseFlags (rpmds.h).
const SENSE = {
  POSTTRANS: 1 << 5, PREREQ: 1 << 6, PRETRANS: 1 << 7, SCRIPT_PRE: 1 << 9, SCRIPT_POST: 1 << 10,
  SCRIPT_PREUN: 1 << 11, SCRIPT_POSTUN: 1 << 12, RPMLIB: 1 << 24, KEYRING: 1 << 26, META: 1 << 29,
};
const INSTALL_ONLY = (SENSE.SCRIPT_PRE | SENSE.SCRIPT_POST | SENSE.RPMLIB | SENSE.KEYRING | SENSE.PRETRANS | SENSE.POSTTRANS) & ~SENSE.PREREQ;
const ERASE_ONLY = (SENSE.SCRIPT_PREUN | SENSE.SCRIPT_POSTUN) & ~SENSE.PREREQ;

/** rpm's isTransientReq: install-time-only requirements are not indexed. */
export const isTransientReq = (f: number): boolean => (f & INSTALL_ONLY) !== 0 && (f & ERASE_ONLY) === 0 && (f & SENSE.META) === 0;

const RICH_INDEXED = new Set<number>([RPMTAG.REQUIRENAME, RPMTAG.CONFLICTNAME, RPMTAG.SUGGESTNAME, RPMTAG.SUPPLEMENTNAME, RPMTAG.RECOMMENDNAME, RPMTAG.ENHANCENAME]);

/** Rows for one index table of one header. */
export function indexRows(h: HeaderBlob, table: (typeof RPMDB_INDEXES)[number]): IndexRow[] {
  const e = h.entry(table.tag);
  if (!e || e.count === 0) {
    // rpm indexes a missing Group as "Unknown" (legacy behaviour kept by tag2index).
    return table.tag === RPMTAG.GROUP ? [{ key: Buffer.from('Unknown'), idx: 0 }] : [];
  }
  if (e.type === RPM_TYPE.BIN) return [{ key: Buffer.from(h.raw(table.tag)!), idx: 0 }];
  if (e.type === RPM_TYPE.INT32) {
    // td2key hands out the value in host order; rpmdb files are only used on little-endian targets here.
    return h.numbers(table.tag).map((v, i) => { const k = Buffer.alloc(4); k.writeUInt32LE(v >>> 0); return { key: k, idx: i }; });
  }
  const raw = h.raw(table.tag)!;
  const values = splitStrings(raw);
  // An I18N string indexes its first (C locale) value only.
  const items = e.type === RPM_TYPE.STRING || e.type === RPM_TYPE.I18NSTRING ? values.slice(0, 1) : values;
  const reqFlags = table.tag === RPMTAG.REQUIRENAME ? h.numbers(RPMTAG.REQUIREFLAGS) : undefined;
  const trigIndex = table.tag === RPMTAG.FILETRIGGERNAME ? h.numbers(RPMTAG.FILETRIGGERINDEX)
    : table.tag === RPMTAG.TRANSFILETRIGGERNAME ? h.numbers(RPMTAG.TRANSFILETRIGGERINDEX) : undefined;
  const rows: IndexRow[] = [];
  items.forEach((key, i) => {
    if (reqFlags && isTransientReq(reqFlags[i] ?? 0)) return;
    if (table.tag === RPMTAG.TRIGGERNAME && items.slice(0, i).some((k) => k.equals(key))) return;
    const idx = trigIndex ? (trigIndex[i] ?? 0) : i;
    rows.push({ key, idx });
    if (key[0] === 0x28 && RICH_INDEXED.has(table.tag) && e.type === RPM_TYPE.STRING_ARRAY) {
      for (const name of richDepNames(key)) rows.push({ key: name, idx });
    }
  });
  return rows;
}

function splitStrings(raw: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let p = 0;
  while (p < raw.length) { const z = raw.indexOf(0, p); const end = z < 0 ? raw.length : z; out.push(raw.subarray(p, end)); p = end + 1; }
  return out;
}

/**
 * Names inside a rich dependency as rpm indexes them (updateRichDep): every
 * simple name except rpmlib(), names under an `if`/`unless` condition
 * prefixed with `!`, sorted bytewise, duplicates dropped. Unparseable
 * expressions index nothing extra (as rpm, which ignores parse failures).
 */
export function richDepNames(dep: Buffer): Buffer[] {
  const names: Buffer[] = [];
  let neg = false;
  const levels: number[] = [];
  let p = 0;
  const isWhite = (c: number | undefined): boolean => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d || c === 0x0b || c === 0x0c;
  const skipWhite = (): void => { while (p < dep.length && isWhite(dep[p])) p++; };
  // rpmds.c SKIPNONWHITEX: stop at white space, ',' or an unbalanced ')'.
  const skipNonWhite = (q: number): number => {
    let bl = 0;
    while (q < dep.length && !(isWhite(dep[q]) || dep[q] === 0x2c || (dep[q] === 0x29 && bl-- <= 0))) if (dep[q++] === 0x28) bl++;
    return q;
  };
  const parse = (): boolean => {
    levels.push(names.length);
    if (dep[p++] !== 0x28) return false;
    let op = '';
    for (;;) {
      skipWhite();
      if (p >= dep.length || dep[p] === 0x29) return false;
      if (dep[p] === 0x28) {
        if (!parse()) return false;
      } else {
        const n = p;
        p = skipNonWhite(p);
        if (p === n) return false;
        const name = dep.subarray(n, p);
        skipWhite();
        const pe = skipNonWhite(p);
        if (pe > p && /^[<>=]+$/.test(dep.toString('latin1', p, pe))) { p = pe; skipWhite(); p = skipNonWhite(p); }
        if (!(name.length > 7 && name.toString('latin1', 0, 7) === 'rpmlib(')) names.push(Buffer.concat([Buffer.from(neg ? '!' : ' '), name]));
      }
      skipWhite();
      if (p >= dep.length) return false;
      if (dep[p] === 0x29) break;
      const oe = skipNonWhite(p);
      op = dep.toString('latin1', p, oe);
      if (!['and', 'or', 'if', 'else', 'unless', 'with', 'without'].includes(op)) return false;
      p = oe;
      if (op === 'if' || op === 'unless') { levels[levels.length - 1] = names.length; neg = !neg; }
      if (op === 'else') {
        const from = levels[levels.length - 1]!, to = names.length;
        for (let i = from; i < to; i++) {
          const n = Buffer.from(names[i]!);
          n[0] = n[0] === 0x21 ? 0x20 : 0x21;
          names.push(n);
        }
        neg = !neg;
      }
    }
    p++;
    levels.pop();
    if (op === 'if' || op === 'unless') neg = !neg;
    return true;
  };
  if (!parse()) return [];
  names.sort(Buffer.compare);
  const out: Buffer[] = [];
  names.forEach((n, i) => {
    if (i && names[i - 1]!.equals(n)) return;
    out.push(n[0] === 0x20 ? n.subarray(1) : n);
  });
  return out;
}
