/**
 * UEFI boot: the files an EFI System Partition needs, taken from the
 * image's own packages. Either systemd-boot with loader.conf and a Boot
 * Loader Specification type 1 entry (kernel and initrd copied to the ESP,
 * laid out as kernel-install does: /ENTRY-TOKEN/KVER/{linux,initrd}), or
 * GRUB EFI (the distribution's prebuilt, signed grubx64.efi, behind shim when
 * the image has it) with a grub.cfg. Always at the removable-media path
 * \EFI\BOOT\BOOTX64.EFI (UEFI spec 2.10, 3.5.1.1) so no NVRAM entry is needed,
 * plus the vendor directory.
 */
import { IngotError } from '../errors.js';
import type { StagingTree } from '../tree/tree.js';
import { readAll } from './depmod.js';
import { blsEntryName, blsEntryText, type BlsEntry } from './bls.js';

export class UefiError extends IngotError {
  constructor(message: string) {
    super('UEFI', message);
  }
}

/** A file for the ESP (path with forward slashes, from the ESP root). */
export interface EspFile { path: string; data: Uint8Array }

export const SYSTEMD_BOOT_PATHS = ['/usr/lib/systemd/boot/efi/systemd-bootx64.efi', '/lib/systemd/boot/efi/systemd-bootx64.efi'];
export const GRUB_EFI_PATHS = [
  '/usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed', // Debian grub-efi-amd64-signed
  '/boot/efi/EFI/fedora/grubx64.efi', // Fedora grub2-efi-x64
  '/usr/lib/grub/x86_64-efi/monolithic/grubx64.efi',
];
export const SHIM_PATHS = ['/usr/lib/shim/shimx64.efi.signed', '/usr/lib/shim/shimx64.efi', '/boot/efi/EFI/fedora/shimx64.efi'];

/** The image's prebuilt GRUB EFI image, when it has one. */
export function findGrubEfi(tree: StagingTree): Promise<{ path: string; data: Uint8Array } | undefined> {
  return fileFrom(tree, GRUB_EFI_PATHS);
}

async function fileFrom(tree: StagingTree, candidates: string[]): Promise<{ path: string; data: Uint8Array } | undefined> {
  for (const p of candidates) {
    const n = tree.lookup(p);
    if (n?.type === 'file') return { path: p, data: await readAll(n, p) };
  }
  return undefined;
}

async function required(tree: StagingTree, path: string, what: string): Promise<Uint8Array> {
  const n = tree.lookup(path);
  if (n?.type !== 'file') throw new UefiError(`${what} ${path} is not in the image`);
  return readAll(n, path);
}

export interface KernelEntry {
  kernelVersion: string;
  /** Kernel and initramfs paths inside the image. */
  kernel: string;
  initrd?: string;
  /** Kernel command line (root=UUID=… console=…). */
  cmdline: string;
  title?: string;
}

/** The entry token kernel-install would use: the machine id, or the os-release ID. */
export function entryToken(osId: string | undefined, machineId?: string): string {
  return machineId ?? osId ?? 'linux';
}

/** systemd-boot + loader.conf + one BLS type 1 entry, with kernel and initrd on the ESP. */
export async function systemdBootEsp(tree: StagingTree, e: KernelEntry & { token: string }): Promise<EspFile[]> {
  const sdboot = await fileFrom(tree, SYSTEMD_BOOT_PATHS);
  if (!sdboot) throw new UefiError(`the image has no systemd-boot (${SYSTEMD_BOOT_PATHS.join(', ')}): add systemd-boot-efi (Fedora: systemd-boot-unsigned)`);
  const dir = `/${e.token}/${e.kernelVersion}`;
  const entry = blsEntryText({
    title: e.title ?? 'Linux', version: e.kernelVersion, linux: `${dir}/linux`, initrd: e.initrd ? `${dir}/initrd` : undefined, options: e.cmdline,
  });
  const name = blsEntryName(e.token, e.kernelVersion);
  const files: EspFile[] = [
    { path: '/EFI/BOOT/BOOTX64.EFI', data: sdboot.data },
    { path: '/EFI/systemd/systemd-bootx64.efi', data: sdboot.data },
    { path: '/loader/loader.conf', data: Buffer.from(`default ${name}\ntimeout 0\nconsole-mode keep\neditor no\n`) },
    { path: `/loader/entries/${name}`, data: Buffer.from(entry) },
    { path: `${dir}/linux`, data: await required(tree, e.kernel, 'kernel') },
  ];
  if (e.initrd) files.push({ path: `${dir}/initrd`, data: await required(tree, e.initrd, 'initramfs') });
  return files;
}

export interface GrubConfig {
  /** File system UUID holding kernel and initrd (the root, or a separate /boot). */
  bootFsUuid: string;
  /** Kernel and initrd paths as seen on that file system. */
  kernel: string;
  initrd?: string;
  cmdline: string;
  title?: string;
  /** Seconds at the menu. */
  timeout?: number;
  /**
   * The image keeps its entries as BLS type 1 files in /boot/loader/entries.
   * With `blscfg` (Fedora's GRUB) the menu is read from them at boot;
   * without it, each entry becomes a menuentry here.
   */
  bls?: { entries: BlsEntry[]; blscfg: boolean };
}

/**
 * A grub.cfg for BIOS and EFI GRUB: serial + screen console, entries found by
 * file system UUID; Fedora-style `blscfg` when the image's GRUB has it.
 */
export function grubCfg(c: GrubConfig): string {
  const head = [
    '# written by ingot',
    'serial --unit=0 --speed=115200',
    'terminal_input serial console',
    'terminal_output serial console',
    `set timeout=${c.timeout ?? 0}`,
    'set default=0',
  ];
  if (c.bls?.blscfg) {
    // blscfg reads $boot's /loader/entries (separate /boot) or /boot/loader/entries (on root).
    return [...head, `search --no-floppy --fs-uuid --set=boot ${c.bootFsUuid}`, 'set root=$boot', 'insmod blscfg', 'blscfg', ''].join('\n');
  }
  if (c.bls) head.push('# the menu below is /boot/loader/entries/*.conf: this GRUB has no blscfg module');
  const entries = c.bls?.entries ?? [{ title: c.title ?? 'Linux', linux: c.kernel, initrd: c.initrd, options: c.cmdline }];
  return [
    ...head,
    ...entries.flatMap((e) => [
      `menuentry '${e.title.replace(/'/g, '')}' {`,
      `  search --no-floppy --fs-uuid --set=root ${c.bootFsUuid}`,
      `  linux ${e.linux}${e.options ? ` ${e.options}` : ''}`,
      ...(e.initrd ? [`  initrd ${e.initrd}`] : []),
      '}',
    ]),
    '',
  ].join('\n');
}

/** Directories named inside a prebuilt GRUB EFI image as its prefix (e.g. "/EFI/debian"). */
export function grubEfiPrefixes(image: Uint8Array): string[] {
  const text = Buffer.from(image.buffer, image.byteOffset, image.length).toString('latin1');
  return [...new Set([...text.matchAll(/\/EFI\/([A-Za-z0-9_.-]{2,32})(?=\0|\/)/g)].map((m) => m[1]!))].filter((v) => v.toUpperCase() !== 'BOOT');
}

/**
 * GRUB EFI: the image's prebuilt grubx64.efi (+ shim when present) at the
 * removable path and under the vendor directory, grub.cfg next to each,
 * including the prefix directory compiled into the GRUB image.
 */
export async function grubEfiEsp(tree: StagingTree, cfg: GrubConfig & { vendor: string }): Promise<EspFile[]> {
  const grub = await fileFrom(tree, GRUB_EFI_PATHS);
  if (!grub) throw new UefiError(`the image has no prebuilt GRUB EFI image (${GRUB_EFI_PATHS.join(', ')}): add grub-efi-amd64-signed (Fedora: grub2-efi-x64)`);
  const shim = await fileFrom(tree, SHIM_PATHS);
  const cfgText = Buffer.from(grubCfg(cfg));
  const dirs = [...new Set(['BOOT', cfg.vendor, ...grubEfiPrefixes(grub.data)])];
  const files: EspFile[] = [];
  for (const d of dirs) {
    if (shim) {
      files.push({ path: `/EFI/${d}/${d === 'BOOT' ? 'BOOTX64.EFI' : 'shimx64.efi'}`, data: shim.data });
      files.push({ path: `/EFI/${d}/grubx64.efi`, data: grub.data });
    } else {
      files.push({ path: `/EFI/${d}/${d === 'BOOT' ? 'BOOTX64.EFI' : 'grubx64.efi'}`, data: grub.data });
    }
    files.push({ path: `/EFI/${d}/grub.cfg`, data: cfgText });
  }
  return files;
}
