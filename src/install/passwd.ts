/**
 * /etc/passwd, /etc/shadow, /etc/group and /etc/gshadow: parsed into field
 * records and written back with every line and its order preserved (passwd(5),
 * shadow(5), group(5), gshadow(5): colon-separated fields, one entry a line).
 * Lines that are not entries (blank, comments, NIS `+`/`-` lines) are kept
 * verbatim.
 */
import { IngotError } from '../errors.js';

export class AccountFileError extends IngotError {}

/** Field counts of each file's entries. */
export const FIELD_COUNT = { passwd: 7, shadow: 9, group: 4, gshadow: 4 } as const;
export type AccountFileKind = keyof typeof FIELD_COUNT;

/** One line: an entry's fields, or a line kept as it was. */
export type AccountLine = { fields: string[] } | { raw: string };

/** A parsed account file; entries are looked up by their first field (the name). */
export class AccountFile {
  readonly lines: AccountLine[];
  constructor(readonly kind: AccountFileKind, lines: AccountLine[] = []) { this.lines = lines; }

  static parse(kind: AccountFileKind, text: string, file = `/etc/${kind}`): AccountFile {
    const lines: AccountLine[] = [];
    const body = text.endsWith('\n') ? text.slice(0, -1) : text;
    if (body === '') return new AccountFile(kind, lines);
    body.split('\n').forEach((l, i) => {
      if (l === '' || l.startsWith('#') || l.startsWith('+') || l.startsWith('-')) { lines.push({ raw: l }); return; }
      const fields = l.split(':');
      if (fields.length !== FIELD_COUNT[kind]) {
        throw new AccountFileError('ACCOUNT_BAD_LINE', `${kind} entry needs ${FIELD_COUNT[kind]} fields`, { file, line: i + 1, actual: `${fields.length}` });
      }
      if (fields[0] === '') throw new AccountFileError('ACCOUNT_BAD_LINE', 'empty name', { file, line: i + 1 });
      if ((kind === 'passwd' && !/^\d+$/.test(fields[2]!)) || (kind === 'passwd' && !/^\d+$/.test(fields[3]!)) || (kind === 'group' && !/^\d+$/.test(fields[2]!))) {
        throw new AccountFileError('ACCOUNT_BAD_ID', 'id is not a number', { file, line: i + 1, actual: l });
      }
      lines.push({ fields });
    });
    return new AccountFile(kind, lines);
  }

  toString(): string {
    return this.lines.map((l) => ('raw' in l ? l.raw : l.fields.join(':'))).map((l) => `${l}\n`).join('');
  }

  *entries(): IterableIterator<string[]> {
    for (const l of this.lines) if ('fields' in l) yield l.fields;
  }

  get(name: string): string[] | undefined {
    for (const f of this.entries()) if (f[0] === name) return f;
    return undefined;
  }

  /** Append an entry (names must be unique). */
  add(fields: string[]): string[] {
    if (fields.length !== FIELD_COUNT[this.kind]) throw new AccountFileError('ACCOUNT_BAD_ENTRY', `${this.kind} entry needs ${FIELD_COUNT[this.kind]} fields`, { field: fields[0] });
    if (fields.some((f) => f.includes(':') || f.includes('\n'))) throw new AccountFileError('ACCOUNT_BAD_ENTRY', 'fields may not contain : or newline', { field: fields[0] });
    if (this.get(fields[0]!)) throw new AccountFileError('ACCOUNT_DUPLICATE', `${fields[0]} already in ${this.kind}`, { field: fields[0] });
    this.lines.push({ fields });
    return fields;
  }
}

/** passwd fields by name. */
export const PW = { name: 0, password: 1, uid: 2, gid: 3, gecos: 4, home: 5, shell: 6 } as const;
/** shadow fields by name. */
export const SP = { name: 0, password: 1, lastChange: 2, min: 3, max: 4, warn: 5, inactive: 6, expire: 7, reserved: 8 } as const;
/** group fields by name. */
export const GR = { name: 0, password: 1, gid: 2, members: 3 } as const;
/** gshadow fields by name. */
export const SG = { name: 0, password: 1, admins: 2, members: 3 } as const;

/** Split a comma-separated member list ('' → []). */
export const members = (s: string): string[] => (s === '' ? [] : s.split(','));

/** /etc/login.defs: the id ranges useradd/groupadd/sysusers allocate from (login.defs(5) defaults). */
export interface IdRanges { uidMin: number; uidMax: number; sysUidMin: number; sysUidMax: number; gidMin: number; gidMax: number; sysGidMin: number; sysGidMax: number }

export const DEFAULT_ID_RANGES: IdRanges = {
  uidMin: 1000, uidMax: 60000, sysUidMin: 201, sysUidMax: 999, gidMin: 1000, gidMax: 60000, sysGidMin: 201, sysGidMax: 999,
};

export function parseLoginDefs(text: string | undefined): IdRanges {
  const r = { ...DEFAULT_ID_RANGES };
  if (!text) return r;
  const keys: Record<string, keyof IdRanges> = {
    UID_MIN: 'uidMin', UID_MAX: 'uidMax', SYS_UID_MIN: 'sysUidMin', SYS_UID_MAX: 'sysUidMax',
    GID_MIN: 'gidMin', GID_MAX: 'gidMax', SYS_GID_MIN: 'sysGidMin', SYS_GID_MAX: 'sysGidMax',
  };
  for (const line of text.split('\n')) {
    const m = /^\s*([A-Z_]+)\s+(\d+)\s*$/.exec(line);
    if (m && keys[m[1]!]) r[keys[m[1]!]!] = Number(m[2]);
  }
  return r;
}
