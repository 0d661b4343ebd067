/** The installed kernels of a staged image and the kernel command line ingot writes. */
import type { StagingTree } from '../tree/tree.js';
import { installedKernels } from './depmod.js';

export interface InstalledKernel {
  version: string;
  /** Path of the kernel image in the tree (Debian: /boot/vmlinuz-V; Fedora: /lib/modules/V/vmlinuz). */
  image: string;
}

/** Kernels that have both modules and an image, newest version last (by rpm-like segment order). */
export function findKernels(tree: StagingTree): InstalledKernel[] {
  const out: InstalledKernel[] = [];
  for (const v of installedKernels(tree)) {
    const image = [`/boot/vmlinuz-${v}`, `/lib/modules/${v}/vmlinuz`].find((p) => tree.lookup(p)?.type === 'file');
    if (image) out.push({ version: v, image });
  }
  return out.sort((a, b) => compareVersions(a.version, b.version));
}

function compareVersions(a: string, b: string): number {
  const sa = a.split(/[^0-9a-zA-Z]+/), sb = b.split(/[^0-9a-zA-Z]+/);
  for (let i = 0; i < Math.max(sa.length, sb.length); i++) {
    const x = sa[i] ?? '', y = sb[i] ?? '';
    const nx = /^\d+$/.test(x), ny = /^\d+$/.test(y);
    const c = nx && ny ? Number(x) - Number(y) : x < y ? -1 : x > y ? 1 : 0;
    if (c) return c;
  }
  return 0;
}

export interface CmdlineOptions {
  rootUuid: string;
  rootFsType?: string;
  /** Console devices, last one is /dev/console (default: tty0 then ttyS0 at 115200). */
  consoles?: string[];
  readOnly?: boolean;
  /** The spec's extra arguments (kickstart bootloader --append). */
  extra?: string[];
}

export function kernelCmdline(o: CmdlineOptions): string {
  const consoles = o.consoles ?? ['tty0', 'ttyS0,115200n8'];
  return [
    `root=UUID=${o.rootUuid}`,
    ...(o.rootFsType ? [`rootfstype=${o.rootFsType}`] : []),
    o.readOnly === false ? 'rw' : 'ro',
    ...consoles.map((c) => `console=${c}`),
    ...(o.extra ?? []),
  ].join(' ');
}
