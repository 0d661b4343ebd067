/**
 * System configuration files written straight into the staging tree, the
 * files Anaconda (and localectl/timedatectl/hostnamectl) would write:
 * /etc/fstab by UUID, hostname, localtime, locale.conf, vconsole.conf and the
 * X11 keyboard snippet, an empty machine-id (systemd fills it on first boot),
 * network profiles (NetworkManager keyfile or ifcfg), /etc/selinux/config.
 */
import { createHash } from 'node:crypto';
import { StagingTree } from '../tree/tree.js';
import { IngotError } from '../errors.js';
import type { FirewallSpec, ImageSpec, KeyboardSpec, NetworkDevice, SelinuxMode, TimezoneSpec } from '../spec/model.js';
import { readTreeText, writeTreeText } from './treetext.js';
import { configureServices, type SystemdChange } from './systemd.js';
import { applyNativeActions, classifyTransaction, installFirstbootUnit, type NativeAction, type Scriptlet, type ScriptletReport } from './scriptlets.js';

export class SysconfigError extends IngotError {}

/** A filesystem the disk builder made, as fstab needs it. */
export interface MountedFilesystem {
  /** Mount point, or `swap`. */
  mount: string;
  /** Filesystem type as mount(8) names it: ext4, xfs, vfat, swap, btrfs. */
  type: string;
  /** Filesystem UUID (FAT: the `ABCD-1234` volume id). */
  uuid?: string;
  label?: string;
  /** Mount options; defaults per type as Anaconda writes them. */
  options?: string;
}

const FSTAB_HEADER = `#
# /etc/fstab
# Created by ingot
#
# Accessible filesystems, by reference, are maintained under '/dev/disk/'.
# See man pages fstab(5), findfs(8), mount(8) and/or blkid(8) for more info.
#
`;

/** Anaconda's defaults: ext* are dumped and checked (root first), xfs/btrfs never fsck'd by fstab, the ESP checked second. */
function fstabFields(fs: MountedFilesystem): { options: string; dump: number; pass: number } {
  const isRoot = fs.mount === '/';
  switch (fs.type) {
    case 'ext4': case 'ext3': case 'ext2': return { options: fs.options ?? 'defaults', dump: 1, pass: isRoot ? 1 : 2 };
    case 'vfat': return { options: fs.options ?? (fs.mount === '/boot/efi' ? 'umask=0077,shortname=winnt' : 'defaults'), dump: 0, pass: 2 };
    default: return { options: fs.options ?? 'defaults', dump: 0, pass: 0 };
  }
}

/** /etc/fstab text: one line per filesystem, by UUID (else LABEL), parents before children. */
export function renderFstab(filesystems: MountedFilesystem[]): string {
  const rows = filesystems
    .filter((f) => f.mount === 'swap' || f.mount.startsWith('/'))
    .map((f) => {
      const src = f.uuid ? `UUID=${f.uuid}` : f.label ? `LABEL=${f.label}` : undefined;
      if (!src) throw new SysconfigError('FSTAB_NO_ID', `filesystem for ${f.mount} has neither UUID nor label`, { field: f.mount });
      if (/\s/.test(src) || /\s/.test(f.mount)) throw new SysconfigError('FSTAB_BAD_FIELD', 'fstab fields cannot contain white space', { field: f.mount, actual: src });
      const { options, dump, pass } = fstabFields(f);
      return { depth: f.mount === 'swap' ? 1e9 : f.mount.split('/').filter(Boolean).length, mount: f.mount === 'swap' ? 'none' : f.mount, src, type: f.type, options, dump, pass };
    })
    .sort((a, b) => a.depth - b.depth || (a.mount < b.mount ? -1 : a.mount > b.mount ? 1 : 0));
  return FSTAB_HEADER + rows.map((r) => `${r.src.padEnd(41)} ${r.mount.padEnd(23)} ${r.type.padEnd(7)} ${r.options.padEnd(15)} ${r.dump} ${r.pass}`).join('\n') + '\n';
}

export function writeFstab(tree: StagingTree, filesystems: MountedFilesystem[]): void {
  writeTreeText(tree, '/etc/fstab', renderFstab(filesystems));
}

export function writeHostname(tree: StagingTree, hostname: string): void {
  if (!/^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})?$/.test(hostname)) throw new SysconfigError('BAD_HOSTNAME', 'invalid host name', { actual: hostname });
  writeTreeText(tree, '/etc/hostname', `${hostname}\n`);
}

/**
 * /etc/localtime → ../usr/share/zoneinfo/ZONE (the relative link timedatectl
 * makes); the zone must exist in the image's tzdata. Hardware clock in local
 * time is recorded in /etc/adjtime (its third line), as hwclock/timedatectl do.
 */
export function writeTimezone(tree: StagingTree, tz: TimezoneSpec): void {
  if (tz.name.split('/').some((p) => p === '..' || p === '.' || p === '')) throw new SysconfigError('BAD_TIMEZONE', 'invalid time zone name', { actual: tz.name });
  const zone = tree.lookup(`/usr/share/zoneinfo/${tz.name}`);
  if (!zone || zone.type !== 'file') {
    // Without /etc/localtime glibc and systemd use UTC: an image without tzdata still gets what it asked for.
    if (/^(Etc\/)?(UTC|UCT|Universal|Zulu)$/.test(tz.name)) return;
    throw new SysconfigError('UNKNOWN_TIMEZONE', `time zone ${tz.name} is not in the image's /usr/share/zoneinfo (is tzdata installed?)`, { field: 'timezone', actual: tz.name });
  }
  tree.mkdirp('/etc');
  tree.symlink('/etc/localtime', `../usr/share/zoneinfo/${tz.name}`);
  if (!tz.utc) writeTreeText(tree, '/etc/adjtime', '0.0 0 0.0\n0\nLOCAL\n');
}

export function writeLocale(tree: StagingTree, lang: string): void {
  if (!/^[A-Za-z0-9_.@-]+$/.test(lang)) throw new SysconfigError('BAD_LOCALE', 'invalid locale name', { actual: lang });
  writeTreeText(tree, '/etc/locale.conf', `LANG=${lang}\n`);
}

/** vconsole.conf(5) KEYMAP, and the X11 snippet localectl writes for the X layouts ("de (nodeadkeys)" → layout de, variant nodeadkeys). */
export function writeKeyboard(tree: StagingTree, kb: KeyboardSpec): void {
  writeTreeText(tree, '/etc/vconsole.conf', `KEYMAP=${kb.vconsole}\n`);
  if (!kb.xlayouts.length) return;
  const layouts: string[] = [];
  const variants: string[] = [];
  for (const x of kb.xlayouts) {
    const m = /^([^\s(]+)\s*(?:\(([^)]*)\))?$/.exec(x.trim());
    if (!m) throw new SysconfigError('BAD_KEYBOARD', 'invalid X keyboard layout', { actual: x });
    layouts.push(m[1]!);
    variants.push(m[2] ?? '');
  }
  const opt = (k: string, v: string): string => `        Option "${k}" "${v}"\n`;
  writeTreeText(tree, '/etc/X11/xorg.conf.d/00-keyboard.conf',
    '# Written by ingot, in the format of systemd-localed.\n' +
    'Section "InputClass"\n        Identifier "system-keyboard"\n        MatchIsKeyboard "on"\n' +
    opt('XkbLayout', layouts.join(',')) + (variants.some(Boolean) ? opt('XkbVariant', variants.join(',')) : '') + 'EndSection\n');
}

/** machine-id(5): an empty file marks "not yet initialised", so systemd generates one on first boot and presets apply. */
export function writeMachineId(tree: StagingTree): void {
  writeTreeText(tree, '/etc/machine-id', '', 0o444);
}

/** SELinux mode: edit SELINUX= in the policy package's config, or write the file when absent. */
export async function writeSelinuxConfig(tree: StagingTree, mode: SelinuxMode, type = 'targeted'): Promise<void> {
  const old = await readTreeText(tree, '/etc/selinux/config');
  let text: string;
  if (old !== undefined && /^\s*SELINUX=/m.test(old)) text = old.replace(/^\s*SELINUX=.*$/m, `SELINUX=${mode}`);
  else text = `# Written by ingot; see selinux_config(5).\nSELINUX=${mode}\nSELINUXTYPE=${type}\n`;
  writeTreeText(tree, '/etc/selinux/config', text);
}

export function prefixLength(netmask: string): number {
  if (/^\d{1,2}$/.test(netmask)) {
    const n = Number(netmask);
    if (n <= 32) return n;
  }
  const parts = netmask.split('.').map(Number);
  if (parts.length === 4 && parts.every((p) => Number.isInteger(p) && p >= 0 && p <= 255)) {
    const bits = parts.map((p) => p.toString(2).padStart(8, '0')).join('');
    if (/^1*0*$/.test(bits)) return bits.indexOf('0') < 0 ? 32 : bits.indexOf('0');
  }
  throw new SysconfigError('BAD_NETMASK', 'invalid netmask', { actual: netmask });
}

function splitIp(n: NetworkDevice): { ip: string; prefix: number } | undefined {
  if (!n.ip) return undefined;
  const [ip, pfx] = n.ip.split('/');
  return { ip: ip!, prefix: pfx !== undefined ? prefixLength(pfx) : n.netmask ? prefixLength(n.netmask) : 24 };
}

const isIfname = (d: string): boolean => /^[A-Za-z0-9_.-]{1,15}$/.test(d) && d !== 'link';
const isMac = (d: string): boolean => /^([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}$/.test(d);

/** A NetworkManager keyfile (nm-settings-keyfile(5)) for one kickstart `network` line. */
export function renderKeyfile(n: NetworkDevice, uuid: string): { name: string; text: string } {
  const id = isIfname(n.device) ? n.device : isMac(n.device) ? `ethernet-${n.device.replace(/:/g, '').toLowerCase()}` : 'Wired connection 1';
  const lines = ['[connection]', `id=${id}`, `uuid=${uuid}`, 'type=ethernet'];
  if (isIfname(n.device)) lines.push(`interface-name=${n.device}`);
  if (!n.onboot) lines.push('autoconnect=false');
  lines.push('', '[ethernet]');
  if (isMac(n.device)) lines.push(`mac-address=${n.device.toUpperCase()}`);
  if (n.mtu) lines.push(`mtu=${n.mtu}`);
  lines.push('', '[ipv4]');
  const a = splitIp(n);
  if (n.noipv4) lines.push('method=disabled');
  else if (n.bootproto === 'static' && a) {
    lines.push(`address1=${a.ip}/${a.prefix}${n.gateway ? `,${n.gateway}` : ''}`);
    if (n.nameservers.length) lines.push(`dns=${n.nameservers.filter((d) => !d.includes(':')).join(';')};`);
    lines.push('method=manual');
  } else {
    if (n.nameservers.length) lines.push(`dns=${n.nameservers.filter((d) => !d.includes(':')).join(';')};`);
    lines.push('method=auto');
  }
  lines.push('', '[ipv6]', 'addr-gen-mode=eui64');
  if (n.noipv6) lines.push('method=disabled');
  else if (n.ipv6 && n.ipv6 !== 'auto' && n.ipv6 !== 'dhcp') {
    lines.push(`address1=${n.ipv6}${n.ipv6gateway ? `,${n.ipv6gateway}` : ''}`, 'method=manual');
  } else lines.push(`method=${n.ipv6 === 'dhcp' ? 'dhcp' : 'auto'}`);
  lines.push('', '[proxy]', '');
  return { name: `${id}.nmconnection`, text: lines.join('\n') };
}

/** An ifcfg file (initscripts' sysconfig.txt) for one `network` line. */
export function renderIfcfg(n: NetworkDevice): { name: string; text: string } {
  // With --device=link the interface is unknown at build time; cloud images boot with net.ifnames=0, so eth0.
  const dev = isIfname(n.device) ? n.device : 'eth0';
  const kv: [string, string][] = [['DEVICE', dev], ['TYPE', 'Ethernet'], ['ONBOOT', n.onboot ? 'yes' : 'no']];
  if (isMac(n.device)) kv.push(['HWADDR', n.device.toUpperCase()]);
  const a = splitIp(n);
  if (n.bootproto === 'static' && a) {
    kv.push(['BOOTPROTO', 'none'], ['IPADDR', a.ip], ['PREFIX', String(a.prefix)]);
    if (n.gateway) kv.push(['GATEWAY', n.gateway]);
  } else kv.push(['BOOTPROTO', n.bootproto === 'none' ? 'none' : 'dhcp']);
  n.nameservers.forEach((d, i) => kv.push([`DNS${i + 1}`, d]));
  if (n.mtu) kv.push(['MTU', String(n.mtu)]);
  if (n.noipv6) kv.push(['IPV6INIT', 'no']);
  else {
    kv.push(['IPV6INIT', 'yes']);
    if (n.ipv6 && n.ipv6 !== 'auto' && n.ipv6 !== 'dhcp') kv.push(['IPV6ADDR', n.ipv6]);
    if (n.ipv6gateway) kv.push(['IPV6_DEFAULTGW', n.ipv6gateway]);
  }
  return { name: `ifcfg-${dev}`, text: kv.map(([k, v]) => `${k}=${/^[A-Za-z0-9_./:,-]*$/.test(v) ? v : `"${v.replace(/(["\\$`])/g, '\\$1')}"`}`).join('\n') + '\n' };
}

/** A UUID (v4 layout) derived from a seed, so profiles are reproducible. */
export function seededUuid(seed: string): string {
  const h = createHash('sha256').update(seed).digest();
  h[6] = (h[6]! & 0x0f) | 0x40;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
}

export type NetworkFormat = 'keyfile' | 'ifcfg';

/** NetworkManager keyfiles when NetworkManager is in the image (Fedora ≥ 33 default), else ifcfg for network-scripts. */
export function detectNetworkFormat(tree: StagingTree): NetworkFormat {
  const nm = tree.lookup('/usr/sbin/NetworkManager') ?? tree.lookup('/usr/lib/NetworkManager');
  if (nm) return 'keyfile';
  return tree.lookup('/etc/sysconfig/network-scripts') ? 'ifcfg' : 'keyfile';
}

export function writeNetwork(tree: StagingTree, devices: NetworkDevice[], opts: { format?: NetworkFormat; seed?: string } = {}): string[] {
  const format = opts.format ?? detectNetworkFormat(tree);
  const written: string[] = [];
  for (const n of devices) {
    if (n.bootproto === 'ibft' || n.bootproto === 'bootp') throw new SysconfigError('UNSUPPORTED_BOOTPROTO', `--bootproto=${n.bootproto} cannot be configured in an image`, { field: n.device });
    if (format === 'keyfile') {
      const { name, text } = renderKeyfile(n, seededUuid(`${opts.seed ?? ''}:${n.device}`));
      const path = `/etc/NetworkManager/system-connections/${name}`;
      writeTreeText(tree, path, text, 0o600);
      written.push(path);
    } else {
      const { name, text } = renderIfcfg(n);
      const path = `/etc/sysconfig/network-scripts/${name}`;
      writeTreeText(tree, path, text);
      written.push(path);
    }
  }
  if (format === 'ifcfg' && devices.length && !tree.lookup('/etc/sysconfig/network')) {
    writeTreeText(tree, '/etc/sysconfig/network', 'NETWORKING=yes\n');
    written.push('/etc/sysconfig/network');
  }
  return written;
}

/** Every system configuration file the spec asks for; `filesystems` come from the disk builder. */
export async function applySysconfig(tree: StagingTree, spec: ImageSpec, filesystems: MountedFilesystem[], opts: { networkFormat?: NetworkFormat; seed?: string } = {}): Promise<void> {
  writeFstab(tree, filesystems);
  if (spec.hostname) writeHostname(tree, spec.hostname);
  writeTimezone(tree, spec.timezone);
  writeLocale(tree, spec.locale);
  writeKeyboard(tree, spec.keyboard);
  writeMachineId(tree);
  if (spec.network.length) writeNetwork(tree, spec.network, opts);
  await writeSelinuxConfig(tree, spec.selinux);
}

/**
 * firewalld like `firewall-offline-cmd`: the default zone from the image
 * (`/usr/lib/firewalld/zones/public.xml`) copied to /etc with the requested
 * services and ports added; `--disabled` only disables the service (see
 * configureSystem).
 */
export async function writeFirewall(tree: StagingTree, fw: FirewallSpec): Promise<string[]> {
  const warnings: string[] = [];
  if (!fw.enabled || (!fw.services.length && !fw.ports.length)) return warnings;
  const base = (await readTreeText(tree, '/etc/firewalld/zones/public.xml')) ?? (await readTreeText(tree, '/usr/lib/firewalld/zones/public.xml'));
  if (base === undefined || !base.includes('</zone>')) {
    warnings.push('firewall services requested but firewalld (its default public zone) is not in the image');
    return warnings;
  }
  const add: string[] = [];
  for (const s of fw.services) {
    if (!/^[A-Za-z0-9_.-]+$/.test(s)) throw new SysconfigError('BAD_FIREWALL_SERVICE', 'invalid firewall service name', { actual: s });
    if (!base.includes(`<service name="${s}"/>`)) add.push(`  <service name="${s}"/>`);
  }
  for (const p of fw.ports) {
    const m = /^(\d+(?:-\d+)?):(tcp|udp|sctp|dccp)$/.exec(p);
    if (!m) throw new SysconfigError('BAD_FIREWALL_PORT', 'firewall port must be PORT:PROTOCOL', { actual: p });
    add.push(`  <port port="${m[1]}" protocol="${m[2]}"/>`);
  }
  if (fw.trust.length) warnings.push(`firewall --trust (${fw.trust.join(', ')}) is not applied`);
  writeTreeText(tree, '/etc/firewalld/zones/public.xml', base.replace('</zone>', `${add.join('\n')}${add.length ? '\n' : ''}</zone>`));
  return warnings;
}

export interface ConfigureOptions {
  /** Filesystems the disk builder made (for fstab). */
  filesystems: MountedFilesystem[];
  /** The transaction's scriptlets and triggers, in install order. */
  scriptlets?: Scriptlet[];
  networkFormat?: NetworkFormat;
  /** Seed for derived identifiers (connection UUIDs). */
  seed?: string;
}

export interface ConfigureReport {
  scriptlets: ScriptletReport;
  /** useradd/groupadd/sysusers calls from scriptlets, for the users step. */
  userActions: NativeAction[];
  systemd: SystemdChange[];
  /** Files of the first-boot unit, when the spec asks for it and something was deferred. */
  firstbootFiles: string[];
  warnings: string[];
}

/**
 * System configuration after the packages are unpacked: config files, native
 * scriptlet work (alternatives, ldconfig, presets of the packages' units),
 * services (preset-all as the systemd package's %post does on first install,
 * then the spec's disable/enable list and default target), firewall, and the
 * optional first-boot unit. Users/passwd and then SELinux labelling
 * (`labelTree`, last, so every file exists) are separate steps.
 */
export async function configureSystem(tree: StagingTree, spec: ImageSpec, opts: ConfigureOptions): Promise<ConfigureReport> {
  const warnings: string[] = [...spec.warnings];
  await applySysconfig(tree, spec, opts.filesystems, { ...(opts.networkFormat ? { networkFormat: opts.networkFormat } : {}), seed: opts.seed ?? spec.name });
  const scriptlets = classifyTransaction(opts.scriptlets ?? []);
  const native = await applyNativeActions(tree, scriptlets, { arch: spec.arch, ldconfig: true });
  warnings.push(...native.warnings);
  const disable = [...spec.services.disable];
  const enable = [...spec.services.enable];
  if (spec.firewall) (spec.firewall.enabled ? enable : disable).push('firewalld');
  // Kickstart `firstboot`: initial-setup runs only when asked (Anaconda disables it otherwise); --reconfig also flags /etc/reconfigSys.
  if (spec.firstboot === 'disabled') {
    if (tree.lookup('/usr/lib/systemd/system/initial-setup.service')) disable.push('initial-setup.service');
  } else {
    enable.push('initial-setup.service');
    if (spec.firstboot === 'reconfig') writeTreeText(tree, '/etc/reconfigSys', '');
  }
  const services = await configureServices(tree, { enable, disable, ...(spec.defaultTarget ? { defaultTarget: spec.defaultTarget } : {}) });
  warnings.push(...services.warnings);
  if (spec.firewall) warnings.push(...(await writeFirewall(tree, spec.firewall)));
  const deferred = scriptlets.scriptlets.filter((s) => s.disposition === 'deferred');
  const firstbootFiles = spec.deferredScriptletsUnit && deferred.length ? await installFirstbootUnit(tree, deferred) : [];
  if (deferred.length && !spec.deferredScriptletsUnit) warnings.push(`${deferred.length} scriptlet(s) deferred and not run (set deferredScriptletsUnit to run them on first boot)`);
  return { scriptlets, userActions: native.userActions, systemd: services.changes, firstbootFiles, warnings };
}
