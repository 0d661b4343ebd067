/**
 * The image definition: one `ImageSpec` that every front end (kickstart, TDL,
 * JSON) produces and every later stage (solver, installer, disk writer)
 * consumes. Front ends build a partial {@link ImageSpecInput}; {@link normalizeSpec}
 * validates it against `image-spec.schema.json` and fills the defaults an
 * Anaconda user expects, so defaults live in exactly one place.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { IngotError, type ErrorContext } from '../errors.js';
import { validate, type JsonSchema } from './validate.js';

/** Path of the JSON Schema (draft 2020-12) of {@link ImageSpecInput}; tsc does not copy it, so the built module reads it from src/. */
export const IMAGE_SPEC_SCHEMA_PATH = [
  fileURLToPath(new URL('./image-spec.schema.json', import.meta.url)),
  fileURLToPath(new URL('../../../src/spec/image-spec.schema.json', import.meta.url)),
].find((p) => existsSync(p)) ?? 'image-spec.schema.json';
export const IMAGE_SPEC_SCHEMA = JSON.parse(readFileSync(IMAGE_SPEC_SCHEMA_PATH, 'utf8')) as JsonSchema;

export class SpecError extends IngotError {
  constructor(message: string, context: ErrorContext = {}, code = 'SPEC_INVALID') {
    super(code, message, context);
  }
}

export type Arch = 'x86_64' | 'aarch64' | 'i686' | 'i386' | 'ppc64le' | 'ppc64' | 's390x' | 'riscv64' | 'armv7hl';
export type Firmware = 'bios' | 'uefi' | 'hybrid';
export type BootloaderKind = 'grub' | 'extlinux' | 'systemd-boot' | 'none';
export type PartitionTable = 'gpt' | 'mbr';
export type Filesystem = 'ext4' | 'ext3' | 'ext2' | 'xfs' | 'btrfs' | 'vfat' | 'efi' | 'swap' | 'biosboot' | 'prepboot' | 'lvmpv' | 'none';
export type SelinuxMode = 'enforcing' | 'permissive' | 'disabled';
export type OutputFormat = 'raw' | 'raw.xz' | 'qcow2' | 'vhd' | 'vhdx' | 'vmdk' | 'ova' | 'tar' | 'tar.xz' | 'tar.gz' | 'raw.gz' | 'raw.zst' | 'appliance';

export interface Repository {
  name: string;
  /** One or more base URLs (http(s)://, file://, or a local directory). */
  baseurl?: string[];
  mirrorlist?: string;
  metalink?: string;
  gpgcheck?: boolean;
  gpgkey?: string[];
  cost?: number;
  includepkgs?: string[];
  excludepkgs?: string[];
  sslverify?: boolean;
  proxy?: string;
  /** Kickstart `repo --install`: also configure the repo inside the image. */
  install?: boolean;
  /** True for the installation source (kickstart `url`, TDL `<install>`). */
  installSource?: boolean;
  /** An installation ISO (TDL `<install type='iso'>`) instead of a repository URL. */
  iso?: string;
}

export interface PackageSelection {
  /** Package names or globs. */
  include: string[];
  /** Comps groups (`@name`); `optional` adds the group's optional packages. */
  groups: { name: string; optional?: boolean; nodefaults?: boolean }[];
  /** Comps environment (`@^name`). */
  environment?: string;
  /** Package names or globs removed from the selection (`-name`). */
  exclude: string[];
  excludeGroups: string[];
  /** Add the `core` group implicitly (kickstart default; `--nocore` turns it off). */
  core: boolean;
  /** Install weak dependencies (Recommends/Supplements); `--excludeWeakdeps` turns it off. */
  weakDeps: boolean;
  /** Skip %doc files (`--excludedocs`). */
  excludeDocs: boolean;
  /** Languages whose locale files are installed; absent = all (`--instLangs`). */
  instLangs?: string[];
  /** Missing packages/groups warn instead of failing (`--ignoremissing`). */
  ignoreMissing: boolean;
}

export interface Partition {
  /** Mount point (`/`, `/boot`, `/boot/efi`), `swap`, or none for biosboot/prepboot/LVM PVs. */
  mount?: string;
  /** Size in bytes (the minimum when `grow`). */
  size: number;
  /** Take the remaining space (shared between growing partitions). */
  grow: boolean;
  /** Upper bound for `grow`, bytes. */
  maxSize?: number;
  fs: Filesystem;
  label?: string;
  /** GPT type GUID or MBR type byte (hex); derived from `fs`/`mount` when absent. */
  type?: string;
  /** Kickstart name such as `pv.01` or `btrfs.007`. */
  name?: string;
  fsOptions?: string;
  mountOptions?: string;
}

export interface DiskSpec {
  table: PartitionTable;
  /** Total virtual size in bytes; absent = sum of partitions plus what `grow` needs for the content. */
  size?: number;
  partitions: Partition[];
  /** Partitions came from kickstart `autopart` (layout chosen by ingot). */
  auto?: boolean;
}

export interface BootloaderSpec {
  kind: BootloaderKind;
  /** Menu timeout, seconds. */
  timeout: number;
  /** Kernel command line arguments added to every entry. */
  kernelArgs: string[];
  firmware: Firmware;
  /** Where the boot code goes (kickstart `--location`). */
  location: 'mbr' | 'partition' | 'none';
  password?: string;
  /** GRUB menu as BLS type 1 entries in /boot/loader/entries (default: when the image's GRUB has blscfg). */
  bls?: boolean;
}

export type Password = { plain: string } | { hashed: string };

export interface UserSpec {
  name: string;
  uid?: number;
  gid?: number;
  /** Supplementary groups (created when absent). */
  groups: string[];
  home?: string;
  shell?: string;
  gecos?: string;
  password?: Password;
  /** Lock the password (`!` in /etc/shadow). */
  lock: boolean;
  sshKeys: string[];
  system?: boolean;
}

export interface RootSpec {
  password?: Password;
  lock: boolean;
  sshKeys: string[];
}

export interface GroupSpec { name: string; gid?: number }

export interface NetworkDevice {
  /** Interface name, MAC, or `link` (first device with a link). */
  device: string;
  bootproto: 'dhcp' | 'static' | 'none' | 'bootp' | 'ibft';
  ip?: string;
  /** Dotted netmask or prefix length. */
  netmask?: string;
  gateway?: string;
  nameservers: string[];
  ipv6?: string;
  ipv6gateway?: string;
  noipv4?: boolean;
  noipv6?: boolean;
  mtu?: number;
  onboot: boolean;
  activate?: boolean;
  hostname?: string;
}

export interface TimezoneSpec { name: string; utc: boolean; ntp: boolean; ntpServers: string[] }
export interface KeyboardSpec { vconsole: string; xlayouts: string[] }
export interface FirewallSpec { enabled: boolean; services: string[]; ports: string[]; trust: string[] }

export type ExtraFile =
  | { kind: 'inline'; path: string; content: string; encoding: 'utf8' | 'base64'; mode?: number; owner?: string; group?: string }
  | { kind: 'host'; path: string; source: string; mode?: number; owner?: string; group?: string }
  | { kind: 'overlay'; path: string; archive: string; format: 'tar' | 'zip' };

export interface Script {
  phase: 'pre' | 'post' | 'pre-install' | 'traceback' | 'onerror' | 'command';
  interpreter: string;
  body: string;
  /** %post --nochroot. */
  nochroot: boolean;
  errorOnFail: boolean;
  log?: string;
  /** Script fetched from a URL (TDL `type='url'`) instead of `body`. */
  url?: string;
  /** Name given to the script (TDL `<command name=...>`). */
  name?: string;
  /** Where the script was defined (file and first line). */
  file?: string;
  line?: number;
}

export interface OutputSpec {
  format: OutputFormat;
  /** File name (without directory); derived from `ImageSpec.name` when absent. */
  name?: string;
  /** Virtual disk size of this output in bytes (≥ the disk); absent = the disk's size. */
  size?: number;
}

/** A kickstart/TDL command that was understood but has no effect on an image build. */
export interface IgnoredDirective { directive: string; file?: string; line?: number; reason: string }

export interface ImageSpec {
  name: string;
  description?: string;
  /** Operating system named by the definition (TDL `<os>`). */
  os?: { name: string; version: string };
  arch: Arch;
  repositories: Repository[];
  packages: PackageSelection;
  disk: DiskSpec;
  bootloader: BootloaderSpec;
  root: RootSpec;
  users: UserSpec[];
  groups: GroupSpec[];
  hostname?: string;
  timezone: TimezoneSpec;
  locale: string;
  keyboard: KeyboardSpec;
  network: NetworkDevice[];
  firewall?: FirewallSpec;
  services: { enable: string[]; disable: string[] };
  /** systemd default target (`graphical.target`); absent = keep the presets' choice. */
  defaultTarget?: string;
  selinux: SelinuxMode;
  files: ExtraFile[];
  outputs: OutputSpec[];
  /** Kickstart `firstboot`: run initial-setup on first boot. */
  firstboot: 'disabled' | 'enabled' | 'reconfig';
  /** Run scriptlets that cannot be done natively once on first boot. */
  deferredScriptletsUnit: boolean;
  /** %pre/%post (and TDL commands): kept and reported, never run by ingot. */
  scripts: Script[];
  /** Commands that were parsed but have no build effect. */
  ignored: IgnoredDirective[];
  warnings: string[];
}

type DeepPartial<T> = T extends (infer U)[] ? DeepPartial<U>[] : T extends object ? { [K in keyof T]?: DeepPartial<T[K]> } : T;
/** What front ends produce and the JSON schema describes: every field optional, sizes may be strings ("512MiB"). */
export type ImageSpecInput = DeepPartial<Omit<ImageSpec, 'disk' | 'outputs'>> & {
  outputs?: (Omit<OutputSpec, 'size'> & { size?: number | string })[];
  disk?: Omit<DeepPartial<DiskSpec>, 'size' | 'partitions'> & {
    size?: number | string;
    partitions?: (Omit<DeepPartial<Partition>, 'size' | 'maxSize'> & { size?: number | string; maxSize?: number | string })[];
  };
};

const MiB = 1024 * 1024;
const UNITS: Record<string, number> = {
  '': 1, b: 1, k: 1024, kb: 1000, kib: 1024, m: MiB, mb: 1e6, mib: MiB, g: 1024 * MiB, gb: 1e9, gib: 1024 * MiB,
  t: 1024 * 1024 * MiB, tb: 1e12, tib: 1024 * 1024 * MiB,
};

/** Parse a size: a number of bytes or a string such as `512MiB`, `10G`, `1.5 GB`. */
export function parseSize(v: number | string, field: string): number {
  if (typeof v === 'number') {
    if (!Number.isInteger(v) || v < 0) throw new SpecError('size must be a non-negative whole number of bytes', { field, actual: String(v) });
    return v;
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(v);
  const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new SpecError('bad size', { field, expected: 'bytes or a number with a unit (MiB, GiB, …)', actual: JSON.stringify(v) });
  // Sizes beyond 2^53 lose precision; nothing writes such a disk, the disk writer refuses them.
  return Math.round(Number(m[1]) * unit);
}

function hostArch(): Arch {
  return process.arch === 'arm64' ? 'aarch64' : 'x86_64';
}

/** Default layout when the definition names none: what a one-disk cloud image uses. */
export function defaultPartitions(firmware: Firmware, table: PartitionTable): Partition[] {
  const parts: Partition[] = [];
  if (firmware !== 'uefi' && table === 'gpt') parts.push({ size: MiB, grow: false, fs: 'biosboot' });
  if (firmware !== 'bios') parts.push({ mount: '/boot/efi', size: 100 * MiB, grow: false, fs: 'efi' });
  parts.push({ mount: '/', size: 2048 * MiB, grow: true, fs: 'ext4' });
  return parts;
}

const uniq = <T>(xs: T[]): T[] => [...new Set(xs)];

/**
 * Validate `input` against the schema (errors name the field path) and fill
 * every default. `file` names the source in error messages.
 */
export function normalizeSpec(input: ImageSpecInput, file?: string): ImageSpec {
  const errors = validate(IMAGE_SPEC_SCHEMA, input);
  if (errors.length) {
    const e = errors[0]!;
    throw new SpecError(e.message, { file, field: e.path || '(root)', ...(e.actual !== undefined ? { actual: e.actual } : {}) });
  }
  const arch = (input.arch ?? hostArch()) as Arch;
  const p = input.packages ?? {};
  const firmware: Firmware = input.bootloader?.firmware ?? (arch === 'aarch64' || arch === 'riscv64' ? 'uefi' : 'bios');
  const table: PartitionTable = input.disk?.table ?? 'gpt';
  const parts = input.disk?.partitions;
  const partitions: Partition[] = parts && parts.length
    ? parts.map((q, i) => {
      const f = `disk.partitions[${i}]`;
      const fs = (q.fs ?? (q.mount === 'swap' ? 'swap' : 'ext4')) as Filesystem;
      const out: Partition = { ...(q as Omit<Partition, 'size' | 'maxSize'>), fs, grow: q.grow ?? false, size: parseSize(q.size ?? MiB, `${f}.size`) };
      if (q.maxSize !== undefined) out.maxSize = parseSize(q.maxSize, `${f}.maxSize`);
      else delete out.maxSize;
      return out;
    })
    : defaultPartitions(firmware, table);
  const mounts = partitions.map((x) => x.mount).filter((m): m is string => !!m && m.startsWith('/'));
  const dup = mounts.find((m, i) => mounts.indexOf(m) !== i);
  if (dup) throw new SpecError(`mount point ${dup} used twice`, { file, field: 'disk.partitions', actual: dup });
  if (!partitions.some((x) => x.mount === '/')) throw new SpecError('no partition is mounted at /', { file, field: 'disk.partitions' });
  const disk: DiskSpec = { table, partitions };
  if (input.disk?.size !== undefined) disk.size = parseSize(input.disk.size, 'disk.size');
  if (input.disk?.auto) disk.auto = true;

  const user = (u: NonNullable<ImageSpecInput['users']>[number]): UserSpec => ({
    ...(u as UserSpec), groups: uniq((u.groups ?? []) as string[]), lock: u.lock ?? false, sshKeys: (u.sshKeys ?? []) as string[],
  });
  const spec: ImageSpec = {
    name: input.name ?? 'image',
    arch,
    repositories: (input.repositories ?? []) as Repository[],
    packages: {
      include: (p.include ?? []) as string[],
      groups: (p.groups ?? []) as PackageSelection['groups'],
      exclude: (p.exclude ?? []) as string[],
      excludeGroups: (p.excludeGroups ?? []) as string[],
      core: p.core ?? true,
      weakDeps: p.weakDeps ?? true,
      excludeDocs: p.excludeDocs ?? false,
      ignoreMissing: p.ignoreMissing ?? false,
    },
    disk,
    bootloader: {
      kind: input.bootloader?.kind ?? 'grub',
      timeout: input.bootloader?.timeout ?? 5,
      kernelArgs: (input.bootloader?.kernelArgs ?? []) as string[],
      firmware,
      location: input.bootloader?.location ?? (input.bootloader?.kind === 'none' ? 'none' : 'mbr'),
    },
    // Anaconda locks root when no password is given.
    root: {
      lock: input.root?.lock ?? input.root?.password === undefined,
      sshKeys: (input.root?.sshKeys ?? []) as string[],
    },
    users: (input.users ?? []).map(user),
    groups: (input.groups ?? []) as GroupSpec[],
    timezone: {
      name: input.timezone?.name ?? 'UTC',
      utc: input.timezone?.utc ?? true,
      ntp: input.timezone?.ntp ?? true,
      ntpServers: (input.timezone?.ntpServers ?? []) as string[],
    },
    locale: input.locale ?? 'en_US.UTF-8',
    keyboard: { vconsole: input.keyboard?.vconsole ?? 'us', xlayouts: (input.keyboard?.xlayouts ?? ['us']) as string[] },
    network: (input.network ?? []).map((n) => ({ ...(n as NetworkDevice), bootproto: n.bootproto ?? 'dhcp', onboot: n.onboot ?? true, nameservers: (n.nameservers ?? []) as string[] })),
    services: { enable: uniq((input.services?.enable ?? []) as string[]), disable: uniq((input.services?.disable ?? []) as string[]) },
    selinux: input.selinux ?? 'enforcing',
    files: (input.files ?? []) as ExtraFile[],
    outputs: (input.outputs?.length ? input.outputs : [{ format: 'raw' as const }]).map((o, i) => {
      const out: OutputSpec = { format: o.format as OutputFormat };
      if (o.name !== undefined) out.name = o.name;
      if (o.size !== undefined) out.size = parseSize(o.size, `outputs[${i}].size`);
      return out;
    }),
    firstboot: input.firstboot ?? 'disabled',
    deferredScriptletsUnit: input.deferredScriptletsUnit ?? false,
    scripts: (input.scripts ?? []).map((s) => ({ ...(s as Script), interpreter: s.interpreter ?? '/bin/sh', nochroot: s.nochroot ?? false, errorOnFail: s.errorOnFail ?? false })),
    ignored: (input.ignored ?? []) as IgnoredDirective[],
    warnings: (input.warnings ?? []) as string[],
  };
  if (p.environment !== undefined) spec.packages.environment = p.environment;
  if (p.instLangs !== undefined) spec.packages.instLangs = p.instLangs as string[];
  if (input.root?.password !== undefined) spec.root.password = input.root.password as Password;
  if (input.bootloader?.password !== undefined) spec.bootloader.password = input.bootloader.password;
  if (input.bootloader?.bls !== undefined) spec.bootloader.bls = input.bootloader.bls;
  if (input.os) spec.os = { name: input.os.name ?? '', version: input.os.version ?? '' };
  if (input.hostname !== undefined) spec.hostname = input.hostname;
  if (input.description !== undefined) spec.description = input.description;
  if (input.firewall) {
    spec.firewall = {
      enabled: input.firewall.enabled ?? true, services: (input.firewall.services ?? []) as string[],
      ports: (input.firewall.ports ?? []) as string[], trust: (input.firewall.trust ?? []) as string[],
    };
  }
  if (input.defaultTarget !== undefined) spec.defaultTarget = input.defaultTarget;
  const both = spec.services.enable.filter((s) => spec.services.disable.includes(s));
  if (both.length) spec.warnings.push(`services both enabled and disabled (enable wins: Anaconda disables first, then enables): ${both.join(', ')}`);
  return spec;
}
