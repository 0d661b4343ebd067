/**
 * Kickstart front end. Reads the command section, `%packages`, script
 * sections (`%pre`, `%post`, … kept verbatim and reported) and `%include`
 * (relative to the including file) into an {@link ImageSpec}.
 *
 * Syntax follows pykickstart: each command line is split shell-style
 * (see shell.ts); options are `--name=value` or `--name value`; option names
 * are matched without regard to case, `-` or `_` (pykickstart accepts both
 * `--instLangs` and `--inst-langs`). Sections end at `%end`, or — in
 * kickstarts older than Fedora 13 — at the next section header or end of file.
 */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import {
  SpecError, normalizeSpec, defaultPartitions,
  type ImageSpec, type ImageSpecInput, type Filesystem, type Script, type IgnoredDirective, type Password,
  type NetworkDevice, type UserSpec, type Firmware, type PartitionTable,
} from './model.js';
import { shellSplit, ShellSyntaxError } from './shell.js';

export interface KickstartOptions {
  /** Unknown commands and options become warnings instead of errors. */
  lenient?: boolean;
  /** Read the file as the body of this section (a snippet included inside `%packages`/`%post`). */
  fragment?: 'packages' | 'post' | 'pre';
}

interface Line { text: string; file: string; line: number }

const MAX_INCLUDE_DEPTH = 16;
const MAX_FILE_BYTES = 16 * 1024 * 1024;

class KsError extends SpecError {
  constructor(message: string, at: Line, code = 'KICKSTART_INVALID') {
    super(`${message}: ${JSON.stringify(at.text.trim().slice(0, 200))}`, { file: at.file, line: at.line }, code);
  }
}

/** Read a file and expand `%include`/`%ksappend` into one list of physical lines. */
/** One `%include` met while reading, and the section it appeared in (absent: the command section). */
export interface KickstartInclude { file: string; line: number; target: string; section?: string; resolved: boolean }

interface ExpandState { warnings: string[]; ignored: IgnoredDirective[]; includes: KickstartInclude[]; section?: string | undefined }

function readExpanded(file: string, text: string, depth: number, stack: string[], st: ExpandState): Line[] {
  const { warnings, ignored } = st;
  const out: Line[] = [];
  const lines = text.split(/\r?\n/);
  if (lines.length && lines[lines.length - 1] === '') lines.pop();
  lines.forEach((t, i) => {
    const at: Line = { text: t, file, line: i + 1 };
    const m = /^\s*%(include|ksappend)(?:\s+(.*))?$/.exec(t);
    if (!m) {
      const h = /^\s*%([a-z-]+)(\s|$)/.exec(t);
      if (h && SECTIONS.has(h[1]!)) st.section = h[1];
      else if (h && h[1] === 'end') st.section = undefined;
      out.push(at);
      return;
    }
    let words: string[];
    try { words = shellSplit(m[2] ?? ''); } catch (e) { throw new KsError((e as Error).message, at); }
    if (words.length !== 1) throw new KsError(`%${m[1]} takes exactly one file name`, at);
    const target = isAbsolute(words[0]!) ? words[0]! : resolve(dirname(file), words[0]!);
    if (stack.includes(target)) throw new KsError(`%include loop through ${target}`, at, 'KICKSTART_INCLUDE_LOOP');
    if (depth >= MAX_INCLUDE_DEPTH) throw new KsError(`%include nested deeper than ${MAX_INCLUDE_DEPTH}`, at, 'KICKSTART_INCLUDE_LOOP');
    let sub: string;
    const inc: KickstartInclude = { file, line: i + 1, target, resolved: false };
    if (st.section) inc.section = st.section;
    st.includes.push(inc);
    try {
      sub = readKsFile(target);
      inc.resolved = true;
    } catch (e) {
      // Absolute includes commonly name files that only exist while Anaconda
      // runs (written by %pre, or shipped in the installer image).
      if (isAbsolute(words[0]!) && (e as NodeJS.ErrnoException).code === 'ENOENT') {
        warnings.push(`${file}:${i + 1}: %include ${words[0]} not found; left unresolved (an installer-time file)`);
        ignored.push({ directive: `%include ${words[0]}`, file, line: i + 1, reason: 'installer-time file, not found on the build host' });
        return;
      }
      throw new KsError(`cannot read included file ${target} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, at, 'KICKSTART_INCLUDE_MISSING');
    }
    out.push(...readExpanded(target, sub, depth + 1, [...stack, target], st));
  });
  return out;
}

/** The `%include`s of a kickstart, recursively, with the section each appears in. */
export function kickstartIncludes(path: string): KickstartInclude[] {
  const st: ExpandState = { warnings: [], ignored: [], includes: [] };
  const abs = resolve(path);
  readExpanded(abs, readKsFile(abs), 0, [abs], st);
  return st.includes;
}

function readKsFile(path: string): string {
  const buf = readFileSync(path);
  if (buf.length > MAX_FILE_BYTES) throw new SpecError(`kickstart larger than ${MAX_FILE_BYTES} bytes`, { file: path }, 'KICKSTART_TOO_LARGE');
  return buf.toString('utf8');
}

// ---- option parsing ------------------------------------------------------

type OptKind = 'flag' | 'value';
/** Option table: normalized name → kind; the first spelling is the canonical key returned. */
type OptTable = Record<string, OptKind>;
const norm = (s: string): string => s.toLowerCase().replace(/[-_]/g, '');

interface Parsed { opts: Map<string, string | true>; args: string[] }

function parseOptions(words: string[], table: OptTable, at: Line, lenient: boolean, warnings: string[]): Parsed {
  const byNorm = new Map(Object.entries(table).map(([k, v]) => [norm(k), [k, v] as const]));
  const opts = new Map<string, string | true>();
  const args: string[] = [];
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    if (!w.startsWith('--') || w === '--') { args.push(w); continue; }
    const eq = w.indexOf('=');
    const rawName = eq >= 0 ? w.slice(2, eq) : w.slice(2);
    const def = byNorm.get(norm(rawName));
    if (!def) {
      if (lenient) { warnings.push(`${at.file}:${at.line}: unknown option --${rawName} ignored`); continue; }
      throw new KsError(`unknown option --${rawName}`, at, 'KICKSTART_UNKNOWN_OPTION');
    }
    const [name, kind] = def;
    if (kind === 'flag') {
      if (eq >= 0) {
        const v = w.slice(eq + 1).toLowerCase();
        if (['yes', 'on', 'true', '1'].includes(v)) opts.set(name, true);
        else if (!['no', 'off', 'false', '0'].includes(v)) throw new KsError(`--${rawName} takes no value`, at);
      } else opts.set(name, true);
      continue;
    }
    let value: string;
    if (eq >= 0) value = w.slice(eq + 1);
    else {
      if (i + 1 >= words.length) throw new KsError(`--${rawName} needs a value`, at);
      value = words[++i]!;
    }
    // Repeatable options (--nameserver, --service, ...) accumulate comma-joined.
    const prev = opts.get(name);
    opts.set(name, typeof prev === 'string' ? `${prev},${value}` : value);
  }
  return { opts, args };
}

const str = (p: Parsed, k: string): string | undefined => { const v = p.opts.get(k); return typeof v === 'string' ? v : undefined; };
const flag = (p: Parsed, k: string): boolean => p.opts.has(k);
const list = (v: string | undefined): string[] => (v ?? '').split(',').map((s) => s.trim()).filter(Boolean);

function int(p: Parsed, k: string, at: Line): number | undefined {
  const v = str(p, k);
  if (v === undefined) return undefined;
  if (!/^-?\d+$/.test(v)) throw new KsError(`--${k} must be a whole number, not ${JSON.stringify(v)}`, at);
  return Number(v);
}

// ---- command tables ------------------------------------------------------

const PART_OPTS: OptTable = {
  size: 'value', grow: 'flag', maxsize: 'value', fstype: 'value', label: 'value', ondisk: 'value', ondrive: 'value',
  asprimary: 'flag', recommended: 'flag', onpart: 'value', usepart: 'value', noformat: 'flag', fsoptions: 'value',
  fsprofile: 'value', mkfsoptions: 'value', encrypted: 'flag', passphrase: 'value', luks_version: 'value',
  hibernation: 'flag', resize: 'flag', start: 'value', end: 'value', bytes_per_inode: 'value', type: 'value',
  cipher: 'value', pbkdf: 'value', escrowcert: 'value', backuppassphrase: 'flag', active: 'flag',
};

/** Commands that parse but do not change an image build (installer UI, installer-time actions, unsupported storage). */
const IGNORED: Record<string, string> = {
  text: 'installer UI mode', cmdline: 'installer UI mode', graphical: 'installer UI mode', interactive: 'installer UI mode',
  reboot: 'installer end action', shutdown: 'installer end action', halt: 'installer end action', poweroff: 'installer end action',
  skipx: 'X configuration', xconfig: 'X configuration', monitor: 'X configuration', mouse: 'X configuration',
  install: 'installer mode', upgrade: 'installer mode', autostep: 'installer UI', mediacheck: 'installer media check',
  vnc: 'installer UI', logging: 'installer logging', eula: 'EULA acceptance', device: 'installer kernel modules',
  driverdisk: 'installer drivers', ignoredisk: 'disk selection', zerombr: 'image starts as a zeroed file anyway',
  auth: 'authconfig is obsolete (shadow passwords with SHA-512 are always used)', authconfig: 'authconfig is obsolete (shadow passwords with SHA-512 are always used)',
  authselect: 'authselect profile is applied by the authselect package on first boot',
  sshpw: 'installer-environment ssh password', timesource: 'NTP configuration is left to the chrony package',
  ostreesetup: 'ostree deployments are not supported', liveimg: 'live image payloads are not supported',
  raid: 'software RAID is not supported',
  key: 'installation key', langsupport: 'obsolete', lilo: 'obsolete', lilocheck: 'obsolete',
  harddrive: 'installation source on a disk', cdrom: 'installation source on a CD', nfs: 'installation source on NFS',
  updates: 'installer updates image', rescue: 'installer rescue mode', realm: 'realm join happens on first boot',
  iscsi: 'installer storage', iscsiname: 'installer storage', fcoe: 'installer storage', zfcp: 'installer storage',
  multipath: 'installer storage', dmraid: 'installer storage', nvdimm: 'installer storage', snapshot: 'LVM snapshots',
  mount: 'installer storage', zipl: 's390 boot loader', module: 'DNF modules are not supported', rhsm: 'subscription',
  syspurpose: 'subscription',
};

const SECTIONS = new Set(['packages', 'pre', 'pre-install', 'post', 'traceback', 'onerror', 'addon', 'anaconda', 'certificate']);

const MiB = 1024 * 1024;

interface Builder {
  input: ImageSpecInput;
  warnings: string[];
  ignored: IgnoredDirective[];
  lenient: boolean;
  reqpart?: { addBoot: boolean };
  autopart?: { fstype?: Filesystem; noboot: boolean; noswap: boolean; nohome: boolean };
  users: Map<string, UserSpec>;
  packagesSeen: boolean;
  /** LVM volume groups and btrfs volumes: name (or LABEL=) → member partition names. */
  volumes: Map<string, string[]>;
  /** Logical volumes and btrfs subvolumes/volumes that want a mount point. */
  carriers: { mount: string; volume: string; fs?: Filesystem; label?: string; grow: boolean; at: Line }[];
  /** Last line that set each top-level model field, to place schema errors. */
  fieldLines: Map<string, Line>;
}

/** The model fields each command writes (for mapping validation errors back to a line). */
const FIELD_OF: Record<string, string[]> = {
  url: ['repositories'], repo: ['repositories'], part: ['disk'], partition: ['disk'], autopart: ['disk'], reqpart: ['disk'], clearpart: ['disk'],
  volgroup: ['disk'], logvol: ['disk'], btrfs: ['disk'], bootloader: ['bootloader'], rootpw: ['root'], user: ['users'], group: ['groups'],
  sshkey: ['users', 'root'], timezone: ['timezone'], lang: ['locale'], keyboard: ['keyboard'], network: ['network', 'hostname'],
  firewall: ['firewall'], selinux: ['selinux'], services: ['services'], firstboot: ['firstboot'],
};

type Handler = (p: Parsed, at: Line, b: Builder) => void;
interface CommandDef { opts: OptTable; run: Handler }

function mapFs(fs: string, at: Line): Filesystem {
  const f = fs.toLowerCase();
  const known: Record<string, Filesystem> = {
    ext4: 'ext4', ext3: 'ext3', ext2: 'ext2', xfs: 'xfs', btrfs: 'btrfs', vfat: 'vfat', efi: 'efi', swap: 'swap',
    biosboot: 'biosboot', prepboot: 'prepboot', 'lvmpv': 'lvmpv', 'physical volume (lvm)': 'lvmpv', 'efi system partition': 'efi',
  };
  const v = known[f];
  if (!v) throw new KsError(`unsupported --fstype ${fs}`, at, 'KICKSTART_UNSUPPORTED');
  return v;
}

function passwordOf(value: string | undefined, crypted: boolean): Password | undefined {
  if (value === undefined) return undefined;
  return crypted ? { hashed: value } : { plain: value };
}

function userFor(b: Builder, name: string): UserSpec {
  let u = b.users.get(name);
  if (!u) { u = { name, groups: [], lock: false, sshKeys: [] }; b.users.set(name, u); }
  return u;
}

const COMMANDS: Record<string, CommandDef> = {
  url: {
    opts: { url: 'value', mirrorlist: 'value', metalink: 'value', proxy: 'value', noverifyssl: 'flag', sslcacert: 'value', sslclientcert: 'value', sslclientkey: 'value' },
    run: (p, at, b) => {
      const repo = { name: 'anaconda', installSource: true, ...repoSources(p, at) };
      if (flag(p, 'noverifyssl')) Object.assign(repo, { sslverify: false });
      if (str(p, 'proxy')) Object.assign(repo, { proxy: str(p, 'proxy') });
      b.input.repositories = [...(b.input.repositories ?? []).filter((r) => !r.installSource), repo];
    },
  },
  repo: {
    opts: {
      name: 'value', baseurl: 'value', mirrorlist: 'value', metalink: 'value', cost: 'value', includepkgs: 'value', excludepkgs: 'value',
      proxy: 'value', ignoregroups: 'value', noverifyssl: 'flag', install: 'flag', sslcacert: 'value', sslclientcert: 'value', sslclientkey: 'value',
    },
    run: (p, at, b) => {
      const name = str(p, 'name');
      if (!name) throw new KsError('repo needs --name', at);
      const repo: NonNullable<ImageSpecInput['repositories']>[number] = { name, ...repoSources(p, at) };
      const cost = int(p, 'cost', at);
      if (cost !== undefined) repo.cost = cost;
      if (str(p, 'includepkgs')) repo.includepkgs = list(str(p, 'includepkgs'));
      if (str(p, 'excludepkgs')) repo.excludepkgs = list(str(p, 'excludepkgs'));
      if (str(p, 'proxy')) repo.proxy = str(p, 'proxy');
      if (flag(p, 'noverifyssl')) repo.sslverify = false;
      if (flag(p, 'install')) repo.install = true;
      const repos = b.input.repositories ?? [];
      // A later repo with the same name replaces the earlier one (pykickstart warns and keeps the last).
      b.input.repositories = [...repos.filter((r) => r.name !== name), repo];
    },
  },
  part: {
    opts: PART_OPTS,
    run: (p, at, b) => {
      if (p.args.length !== 1) throw new KsError('part needs exactly one mount point', at);
      const mnt = p.args[0]!;
      const sizeMiB = int(p, 'size', at);
      const part: NonNullable<NonNullable<ImageSpecInput['disk']>['partitions']>[number] = { grow: flag(p, 'grow') };
      let fs: Filesystem | undefined = str(p, 'fstype') ? mapFs(str(p, 'fstype')!, at) : undefined;
      if (mnt === 'swap') { fs = 'swap'; part.mount = 'swap'; }
      else if (mnt === 'biosboot') fs = 'biosboot';
      else if (mnt === 'prepboot') fs = 'prepboot';
      else if (/^pv\./.test(mnt)) { fs = 'lvmpv'; part.name = mnt; }
      else if (/^(btrfs|raid)\./.test(mnt)) { fs = fs ?? 'btrfs'; part.name = mnt; }
      else if (mnt === 'none') part.mount = 'none';
      else if (mnt.startsWith('/')) part.mount = mnt;
      else throw new KsError(`bad mount point ${mnt}`, at);
      if (mnt === '/boot/efi' && !fs) fs = 'efi';
      part.fs = fs ?? 'ext4';
      // Anaconda's defaults: 1 MiB for biosboot, 4 MiB for prepboot, else the partition minimum (1 MiB).
      part.size = (sizeMiB ?? (fs === 'prepboot' ? 4 : fs === 'efi' ? 500 : fs === 'swap' ? 1024 : 1)) * MiB;
      const max = int(p, 'maxsize', at);
      if (max !== undefined) part.maxSize = max * MiB;
      if (str(p, 'label')) part.label = str(p, 'label');
      if (str(p, 'fsoptions')) part.mountOptions = str(p, 'fsoptions');
      if (str(p, 'mkfsoptions')) part.fsOptions = str(p, 'mkfsoptions');
      if (flag(p, 'encrypted')) b.warnings.push(`${at.file}:${at.line}: --encrypted is not supported; partition left unencrypted`);
      if (part.fs === 'lvmpv' || /^(btrfs|raid)\./.test(mnt)) b.warnings.push(`${at.file}:${at.line}: ${mnt}: LVM/btrfs/RAID member partitions are not supported`);
      const prev = b.input.disk?.partitions ?? [];
      // A later `part` for the same mount point replaces the earlier one (spins override their base: pykickstart warns).
      const same = part.mount && part.mount !== 'none' ? prev.findIndex((x) => x.mount === part.mount) : -1;
      if (same >= 0) b.warnings.push(`${at.file}:${at.line}: partition ${part.mount} defined again; the later definition wins`);
      b.input.disk = { ...b.input.disk, partitions: same >= 0 ? prev.map((x, k) => (k === same ? part : x)) : [...prev, part] };
    },
  },
  autopart: {
    opts: { type: 'value', fstype: 'value', nohome: 'flag', noboot: 'flag', noswap: 'flag', nolvm: 'flag', encrypted: 'flag', passphrase: 'value', cipher: 'value', luks_version: 'value', pbkdf: 'value', escrowcert: 'value', backuppassphrase: 'flag', hibernation: 'flag' },
    run: (p, at, b) => {
      const type = str(p, 'type') ?? (flag(p, 'nolvm') ? 'plain' : 'lvm');
      if (!['lvm', 'plain', 'btrfs', 'thinp'].includes(type)) throw new KsError(`bad autopart --type ${type}`, at);
      if (type !== 'plain') b.warnings.push(`${at.file}:${at.line}: autopart --type=${type} is built as plain partitions`);
      b.autopart = { noboot: flag(p, 'noboot'), noswap: flag(p, 'noswap'), nohome: flag(p, 'nohome') };
      const fst = str(p, 'fstype');
      if (fst) b.autopart.fstype = mapFs(fst, at);
    },
  },
  reqpart: { opts: { 'add-boot': 'flag' }, run: (p, _at, b) => { b.reqpart = { addBoot: flag(p, 'add-boot') }; } },
  clearpart: {
    opts: { all: 'flag', none: 'flag', linux: 'flag', list: 'value', drives: 'value', initlabel: 'flag', disklabel: 'value', cdl: 'flag' },
    run: (p, at, b) => {
      const label = str(p, 'disklabel');
      if (label === undefined) return;
      const table = ({ gpt: 'gpt', msdos: 'mbr', mbr: 'mbr', dos: 'mbr' } as Record<string, PartitionTable>)[label.toLowerCase()];
      if (!table) throw new KsError(`unsupported --disklabel ${label}`, at, 'KICKSTART_UNSUPPORTED');
      b.input.disk = { ...b.input.disk, table };
    },
  },
  bootloader: {
    opts: {
      location: 'value', append: 'value', timeout: 'value', driveorder: 'value', password: 'value', iscrypted: 'flag', md5pass: 'value',
      'boot-drive': 'value', leavebootorder: 'flag', extlinux: 'flag', sdboot: 'flag', disabled: 'flag', nombr: 'flag', default: 'value',
      lba32: 'flag', upgrade: 'flag', useLilo: 'flag', linear: 'flag', nolinear: 'flag', 'efi': 'flag', 'zipl': 'flag', 'secure': 'flag', 'nosecure': 'flag',
    },
    run: (p, at, b) => {
      const bl: NonNullable<ImageSpecInput['bootloader']> = { ...b.input.bootloader };
      // appliance-creator also accepted the kind as a bare word (`bootloader ... extlinux`).
      for (const a of p.args) {
        if (a === 'extlinux') bl.kind = 'extlinux';
        else throw new KsError(`unexpected argument ${a}`, at);
      }
      if (flag(p, 'extlinux')) bl.kind = 'extlinux';
      if (flag(p, 'sdboot')) bl.kind = 'systemd-boot';
      const loc = str(p, 'location');
      if (loc !== undefined) {
        const l = ({ mbr: 'mbr', partition: 'partition', boot: 'partition', none: 'none' } as Record<string, 'mbr' | 'partition' | 'none'>)[loc];
        if (!l) throw new KsError(`bad --location ${loc}`, at);
        bl.location = l;
      }
      if (flag(p, 'disabled')) { bl.kind = 'none'; bl.location = 'none'; }
      if (flag(p, 'nombr')) bl.location = 'partition';
      const t = int(p, 'timeout', at);
      if (t !== undefined) bl.timeout = t;
      const app = str(p, 'append');
      if (app !== undefined) bl.kernelArgs = [...(bl.kernelArgs ?? []), ...app.split(/\s+/).filter(Boolean)];
      const pw = str(p, 'password') ?? str(p, 'md5pass');
      if (pw !== undefined) bl.password = pw;
      b.input.bootloader = bl;
    },
  },
  rootpw: {
    opts: { iscrypted: 'flag', plaintext: 'flag', lock: 'flag', 'allow-ssh': 'flag' },
    run: (p, at, b) => {
      if (p.args.length > 1) throw new KsError('rootpw takes one password', at);
      if (p.args.length === 0 && !flag(p, 'lock')) throw new KsError('rootpw needs a password or --lock', at);
      const root: NonNullable<ImageSpecInput['root']> = { ...b.input.root, lock: flag(p, 'lock') };
      const pw = passwordOf(p.args[0], flag(p, 'iscrypted'));
      if (pw) root.password = pw;
      b.input.root = root;
    },
  },
  user: {
    opts: { name: 'value', groups: 'value', homedir: 'value', iscrypted: 'flag', password: 'value', plaintext: 'flag', lock: 'flag', shell: 'value', uid: 'value', gid: 'value', gecos: 'value' },
    run: (p, at, b) => {
      const name = str(p, 'name');
      if (!name) throw new KsError('user needs --name', at);
      const u = userFor(b, name);
      u.groups = list(str(p, 'groups'));
      if (str(p, 'homedir')) u.home = str(p, 'homedir');
      if (str(p, 'shell')) u.shell = str(p, 'shell');
      if (str(p, 'gecos') !== undefined) u.gecos = str(p, 'gecos');
      const uid = int(p, 'uid', at); if (uid !== undefined) u.uid = uid;
      const gid = int(p, 'gid', at); if (gid !== undefined) u.gid = gid;
      const pw = passwordOf(str(p, 'password'), flag(p, 'iscrypted'));
      if (pw) u.password = pw;
      u.lock = flag(p, 'lock');
    },
  },
  group: {
    opts: { name: 'value', gid: 'value' },
    run: (p, at, b) => {
      const name = str(p, 'name');
      if (!name) throw new KsError('group needs --name', at);
      const g: { name: string; gid?: number } = { name };
      const gid = int(p, 'gid', at); if (gid !== undefined) g.gid = gid;
      b.input.groups = [...(b.input.groups ?? []), g];
    },
  },
  sshkey: {
    opts: { username: 'value' },
    run: (p, at, b) => {
      const name = str(p, 'username');
      if (!name || p.args.length !== 1) throw new KsError('sshkey needs --username and one quoted key', at);
      if (name === 'root') b.input.root = { ...b.input.root, sshKeys: [...(b.input.root?.sshKeys ?? []), p.args[0]!] };
      else userFor(b, name).sshKeys.push(p.args[0]!);
    },
  },
  timezone: {
    opts: { utc: 'flag', isutc: 'flag', nontp: 'flag', ntpservers: 'value' },
    run: (p, at, b) => {
      if (p.args.length > 1) throw new KsError('timezone takes one zone name', at);
      const tz: NonNullable<ImageSpecInput['timezone']> = { ...b.input.timezone };
      if (p.args[0]) tz.name = p.args[0];
      tz.utc = flag(p, 'utc') || flag(p, 'isutc');
      if (flag(p, 'nontp')) tz.ntp = false;
      if (str(p, 'ntpservers')) tz.ntpServers = list(str(p, 'ntpservers'));
      b.input.timezone = tz;
    },
  },
  lang: {
    opts: { addsupport: 'value' },
    run: (p, at, b) => {
      if (p.args.length !== 1) throw new KsError('lang takes one locale', at);
      b.input.locale = p.args[0];
    },
  },
  keyboard: {
    opts: { vckeymap: 'value', xlayouts: 'value', switch: 'value' },
    run: (p, at, b) => {
      if (p.args.length > 1) throw new KsError('keyboard takes at most one layout', at);
      const kb: NonNullable<ImageSpecInput['keyboard']> = { ...b.input.keyboard };
      const xl = list(str(p, 'xlayouts'));
      if (xl.length) kb.xlayouts = xl;
      const vc = str(p, 'vckeymap') ?? p.args[0];
      if (vc) kb.vconsole = vc;
      if (!str(p, 'xlayouts') && p.args[0]) kb.xlayouts = [p.args[0]];
      if (!vc && xl.length) kb.vconsole = xl[0]!.replace(/\s*\(.*\)$/, '');
      b.input.keyboard = kb;
    },
  },
  network: {
    opts: {
      bootproto: 'value', device: 'value', ip: 'value', netmask: 'value', gateway: 'value', nameserver: 'value', hostname: 'value',
      onboot: 'value', activate: 'flag', 'no-activate': 'flag', noipv4: 'flag', noipv6: 'flag', ipv6: 'value', ipv6gateway: 'value', mtu: 'value',
      nodefroute: 'flag', nodns: 'flag', essid: 'value', wepkey: 'value', wpakey: 'value', ethtool: 'value', dhcpclass: 'value', bondslaves: 'value',
      bondopts: 'value', vlanid: 'value', interfacename: 'value', teamslaves: 'value', teamconfig: 'value', bridgeslaves: 'value', bridgeopts: 'value',
      bindto: 'value', 'ipv4-dns-search': 'value', 'ipv6-dns-search': 'value', 'ipv4-ignore-auto-dns': 'flag', 'ipv6-ignore-auto-dns': 'flag', notksdevice: 'flag',
    },
    run: (p, at, b) => {
      const host = str(p, 'hostname');
      const device = str(p, 'device');
      const bootproto = str(p, 'bootproto');
      if (host !== undefined && host !== '') b.input.hostname = host;
      // `network --hostname=x` alone only sets the host name.
      if (!device && !bootproto && host !== undefined) return;
      const n: Partial<NetworkDevice> = { device: device ?? 'link' };
      if (bootproto) {
        const bp = bootproto.toLowerCase() === 'query' ? 'dhcp' : bootproto.toLowerCase();
        if (!['dhcp', 'static', 'none', 'bootp', 'ibft'].includes(bp)) throw new KsError(`bad --bootproto ${bootproto}`, at);
        n.bootproto = bp as NetworkDevice['bootproto'];
      }
      for (const k of ['ip', 'netmask', 'gateway', 'ipv6', 'ipv6gateway'] as const) if (str(p, k)) n[k] = str(p, k);
      if (str(p, 'nameserver')) n.nameservers = list(str(p, 'nameserver'));
      if (flag(p, 'noipv4')) n.noipv4 = true;
      if (flag(p, 'noipv6')) n.noipv6 = true;
      const mtu = int(p, 'mtu', at); if (mtu !== undefined) n.mtu = mtu;
      const onboot = str(p, 'onboot');
      if (onboot !== undefined) n.onboot = ['yes', 'on', 'true', '1'].includes(onboot.toLowerCase());
      if (flag(p, 'activate')) n.activate = true;
      if (host) n.hostname = host;
      if (n.bootproto === 'static' && !n.ip && !n.ipv6) throw new KsError('--bootproto=static needs --ip', at);
      b.input.network = [...(b.input.network ?? []).filter((x) => x.device !== n.device), n];
    },
  },
  firewall: {
    opts: {
      enabled: 'flag', enable: 'flag', disabled: 'flag', disable: 'flag', service: 'value', port: 'value', trust: 'value', ssh: 'flag', smtp: 'flag',
      http: 'flag', ftp: 'flag', telnet: 'flag', 'remove-service': 'value', 'use-system-defaults': 'flag', high: 'flag', medium: 'flag',
    },
    run: (p, _at, b) => {
      const services = list(str(p, 'service'));
      for (const s of ['ssh', 'smtp', 'http', 'ftp', 'telnet']) if (flag(p, s)) services.push(s);
      b.input.firewall = {
        enabled: !(flag(p, 'disabled') || flag(p, 'disable')),
        services, ports: list(str(p, 'port')), trust: list(str(p, 'trust')),
      };
    },
  },
  selinux: {
    opts: { enforcing: 'flag', permissive: 'flag', disabled: 'flag' },
    run: (p, at, b) => {
      const modes = (['enforcing', 'permissive', 'disabled'] as const).filter((m) => flag(p, m));
      if (modes.length > 1) throw new KsError('selinux takes one of --enforcing, --permissive, --disabled', at);
      b.input.selinux = modes[0] ?? 'enforcing';
    },
  },
  services: {
    opts: { enabled: 'value', disabled: 'value' },
    run: (p, _at, b) => {
      b.input.services = {
        enable: [...(b.input.services?.enable ?? []), ...list(str(p, 'enabled'))],
        disable: [...(b.input.services?.disable ?? []), ...list(str(p, 'disabled'))],
      };
    },
  },
  firstboot: {
    opts: { enable: 'flag', enabled: 'flag', disable: 'flag', disabled: 'flag', reconfig: 'flag' },
    run: (p, _at, b) => {
      b.input.firstboot = flag(p, 'reconfig') ? 'reconfig' : flag(p, 'disable') || flag(p, 'disabled') ? 'disabled' : 'enabled';
    },
  },
};
COMMANDS.partition = COMMANDS.part!;
COMMANDS.volgroup = {
  opts: { pesize: 'value', useexisting: 'flag', noformat: 'flag', 'reserved-space': 'value', 'reserved-percent': 'value' },
  run: (p, at, b) => {
    if (p.args.length < 1) throw new KsError('volgroup needs a name', at);
    b.volumes.set(p.args[0]!, p.args.slice(1));
  },
};
COMMANDS.logvol = {
  opts: {
    vgname: 'value', name: 'value', size: 'value', grow: 'flag', maxsize: 'value', fstype: 'value', label: 'value', percent: 'value',
    recommended: 'flag', thinpool: 'flag', thin: 'flag', poolname: 'value', chunksize: 'value', metadatasize: 'value', encrypted: 'flag',
    passphrase: 'value', fsoptions: 'value', mkfsoptions: 'value', useexisting: 'flag', noformat: 'flag', resize: 'flag', hibernation: 'flag',
    cachesize: 'value', cachemode: 'value', cachepvs: 'value', fsprofile: 'value', cipher: 'value', luks_version: 'value',
  },
  run: (p, at, b) => {
    const vg = str(p, 'vgname');
    if (p.args.length !== 1 || !vg) throw new KsError('logvol needs a mount point and --vgname', at);
    const c: Builder['carriers'][number] = { mount: p.args[0]!, volume: vg, grow: flag(p, 'grow'), at };
    if (str(p, 'fstype')) c.fs = mapFs(str(p, 'fstype')!, at);
    if (str(p, 'label')) c.label = str(p, 'label');
    b.carriers.push(c);
  },
};
COMMANDS.btrfs = {
  opts: { data: 'value', metadata: 'value', label: 'value', subvol: 'flag', name: 'value', noformat: 'flag', useexisting: 'flag', mkfsoptions: 'value' },
  run: (p, at, b) => {
    if (p.args.length < 1) throw new KsError('btrfs needs a mount point', at);
    const [mount, ...members] = p.args as [string, ...string[]];
    if (flag(p, 'subvol')) {
      if (members.length !== 1) throw new KsError('btrfs --subvol needs its parent volume', at);
      b.carriers.push({ mount, volume: members[0]!, fs: 'btrfs', grow: false, at });
      return;
    }
    const label = str(p, 'label');
    const names = [mount, ...(label ? [`LABEL=${label}`] : []), ...(str(p, 'name') ? [str(p, 'name')!] : [])];
    for (const n of names) b.volumes.set(n, members);
    if (mount !== 'none') {
      const c: Builder['carriers'][number] = { mount, volume: mount, fs: 'btrfs', grow: false, at };
      if (label) c.label = label;
      b.carriers.push(c);
    }
  },
};

function repoSources(p: Parsed, at: Line): { baseurl?: string[]; mirrorlist?: string; metalink?: string } {
  const r: { baseurl?: string[]; mirrorlist?: string; metalink?: string } = {};
  const base = str(p, 'baseurl') ?? str(p, 'url');
  if (base) r.baseurl = [base];
  const ml = str(p, 'mirrorlist');
  // Fedora kickstarts pass metalink URLs through --mirrorlist; dnf tells them apart by content, we by the path.
  if (ml) { if (/\/metalink\?/.test(ml)) r.metalink = ml; else r.mirrorlist = ml; }
  if (str(p, 'metalink')) r.metalink = str(p, 'metalink');
  if (!r.baseurl && !r.mirrorlist && !r.metalink) throw new KsError('needs --baseurl/--url, --mirrorlist or --metalink', at);
  return r;
}

// ---- sections ------------------------------------------------------------

const PACKAGES_OPTS: OptTable = {
  nocore: 'flag', excludedocs: 'flag', instlangs: 'value', excludeweakdeps: 'flag', ignoremissing: 'flag', default: 'flag', nobase: 'flag',
  resolvedeps: 'flag', ignoredeps: 'flag', multilib: 'flag', timeout: 'value', retries: 'value', ignorebroken: 'flag', 'inst-langs': 'value',
};
const SCRIPT_OPTS: OptTable = { interpreter: 'value', nochroot: 'flag', erroronfail: 'flag', log: 'value', logfile: 'value' };

function applyPackagesHeader(p: Parsed, at: Line, b: Builder): void {
  if (p.args.length) throw new KsError(`unexpected argument ${p.args[0]}`, at);
  const pk = (b.input.packages ??= {});
  if (flag(p, 'nocore')) pk.core = false;
  if (flag(p, 'excludedocs')) pk.excludeDocs = true;
  if (flag(p, 'excludeweakdeps')) pk.weakDeps = false;
  if (flag(p, 'ignoremissing')) pk.ignoreMissing = true;
  const langs = str(p, 'instlangs') ?? str(p, 'inst-langs');
  if (langs !== undefined) pk.instLangs = langs.split(/[:,]/).filter(Boolean);
  if (flag(p, 'nobase')) b.ignored.push({ directive: '%packages --nobase', file: at.file, line: at.line, reason: 'the "base" group no longer exists' });
  if (flag(p, 'default')) b.warnings.push(`${at.file}:${at.line}: %packages --default selects the repository's default environment; ingot installs only what is listed`);
}

function applyPackageLine(text: string, at: Line, b: Builder): void {
  const t = text.replace(/(^|\s)#.*$/, '').trim();
  if (!t) return;
  const pk = (b.input.packages ??= {});
  const words = t.split(/\s+/);
  const item = words[0]!;
  if (item.startsWith('-@')) { (pk.excludeGroups ??= []).push(item.slice(2)); return; }
  if (item.startsWith('@^')) {
    if (words.length > 1) throw new KsError('environments take no options', at);
    pk.environment = item.slice(2);
    return;
  }
  if (item.startsWith('@')) {
    const g: { name: string; optional?: boolean; nodefaults?: boolean } = { name: item.slice(1) };
    for (const w of words.slice(1)) {
      if (w === '--optional') g.optional = true;
      else if (w === '--nodefaults') g.nodefaults = true;
      else throw new KsError(`unknown group option ${w}`, at);
    }
    if (!g.name) throw new KsError('empty group name', at);
    (pk.groups ??= []).push(g);
    return;
  }
  if (words.length > 1) throw new KsError('one package per line', at);
  if (item.startsWith('-')) { if (item.length < 2) throw new KsError('empty package name', at); (pk.exclude ??= []).push(item.slice(1)); return; }
  (pk.include ??= []).push(item);
}

function parseHeader(at: Line, b: Builder): { name: string; p: Parsed } {
  let words: string[];
  try { words = shellSplit(at.text.trim()); } catch (e) { throw new KsError((e as Error).message, at); }
  const name = words[0]!.slice(1);
  const table = name === 'packages' ? PACKAGES_OPTS : name === 'addon' || name === 'anaconda' || name === 'certificate' ? null : SCRIPT_OPTS;
  if (!table) return { name, p: { opts: new Map(), args: words.slice(1) } };
  return { name, p: parseOptions(words.slice(1), table, at, b.lenient, b.warnings) };
}

// ---- driver --------------------------------------------------------------

/** Parse kickstart text; `file` names it in errors and anchors relative %include paths. */
export function parseKickstart(text: string, file: string, opts: KickstartOptions = {}): ImageSpec {
  const warnings: string[] = [];
  const ignored: IgnoredDirective[] = [];
  const abs = resolve(file);
  const st: ExpandState = { warnings, ignored, includes: [] };
  if (opts.fragment) st.section = opts.fragment;
  let lines = readExpanded(abs, text, 0, [abs], st);
  // A fragment is the body of a section in the file that includes it.
  if (opts.fragment) lines = [{ text: `%${opts.fragment}`, file: abs, line: 1 }, ...lines, { text: '%end', file: abs, line: lines.length }];
  const b: Builder = { input: {}, warnings, ignored, lenient: !!opts.lenient, users: new Map(), packagesSeen: false, volumes: new Map(), carriers: [], fieldLines: new Map() };
  const scripts: Script[] = [];
  let i = 0;
  const isHeader = (t: string): string | undefined => {
    const m = /^\s*%([a-z-]+)(\s|$)/.exec(t);
    return m && SECTIONS.has(m[1]!) ? m[1] : undefined;
  };
  while (i < lines.length) {
    const at = lines[i]!;
    const trimmed = at.text.trim();
    if (trimmed === '' || trimmed.startsWith('#')) { i++; continue; }
    const section = isHeader(at.text);
    if (section) {
      const { name, p } = parseHeader(at, b);
      const body: Line[] = [];
      i++;
      while (i < lines.length && !/^\s*%end\s*(#.*)?$/.test(lines[i]!.text) && !isHeader(lines[i]!.text)) body.push(lines[i++]!);
      if (i < lines.length && /^\s*%end/.test(lines[i]!.text)) i++;
      if (name === 'packages') {
        b.packagesSeen = true;
        b.fieldLines.set('packages', at);
        applyPackagesHeader(p, at, b);
        for (const l of body) applyPackageLine(l.text, l, b);
      } else if (name === 'addon' || name === 'anaconda' || name === 'certificate') {
        ignored.push({ directive: `%${name}${p.args.length ? ' ' + p.args.join(' ') : ''}`, file: at.file, line: at.line, reason: 'installer add-on section' });
      } else {
        const s: Script = {
          phase: name as Script['phase'], interpreter: str(p, 'interpreter') ?? '/bin/sh',
          body: body.map((l) => l.text).join('\n') + (body.length ? '\n' : ''),
          nochroot: flag(p, 'nochroot'), errorOnFail: flag(p, 'erroronfail'), file: at.file, line: at.line,
        };
        const log = str(p, 'log') ?? str(p, 'logfile');
        if (log) s.log = log;
        if (p.args.length) throw new KsError(`unexpected argument ${p.args[0]}`, at);
        scripts.push(s);
      }
      continue;
    }
    if (/^\s*%end\b/.test(at.text)) throw new KsError('%end without a section', at);
    if (trimmed.startsWith('%')) {
      if (!b.lenient) throw new KsError('unknown section', at, 'KICKSTART_UNKNOWN_COMMAND');
      warnings.push(`${at.file}:${at.line}: unknown section ignored`);
      i++;
      continue;
    }
    // Commands: join backslash-continued lines.
    let text = at.text;
    while (/(^|[^\\])(\\\\)*\\$/.test(text) && i + 1 < lines.length) text = text.slice(0, -1) + ' ' + lines[++i]!.text;
    i++;
    const cmdAt: Line = { ...at, text };
    let words: string[];
    try { words = shellSplit(text); } catch (e) {
      if (e instanceof ShellSyntaxError) throw new KsError(e.message, cmdAt);
      throw e;
    }
    if (words.length === 0) continue;
    runCommand(words, cmdAt, b);
  }
  finishDisk(b);
  const users = [...b.users.values()];
  if (users.length) b.input.users = users;
  b.input.scripts = scripts;
  b.input.ignored = ignored;
  b.input.warnings = warnings;
  if (!b.packagesSeen) warnings.push(`${file}: no %packages section; only the core group is installed`);
  try {
    return normalizeSpec(b.input, file);
  } catch (e) {
    // Place model validation errors on the kickstart line that set the field.
    const field = e instanceof SpecError ? e.context.field : undefined;
    const at = field ? b.fieldLines.get(field.split(/[.[]/)[0]!) : undefined;
    if (!at) throw e;
    const detail = (e as SpecError).message.replace(/^.*?field [^:]+: /, '');
    throw new KsError(`${field}: ${detail}`, at);
  }
}

function runCommand(words: string[], at: Line, b: Builder): void {
  const name = words[0]!;
  const def = COMMANDS[name];
  if (def) {
    def.run(parseOptions(words.slice(1), def.opts, at, b.lenient, b.warnings), at, b);
    for (const f of FIELD_OF[name] ?? []) b.fieldLines.set(f, at);
    return;
  }
  const reason = IGNORED[name];
  if (reason) { b.ignored.push({ directive: name, file: at.file, line: at.line, reason }); return; }
  if (b.lenient) { b.warnings.push(`${at.file}:${at.line}: unknown command ${name} ignored`); b.ignored.push({ directive: name, file: at.file, line: at.line, reason: 'unknown command (lenient)' }); return; }
  throw new KsError(`unknown kickstart command ${JSON.stringify(name)}`, at, 'KICKSTART_UNKNOWN_COMMAND');
}

/** Resolve autopart/reqpart and infer firmware from the layout once every command has been read. */
function finishDisk(b: Builder): void {
  mapVolumes(b);
  const d = b.input.disk ?? {};
  let parts = d.partitions ?? [];
  const has = (fs: Filesystem): boolean => parts.some((x) => x.fs === fs);
  if (!b.input.bootloader?.firmware && parts.length) {
    const firmware: Firmware | undefined = has('efi') && has('biosboot') ? 'hybrid' : has('efi') ? 'uefi' : undefined;
    if (firmware) b.input.bootloader = { ...b.input.bootloader, firmware };
  }
  const firmware = b.input.bootloader?.firmware ?? 'bios';
  const table = d.table ?? 'gpt';
  if (b.autopart) {
    const a = b.autopart;
    const auto = defaultPartitions(firmware, table).map((x) => (x.mount === '/' ? { ...x, fs: a.fstype ?? 'ext4' } : x));
    if (!a.noboot) auto.splice(auto.length - 1, 0, { mount: '/boot', size: 1024 * MiB, grow: false, fs: a.fstype ?? 'ext4' });
    parts = [...parts, ...auto];
    b.input.disk = { ...d, partitions: parts, auto: true };
  } else if (b.reqpart) {
    const platform = defaultPartitions(firmware, table).filter((x) => x.fs === 'biosboot' || x.fs === 'efi' || x.fs === 'prepboot');
    if (b.reqpart.addBoot) platform.push({ mount: '/boot', size: 1024 * MiB, grow: false, fs: 'ext4' });
    b.input.disk = { ...d, partitions: [...platform.filter((x) => !has(x.fs)), ...parts] };
  }
}

/**
 * LVM and btrfs are not built: the member partition of the volume that
 * carries `/` becomes a plain root partition (btrfs → ext4), and other
 * logical volumes/subvolumes are folded into it, with a warning each.
 */
function mapVolumes(b: Builder): void {
  const parts = b.input.disk?.partitions ?? [];
  for (const c of b.carriers) {
    const where = `${c.at.file}:${c.at.line}`;
    const members = b.volumes.get(c.volume);
    if (!members) throw new KsError(`no volume group or btrfs volume named ${c.volume}`, c.at);
    const part = parts.find((x) => x.name !== undefined && members.includes(x.name));
    if (!part) throw new KsError(`volume ${c.volume} has no member partition defined with part`, c.at);
    if (c.mount !== '/') {
      b.warnings.push(`${where}: ${c.mount} on ${c.volume} is not built separately; its files stay in the root filesystem`);
      continue;
    }
    part.mount = '/';
    part.fs = c.fs === 'btrfs' || c.fs === undefined ? 'ext4' : c.fs;
    if (c.fs === 'btrfs') b.warnings.push(`${where}: btrfs root is built as ext4`);
    else b.warnings.push(`${where}: LVM volume for / is built as a plain partition`);
    const label = c.label ?? (c.volume.startsWith('LABEL=') ? c.volume.slice(6) : undefined);
    if (label) part.label = label;
    part.grow = part.grow || c.grow;
  }
}

/** Read and parse a kickstart file. */
export function loadKickstart(path: string, opts: KickstartOptions = {}): ImageSpec {
  return parseKickstart(readKsFile(path), path, opts);
}
