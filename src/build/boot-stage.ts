/**
 * Boot loader and initramfs stage of the build: files into the tree before
 * the filesystems are written (initramfs, loader config and stage files), and
 * boot sectors patched into the disk after (they need the physical placement
 * of files the filesystem writer chose).
 */
import { IngotError } from '../errors.js';
import type { ContentStore } from '../tree/content-store.js';
import type { StagingTree } from '../tree/tree.js';
import type { ImageSpec } from '../spec/model.js';
import { installedKernels } from '../boot/depmod.js';
import { installInitramfs } from '../boot/initramfs.js';
import type { DiskPlan, WrittenDisk } from './disk.js';

export class BootStageError extends IngotError {}

export interface KernelEntry {
  version: string;
  /** Kernel and initramfs paths in the image. */
  kernel: string;
  initrd: string;
}

export interface BootPrep {
  kernels: KernelEntry[];
  /** Image paths the filesystem writer must store contiguously. */
  contiguous: string[];
  warnings: string[];
  /** Work for `finishBoot`, once the disk is written. */
  finish?: (disk: WrittenDisk) => Promise<void>;
}

export interface BootContext {
  store: ContentStore;
  seed: string;
  epoch: number;
}

/** The kernel command line: root by filesystem UUID, then the spec's arguments. */
export function kernelCommandLine(spec: ImageSpec, plan: DiskPlan): string {
  const root = plan.root();
  return [`root=UUID=${root.fsUuid}`, 'ro', `rootfstype=${root.kind}`, ...spec.bootloader.kernelArgs].join(' ');
}

function findKernelImage(tree: StagingTree, kver: string): string | undefined {
  for (const p of [`/boot/vmlinuz-${kver}`, `/usr/lib/modules/${kver}/vmlinuz`, `/lib/modules/${kver}/vmlinuz`]) {
    if (tree.lookup(p)?.type === 'file') return p;
  }
  return undefined;
}

/** Kernels in the image, each with an initramfs (ingot builds one when the image has none). */
async function prepareKernels(tree: StagingTree, plan: DiskPlan, ctx: BootContext, warnings: string[]): Promise<KernelEntry[]> {
  const out: KernelEntry[] = [];
  for (const version of installedKernels(tree).sort()) {
    let kernel = findKernelImage(tree, version);
    if (!kernel) { warnings.push(`kernel modules for ${version} but no kernel image`); continue; }
    if (!kernel.startsWith('/boot/')) {
      // Fedora ships the image in /usr/lib/modules; kernel-install copies it to /boot.
      const node = tree.lookup(kernel)!;
      tree.addFile(`/boot/vmlinuz-${version}`, node.content!, { mode: node.mode, mtime: node.mtime });
      kernel = `/boot/vmlinuz-${version}`;
    }
    const existing = [`/boot/initramfs-${version}.img`, `/boot/initrd.img-${version}`].find((p) => tree.lookup(p)?.type === 'file');
    let initrd = existing;
    if (!initrd) {
      const style = tree.lookup('/etc/debian_version') ? 'debian' : kernel.includes('vmlinuz-') && tree.lookup('/etc/redhat-release') ? 'fedora' : 'debian';
      const r = await installInitramfs(tree, { kernelVersion: version, rootFsType: plan.root().kind, mtime: ctx.epoch, path: style === 'fedora' ? `/boot/initramfs-${version}.img` : undefined });
      initrd = r.path;
    }
    out.push({ version, kernel, initrd });
  }
  return out;
}

export async function prepareBoot(tree: StagingTree, spec: ImageSpec, plan: DiskPlan, ctx: BootContext): Promise<BootPrep> {
  const warnings: string[] = [];
  const kernels = await prepareKernels(tree, plan, ctx, warnings);
  const prep: BootPrep = { kernels, contiguous: [], warnings };
  if (spec.bootloader.kind === 'none') return prep;
  if (kernels.length === 0) {
    throw new BootStageError('NO_KERNEL', `boot loader ${spec.bootloader.kind} asked for but the image has no kernel: add a kernel package`, { field: 'packages' });
  }
  const { installBootloader } = await import('./bootloader.js');
  return installBootloader(tree, spec, plan, ctx, prep);
}

export async function finishBoot(disk: WrittenDisk, prep: BootPrep): Promise<void> {
  if (prep.finish) await prep.finish(disk);
}
