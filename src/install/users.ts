/**
 * Users and groups of the image, without running anything inside it:
 * the tree's own /etc/passwd, /etc/group (and shadow files) as installed by
 * the `setup` package, extended by what packages ask for — systemd
 * sysusers.d files (sysusers.d(5): u, g, m, r lines) and the common
 * `useradd`/`groupadd`/`usermod -a -G` scriptlet lines — with ids assigned
 * deterministically from /etc/login.defs ranges (system ids from the top of
 * the system range down, as shadow-utils and systemd-sysusers do), plus
 * login users with homes from /etc/skel and authorized_keys.
 */
import { randomBytes } from 'node:crypto';
import { IngotError } from '../errors.js';
import { listTreeDir, readTreeText } from '../tree/read.js';
import { BufferContent, type Inode, type StagingTree } from '../tree/tree.js';
import { deriveSalt, randomSalt, sha512Crypt } from './crypt.js';
import { AccountFile, GR, members, parseLoginDefs, PW, SG, SP, type IdRanges } from './passwd.js';

export class AccountError extends IngotError {}

export interface AccountsOptions {
  /** Days since the epoch written as "last password change" (from SOURCE_DATE_EPOCH); empty when absent. */
  epochDays?: number;
}

const FILES = { passwd: '/etc/passwd', shadow: '/etc/shadow', group: '/etc/group', gshadow: '/etc/gshadow' } as const;
/** Modes Fedora's `setup` package gives the files (shadow files unreadable: 0000). */
const FILE_MODES = { passwd: 0o644, shadow: 0o000, group: 0o644, gshadow: 0o000 } as const;
const NOLOGIN = '/sbin/nologin';

export interface UserSpec {
  name: string;
  uid?: number;
  /** Primary group by name or number; default: a group named like the user (created when missing). */
  group?: string | number;
  /** Supplementary groups (must exist, or are created as system groups with `createGroups`). */
  groups?: string[];
  gecos?: string;
  home?: string;
  shell?: string;
  system?: boolean;
  /** Shadow password field (a crypt hash, `!`, `!*`, …). */
  password?: string;
}

/** The four account files of a tree, with id allocation. */
export class Accounts {
  /** System id range limits set by sysusers.d `r` lines. */
  sysRange?: { min: number; max: number };

  private constructor(
    readonly passwd: AccountFile, readonly shadow: AccountFile, readonly group: AccountFile, readonly gshadow: AccountFile,
    readonly ranges: IdRanges, readonly opts: AccountsOptions,
  ) {}

  static async load(tree: StagingTree, opts: AccountsOptions = {}): Promise<Accounts> {
    const read = async (k: keyof typeof FILES): Promise<AccountFile> => AccountFile.parse(k, (await readTreeText(tree, FILES[k])) ?? '', FILES[k]);
    return new Accounts(await read('passwd'), await read('shadow'), await read('group'), await read('gshadow'),
      parseLoginDefs(await readTreeText(tree, '/etc/login.defs')), opts);
  }

  uid(name: string): number | undefined { const f = this.passwd.get(name); return f ? Number(f[PW.uid]) : undefined; }
  gid(name: string): number | undefined { const f = this.group.get(name); return f ? Number(f[GR.gid]) : undefined; }
  private uidTaken(id: number): boolean { for (const f of this.passwd.entries()) if (Number(f[PW.uid]) === id) return true; return false; }
  private gidTaken(id: number): boolean { for (const f of this.group.entries()) if (Number(f[GR.gid]) === id) return true; return false; }
  hasGid(id: number): boolean { return this.gidTaken(id); }

  /** Numeric owner for a package file's user/group names (rpm's FILEUSERNAME/FILEGROUPNAME). */
  resolveOwner(user: string, group: string, context = ''): { uid: number; gid: number } {
    const uid = user === 'root' ? 0 : this.uid(user);
    const gid = group === 'root' ? 0 : this.gid(group);
    if (uid === undefined) throw new AccountError('ACCOUNT_UNKNOWN_USER', `unknown user ${JSON.stringify(user)}`, { file: context || undefined, field: 'user' });
    if (gid === undefined) throw new AccountError('ACCOUNT_UNKNOWN_GROUP', `unknown group ${JSON.stringify(group)}`, { file: context || undefined, field: 'group' });
    return { uid, gid };
  }

  private range(kind: 'uid' | 'gid', system: boolean): [number, number] {
    const r = this.ranges;
    if (system) {
      const [lo, hi] = kind === 'uid' ? [r.sysUidMin, r.sysUidMax] : [r.sysGidMin, r.sysGidMax];
      return this.sysRange ? [Math.max(lo, this.sysRange.min), Math.min(hi, this.sysRange.max)] : [lo, hi];
    }
    return kind === 'uid' ? [r.uidMin, r.uidMax] : [r.gidMin, r.gidMax];
  }

  /** A free id: system ids from the top of the range down, others from the bottom up. */
  private allocate(kind: 'uid' | 'gid' | 'both', system: boolean, name: string): number {
    const [lo, hi] = this.range(kind === 'gid' ? 'gid' : 'uid', system);
    const free = (id: number): boolean => (kind !== 'gid' && !this.uidTaken(id) || kind === 'gid') && (kind !== 'uid' && !this.gidTaken(id) || kind === 'uid');
    if (system) { for (let id = hi; id >= lo; id--) if (free(id)) return id; } else { for (let id = lo; id <= hi; id++) if (free(id)) return id; }
    throw new AccountError('ACCOUNT_IDS_EXHAUSTED', `no free ${kind === 'gid' ? 'gid' : 'uid'} in ${lo}–${hi}`, { field: name });
  }

  /** Create a group unless one of that name exists; returns its gid. */
  ensureGroup(name: string, opts: { gid?: number; system?: boolean; members?: string[] } = {}): number {
    const have = this.gid(name);
    if (have !== undefined) { for (const m of opts.members ?? []) this.addMember(name, m); return have; }
    checkName(name);
    const gid = opts.gid !== undefined && !this.gidTaken(opts.gid) ? opts.gid : this.allocate('gid', opts.system ?? false, name);
    const mem = (opts.members ?? []).join(',');
    this.group.add([name, 'x', String(gid), mem]);
    if (!this.gshadow.get(name)) this.gshadow.add([name, '!', '', mem]);
    return gid;
  }

  /** Create a user unless one of that name exists (and its user group when no group is named); returns the uid. */
  ensureUser(u: UserSpec): number {
    const have = this.uid(u.name);
    if (have !== undefined) { for (const g of u.groups ?? []) this.addMember(g, u.name); return have; }
    checkName(u.name);
    const system = u.system ?? false;
    let uid = u.uid !== undefined && !this.uidTaken(u.uid) ? u.uid : undefined;
    let gid: number;
    if (u.group === undefined) {
      const existing = this.gid(u.name);
      if (existing !== undefined) gid = existing;
      else {
        // A user and its same-named group get one number when one is free for both (sysusers, useradd -U).
        if (uid === undefined) uid = u.uid === undefined || this.uidTaken(u.uid) ? this.allocate('both', system, u.name) : u.uid;
        gid = this.ensureGroup(u.name, { gid: uid, system });
      }
    } else if (typeof u.group === 'number') {
      gid = u.group;
      if (![...this.group.entries()].some((f) => Number(f[GR.gid]) === gid)) throw new AccountError('ACCOUNT_UNKNOWN_GROUP', `no group with gid ${gid}`, { field: u.name });
    } else {
      const g = this.gid(u.group);
      if (g === undefined) throw new AccountError('ACCOUNT_UNKNOWN_GROUP', `unknown group ${JSON.stringify(u.group)}`, { field: u.name });
      gid = g;
    }
    uid ??= this.allocate('uid', system, u.name);
    const home = u.home ?? (system ? '/' : `/home/${u.name}`);
    this.passwd.add([u.name, 'x', String(uid), String(gid), u.gecos ?? '', home, u.shell ?? (system ? NOLOGIN : '/bin/bash')]);
    if (!this.shadow.get(u.name)) {
      const days = this.opts.epochDays !== undefined ? String(this.opts.epochDays) : '';
      this.shadow.add(system ? [u.name, u.password ?? '!*', days, '', '', '', '', '', ''] : [u.name, u.password ?? '!', days, '0', '99999', '7', '', '', '']);
    }
    for (const g of u.groups ?? []) this.addMember(g, u.name);
    return uid;
  }

  addMember(group: string, user: string): void {
    const g = this.group.get(group);
    if (!g) throw new AccountError('ACCOUNT_UNKNOWN_GROUP', `unknown group ${JSON.stringify(group)}`, { field: user });
    const m = members(g[GR.members]!);
    if (!m.includes(user)) g[GR.members] = [...m, user].join(',');
    const s = this.gshadow.get(group);
    if (s) { const sm = members(s[SG.members]!); if (!sm.includes(user)) s[SG.members] = [...sm, user].join(','); }
  }

  /** Set the shadow password field (a crypt hash, or `!…` for locked). */
  setPassword(user: string, field: string): void {
    if (field.includes(':') || field.includes('\n')) throw new AccountError('ACCOUNT_BAD_PASSWORD', 'password hash may not contain : or newline', { field: user });
    if (this.uid(user) === undefined) throw new AccountError('ACCOUNT_UNKNOWN_USER', `unknown user ${JSON.stringify(user)}`, { field: user });
    let s = this.shadow.get(user);
    if (!s) s = this.shadow.add([user, field, this.opts.epochDays !== undefined ? String(this.opts.epochDays) : '', '0', '99999', '7', '', '', '']);
    s[SP.password] = field;
    if (this.opts.epochDays !== undefined) s[SP.lastChange] = String(this.opts.epochDays);
    const p = this.passwd.get(user)!;
    p[PW.password] = 'x';
  }

  shadowPassword(user: string): string | undefined { return this.shadow.get(user)?.[SP.password]; }

  /** Write the four files into the tree (existing files keep their mode and owner). */
  save(tree: StagingTree): void {
    for (const k of Object.keys(FILES) as (keyof typeof FILES)[]) {
      const path = FILES[k];
      const old = tree.lookup(path);
      const file = this[k];
      if (!old && file.lines.length === 0) continue;
      const meta = old ? { mode: old.mode, uid: old.uid, gid: old.gid, mtime: old.mtime } : { mode: FILE_MODES[k] };
      tree.addFile(path, BufferContent.of(file.toString()), meta);
    }
  }
}

/** useradd/groupadd's name rule (shadow-utils is_valid_user_name, default settings). */
function checkName(name: string): void {
  if (!/^[A-Za-z0-9_.][A-Za-z0-9_.-]*\$?$/.test(name) || name.length > 32 || /^\d+$/.test(name)) {
    throw new AccountError('ACCOUNT_BAD_NAME', `invalid user or group name ${JSON.stringify(name)}`, { field: name });
  }
}

// ---------------------------------------------------------------- root password and login users

export type PasswordSpec =
  | { hashed: string; lock?: boolean }
  | { plain: string; lock?: boolean; rounds?: number; salt?: string }
  | { lock: true };

export interface PasswordOptions {
  /** Seed for deterministic salts (e.g. the image definition's seed). */
  seed?: string;
  /** Use a random salt instead of a derived one. */
  randomSalt?: boolean;
}

/** The shadow field for a password spec: SHA-512 crypt of plain text, `!` prefixed when locked (passwd -l). */
export function passwordField(user: string, spec: PasswordSpec, current: string | undefined, opts: PasswordOptions = {}): string {
  let hash: string;
  if ('hashed' in spec) hash = spec.hashed;
  else if ('plain' in spec) {
    const salt = spec.salt ?? (opts.randomSalt ? randomSalt(randomBytes) : deriveSalt(opts.seed ?? '', user));
    hash = sha512Crypt(spec.plain, salt, spec.rounds !== undefined ? { rounds: spec.rounds } : {});
  } else hash = current && current !== '' ? current : '*';
  return spec.lock && !hash.startsWith('!') ? `!${hash}` : hash;
}

export function setRootPassword(acc: Accounts, spec: PasswordSpec, opts: PasswordOptions = {}): void {
  if (acc.uid('root') === undefined) {
    acc.ensureGroup('root', { gid: 0 });
    acc.ensureUser({ name: 'root', uid: 0, group: 'root', gecos: 'root', home: '/root', shell: '/bin/bash' });
  }
  acc.setPassword('root', passwordField('root', spec, acc.shadowPassword('root'), opts));
}

export interface LoginUser extends UserSpec {
  passwordSpec?: PasswordSpec;
  /** OpenSSH public keys for ~/.ssh/authorized_keys. */
  sshKeys?: string[];
  /** Create the home directory from /etc/skel (default true). */
  createHome?: boolean;
}

/** A login user (kickstart `user`, `sshkey`): account, home from /etc/skel (mode 0700), authorized_keys (0600 in a 0700 .ssh). */
export async function createLoginUser(tree: StagingTree, acc: Accounts, u: LoginUser, opts: PasswordOptions = {}): Promise<number> {
  const uid = acc.ensureUser(u);
  const pw = acc.passwd.get(u.name)!;
  const gid = Number(pw[PW.gid]);
  if (u.passwordSpec) acc.setPassword(u.name, passwordField(u.name, u.passwordSpec, acc.shadowPassword(u.name), opts));
  const home = pw[PW.home]!;
  if ((u.createHome ?? true) && home !== '/' && !tree.lookup(home)) {
    tree.mkdirp(home, { mode: 0o700, uid, gid });
    const skel = tree.lookup('/etc/skel');
    if (skel?.type === 'dir') copyOwned(tree, skel, home, uid, gid);
  }
  if (u.sshKeys?.length) await addAuthorizedKeys(tree, home, uid, gid, u.sshKeys);
  return uid;
}

function copyOwned(tree: StagingTree, from: Inode, to: string, uid: number, gid: number): void {
  for (const [name, node] of [...from.entries!].sort(([a], [b]) => Buffer.compare(Buffer.from(a), Buffer.from(b)))) {
    const path = `${to}/${name}`;
    const meta = { mode: node.mode, uid, gid, mtime: node.mtime, xattrs: node.xattrs };
    if (node.type === 'dir') { tree.mkdirp(path, meta); copyOwned(tree, node, path, uid, gid); }
    else if (node.type === 'file') tree.addFile(path, node.content!, meta);
    else if (node.type === 'symlink') tree.symlink(path, node.target!, meta);
  }
}

/** Add keys to ~/.ssh/authorized_keys (appending to an existing file), 0600 in a 0700 .ssh, owned by the user. */
export async function addAuthorizedKeys(tree: StagingTree, home: string, uid: number, gid: number, keys: string[]): Promise<void> {
  for (const k of keys) if (k.includes('\n')) throw new AccountError('ACCOUNT_BAD_SSHKEY', 'an ssh key must be one line', { field: home });
  const path = `${home}/.ssh/authorized_keys`;
  const old = (await readTreeText(tree, path)) ?? '';
  tree.mkdirp(`${home}/.ssh`, { mode: 0o700, uid, gid });
  const text = old + (old === '' || old.endsWith('\n') ? '' : '\n') + keys.map((k) => `${k.trim()}\n`).join('');
  tree.addFile(path, BufferContent.of(text), { mode: 0o600, uid, gid });
}

// ---------------------------------------------------------------- sysusers.d

export type SysusersLine =
  | { type: 'u'; name: string; id?: string; gecos?: string; home?: string; shell?: string; file: string; line: number }
  | { type: 'g'; name: string; id?: string; file: string; line: number }
  | { type: 'm'; user: string; group: string; file: string; line: number }
  | { type: 'r'; min: number; max: number; file: string; line: number };

/** Split a sysusers.d line into fields; double and single quotes group words (sysusers.d(5)). */
function splitFields(s: string, file: string, line: number): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < s.length) {
    while (i < s.length && /\s/.test(s[i]!)) i++;
    if (i >= s.length) break;
    let w = '';
    while (i < s.length && !/\s/.test(s[i]!)) {
      const c = s[i]!;
      if (c === '"' || c === "'") {
        const end = s.indexOf(c, i + 1);
        if (end < 0) throw new AccountError('SYSUSERS_BAD_LINE', 'unterminated quote', { file, line });
        w += s.slice(i + 1, end); i = end + 1;
      } else if (c === '\\' && i + 1 < s.length) { w += s[i + 1]; i += 2; } else { w += c; i++; }
    }
    out.push(w);
  }
  return out;
}

export function parseSysusers(text: string, file: string): SysusersLine[] {
  const out: SysusersLine[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = i + 1;
    const l = raw.trim();
    if (l === '' || l.startsWith('#')) return;
    const f = splitFields(l, file, line);
    const dash = (v: string | undefined): string | undefined => (v === undefined || v === '-' ? undefined : v);
    const type = f[0]!.replace(/!$/, '');
    switch (type) {
      case 'u': out.push({ type: 'u', name: f[1]!, id: dash(f[2]), gecos: dash(f[3]), home: dash(f[4]), shell: dash(f[5]), file, line }); break;
      case 'g': out.push({ type: 'g', name: f[1]!, id: dash(f[2]), file, line }); break;
      case 'm': out.push({ type: 'm', user: f[1]!, group: f[2]!, file, line }); break;
      case 'r': {
        const m = /^(\d+)(?:-(\d+))?$/.exec(f[2] ?? '');
        if (!m) throw new AccountError('SYSUSERS_BAD_LINE', 'bad range', { file, line, actual: f[2] });
        out.push({ type: 'r', min: Number(m[1]), max: Number(m[2] ?? m[1]), file, line });
        break;
      }
      default: throw new AccountError('SYSUSERS_BAD_LINE', `unknown line type ${JSON.stringify(f[0])}`, { file, line });
    }
    const last = out[out.length - 1]!;
    if ((last.type === 'u' || last.type === 'g') && !last.name) throw new AccountError('SYSUSERS_BAD_LINE', 'missing name', { file, line });
  });
  return out;
}

/** sysusers.d files of the tree in systemd's order: by file name, /etc overriding /usr/lib and /run of the same name. */
export async function readSysusersDir(tree: StagingTree): Promise<SysusersLine[]> {
  const byName = new Map<string, string>();
  for (const dir of ['/usr/lib/sysusers.d', '/run/sysusers.d', '/etc/sysusers.d']) {
    for (const n of listTreeDir(tree, dir)) if (n.endsWith('.conf')) byName.set(n, `${dir}/${n}`);
  }
  const out: SysusersLine[] = [];
  for (const n of [...byName.keys()].sort()) {
    const text = await readTreeText(tree, byName.get(n)!);
    if (text !== undefined) out.push(...parseSysusers(text, byName.get(n)!));
  }
  return out;
}

/**
 * Apply sysusers lines as systemd-sysusers does: ranges first, groups (g and
 * the groups of u) before users, then memberships. Returns names created.
 */
export function applySysusers(acc: Accounts, lines: SysusersLine[]): string[] {
  const created: string[] = [];
  for (const l of lines) if (l.type === 'r') acc.sysRange = { min: l.min, max: l.max };
  const num = (s: string | undefined): number | undefined => (s !== undefined && /^\d+$/.test(s) ? Number(s) : undefined);
  for (const l of lines) {
    if (l.type === 'g' && acc.gid(l.name) === undefined) {
      // A path as id ("take the owner of this file") cannot be resolved offline: allocate.
      acc.ensureGroup(l.name, { gid: num(l.id), system: true });
      created.push(`group ${l.name}`);
    }
  }
  for (const l of lines) {
    if (l.type !== 'u' || acc.uid(l.name) !== undefined) continue;
    const [uidPart, gidPart] = (l.id ?? '').split(':');
    const uid = num(uidPart);
    let group: string | number | undefined;
    if (gidPart !== undefined && gidPart !== '') {
      const g = num(gidPart);
      // uid:gid — the group with that gid is the primary group; without one, a group of the user's name gets that gid.
      if (g === undefined) group = gidPart;
      else if (acc.hasGid(g)) group = g;
      else { acc.ensureGroup(l.name, { gid: g, system: true }); group = l.name; }
    } else if (acc.gid(l.name) === undefined && uid !== undefined) {
      acc.ensureGroup(l.name, { gid: uid, system: true });
      group = l.name;
    }
    acc.ensureUser({ name: l.name, uid, group, gecos: l.gecos, home: l.home ?? '/', shell: l.shell ?? NOLOGIN, system: true, password: '!*' });
    created.push(`user ${l.name}`);
  }
  for (const l of lines) {
    if (l.type !== 'm') continue;
    if (acc.gid(l.group) === undefined) acc.ensureGroup(l.group, { system: true });
    if (acc.uid(l.user) === undefined) acc.ensureUser({ name: l.user, system: true, home: '/', shell: NOLOGIN, password: '!*' });
    acc.addMember(l.group, l.user);
  }
  return created;
}

// ---------------------------------------------------------------- scriptlet account commands

export type AccountCommand =
  | { kind: 'groupadd'; name: string; gid?: number; system: boolean }
  | { kind: 'useradd'; name: string; uid?: number; group?: string | number; groups: string[]; home?: string; shell?: string; gecos?: string; system: boolean; createHome: boolean; userGroup: boolean }
  | { kind: 'usermod'; name: string; appendGroups: string[] };

export interface ScriptletAccounts {
  commands: AccountCommand[];
  /** Commands other than account management (and getent/true/exit/:), which must be run or reported. */
  other: string[];
}

/** Shell words of a script with quoting; control operators become their own tokens. */
function shellTokens(script: string): string[] {
  const toks: string[] = [];
  const s = script.replace(/\\\n/g, ' ');
  let i = 0;
  while (i < s.length) {
    const c = s[i]!;
    if (c === '#' && (i === 0 || /\s/.test(s[i - 1]!))) { while (i < s.length && s[i] !== '\n') i++; continue; }
    if (c === '\n' || c === ';') { toks.push(';'); i++; continue; }
    if (/\s/.test(c)) { i++; continue; }
    const two = s.slice(i, i + 2);
    if (two === '||' || two === '&&') { toks.push(two); i += 2; continue; }
    if (c === '|' || c === '&' || c === '(' || c === ')') { toks.push(c === '&' ? ';' : c); i++; continue; }
    let w = '';
    let quoted = false;
    while (i < s.length && !/[\s;|&()]/.test(s[i]!)) {
      const d = s[i]!;
      if (d === "'") { const e = s.indexOf("'", i + 1); w += s.slice(i + 1, e < 0 ? s.length : e); i = e < 0 ? s.length : e + 1; quoted = true; }
      else if (d === '"') {
        let j = i + 1;
        while (j < s.length && s[j] !== '"') { if (s[j] === '\\' && j + 1 < s.length) { w += s[j + 1]; j += 2; } else w += s[j++]; }
        i = j + 1; quoted = true;
      } else if (d === '\\' && i + 1 < s.length) { w += s[i + 1]; i += 2; } else { w += d; i++; }
    }
    // Redirections (>/dev/null, 2>&1, > file, <file) carry no meaning for account creation.
    if (!quoted && /^\d*[<>]/.test(w)) {
      if (/^\d*[<>]{1,2}$/.test(w) && s[i] === '&') { i++; while (i < s.length && /[0-9-]/.test(s[i]!)) i++; }
      else if (/^\d*[<>]{1,2}$/.test(w)) i = skipWord(s, i);
      continue;
    }
    toks.push(w);
  }
  return toks;
}

function skipWord(s: string, i: number): number {
  while (i < s.length && /\s/.test(s[i]!) && s[i] !== '\n') i++;
  while (i < s.length && !/[\s;|&()]/.test(s[i]!)) i++;
  return i;
}

const BENIGN = new Set(['getent', 'true', ':', 'exit', 'id', '[', 'test']);

/** Pull useradd/groupadd/usermod invocations out of a scriptlet body (no execution). */
export function accountCommandsFromScriptlet(body: string): ScriptletAccounts {
  const toks = shellTokens(body);
  const commands: AccountCommand[] = [];
  const other: string[] = [];
  let cur: string[] = [];
  const flush = (): void => {
    if (cur.length === 0) return;
    const argv = cur;
    cur = [];
    const prog = argv[0]!.replace(/^.*\//, '');
    const cmd = prog === 'useradd' || prog === 'adduser' ? parseUseradd(argv) : prog === 'groupadd' || prog === 'addgroup' ? parseGroupadd(argv) : prog === 'usermod' ? parseUsermod(argv) : undefined;
    if (cmd) commands.push(cmd);
    else if (!BENIGN.has(prog) && !(prog === 'if' || prog === 'then' || prog === 'fi' || prog === 'else')) other.push(argv.join(' '));
  };
  for (const t of toks) {
    if (t === ';' || t === '||' || t === '&&' || t === '|' || t === '(' || t === ')') flush();
    else cur.push(t);
  }
  flush();
  return { commands, other };
}

function optionParser(argv: string[], withArg: Set<string>, longMap: Record<string, string>): { opts: Map<string, string[]>; args: string[] } {
  const opts = new Map<string, string[]>();
  const args: string[] = [];
  for (let i = 1; i < argv.length; i++) {
    let a = argv[i]!;
    let val: string | undefined;
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      if (eq > 0) { val = a.slice(eq + 1); a = a.slice(0, eq); }
      a = longMap[a] ?? a;
    } else if (a.startsWith('-') && a.length > 2 && withArg.has(a.slice(0, 2))) { val = a.slice(2); a = a.slice(0, 2); }
    else if (a.startsWith('-') && a.length > 2) {
      // Bundled flags: -rM
      for (const ch of a.slice(1)) opts.set(`-${ch}`, [...(opts.get(`-${ch}`) ?? []), '']);
      continue;
    }
    if (a.startsWith('-')) {
      if (withArg.has(a) && val === undefined) val = argv[++i] ?? '';
      opts.set(a, [...(opts.get(a) ?? []), val ?? '']);
    } else args.push(a);
  }
  return { opts, args };
}

const numOrName = (v: string): string | number => (/^\d+$/.test(v) ? Number(v) : v);

function parseUseradd(argv: string[]): AccountCommand | undefined {
  const { opts, args } = optionParser(argv, new Set(['-u', '-g', '-G', '-d', '-s', '-c', '-K', '-p', '-e', '-f', '-k', '-b', '-Z', '-R', '-P']), {
    '--uid': '-u', '--gid': '-g', '--groups': '-G', '--home-dir': '-d', '--home': '-d', '--shell': '-s', '--comment': '-c', '--system': '-r',
    '--create-home': '-m', '--no-create-home': '-M', '--no-user-group': '-N', '--user-group': '-U', '--non-unique': '-o', '--key': '-K',
    '--password': '-p', '--expiredate': '-e', '--inactive': '-f', '--skel': '-k', '--base-dir': '-b', '--root': '-R', '--prefix': '-P', '--no-log-init': '-l',
  });
  const name = args[args.length - 1];
  if (!name || name.includes('$')) return undefined;
  const last = (k: string): string | undefined => opts.get(k)?.at(-1);
  const g = last('-g');
  return {
    kind: 'useradd', name, system: opts.has('-r'),
    uid: last('-u') !== undefined && /^\d+$/.test(last('-u')!) ? Number(last('-u')) : undefined,
    group: g !== undefined && g !== '' ? numOrName(g) : undefined,
    groups: (opts.get('-G') ?? []).flatMap((v) => v.split(',')).filter((x) => x !== ''),
    home: last('-d'), shell: last('-s'), gecos: last('-c'),
    createHome: opts.has('-m') && !opts.has('-M'),
    userGroup: !opts.has('-N') && (g === undefined || g === ''),
  };
}

function parseGroupadd(argv: string[]): AccountCommand | undefined {
  const { opts, args } = optionParser(argv, new Set(['-g', '-K', '-p', '-R', '-P', '-U']), {
    '--gid': '-g', '--system': '-r', '--force': '-f', '--non-unique': '-o', '--key': '-K', '--password': '-p', '--root': '-R', '--prefix': '-P', '--users': '-U',
  });
  const name = args[args.length - 1];
  if (!name || name.includes('$')) return undefined;
  const gid = opts.get('-g')?.at(-1);
  return { kind: 'groupadd', name, system: opts.has('-r'), gid: gid !== undefined && /^\d+$/.test(gid) ? Number(gid) : undefined };
}

function parseUsermod(argv: string[]): AccountCommand | undefined {
  const { opts, args } = optionParser(argv, new Set(['-G', '-g', '-d', '-s', '-c', '-u', '-l', '-e', '-f', '-p', '-R', '-P']), { '--groups': '-G', '--append': '-a' });
  const name = args[args.length - 1];
  // Only the `-a -G groups user` form is understood; anything else is left to the caller to report.
  if (!name || name.includes('$') || !opts.has('-a') || !opts.has('-G') || [...opts.keys()].some((k) => k !== '-a' && k !== '-G')) return undefined;
  return { kind: 'usermod', name, appendGroups: opts.get('-G')!.flatMap((v) => v.split(',')).filter((x) => x !== '') };
}

/** Apply parsed scriptlet commands (idempotently, as `getent … || useradd …` would). */
export function applyAccountCommands(acc: Accounts, commands: AccountCommand[]): void {
  for (const c of commands) {
    if (c.kind === 'groupadd') acc.ensureGroup(c.name, { gid: c.gid, system: c.system });
    else if (c.kind === 'usermod') for (const g of c.appendGroups) acc.addMember(g, c.name);
    else {
      const group = c.group ?? (c.userGroup ? undefined : 100);
      acc.ensureUser({ name: c.name, uid: c.uid, group, groups: c.groups, gecos: c.gecos, home: c.home ?? (c.system ? undefined : `/home/${c.name}`), shell: c.shell, system: c.system, password: c.system ? '!!' : '!' });
    }
  }
}
