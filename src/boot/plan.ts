/**
 * The boot step of a build in two halves around the file system writers:
 *
 *   prepareBoot(tree, plan)      before ext4/FAT are written: modules.dep/alias,
 *                                initramfs (unless the image has one), loader
 *                                files staged into the tree (extlinux files,
 *                                grub.cfg) and the ESP's files returned;
 *   finishBoot(disk, prep, maps) after: boot sectors, core.img, ldlinux.sys patch.
 *
 * Which loaders: `bios` is extlinux (MBR) or GRUB (MBR gap / BIOS boot
 * partition), `uefi` is systemd-boot or GRUB EFI, `hybrid` is GRUB BIOS + a
 * UEFI loader on a GPT disk.
 */
import type { BlockTarget } from '../disk/target.js';
import type { StagingTree } from '../tree/tree.js';
import { BufferContent } from '../tree/tree.js';
import { IngotError } from '../errors.js';
import { writeDepmodFiles } from './depmod.js';
import { installInitramfs, initramfsPath } from './initramfs.js';
import { findKernels, kernelCmdline, type InstalledKernel } from './kernel.js';
import { extlinuxConf, extlinuxFromTree, installExtlinux, stageExtlinuxFiles, type ExtlinuxPayload, type FileBlockMap } from './extlinux.js';
import { coreImageFor, grubPcFromTree, installGrubBios } from './grub-bios.js';
import { findGrubEfi, grubCfg, grubEfiEsp, systemdBootEsp, type EspFile, type GrubConfig } from './uefi.js';
import { blsEntryName, blsEntryText, grubHasBlscfg, grubImageHasBlscfg, machineId, type BlsEntry } from './bls.js';

export class BootPlanError extends IngotError {
  constructor(message: string) {
    super('BOOT_PLAN', message);
  }
}

export type BiosLoader = 'extlinux' | 'grub';
export type UefiLoader = 'systemd-boot' | 'grub';

export interface BootPlan {
  firmware: 'bios' | 'uefi' | 'hybrid';
  biosLoader?: BiosLoader;
  uefiLoader?: UefiLoader;
  /** Root file system UUID (and type, for the initramfs). */
  rootUuid: string;
  rootFsType?: string;
  /** UUID of a separate /boot file system, when there is one (its paths then start at its root). */
  bootFsUuid?: string;
  /** Extra kernel arguments (kickstart `bootloader --append`). */
  append?: string[];
  consoles?: string[];
  kernelVersion?: string;
  /** Vendor directory on the ESP (os-release ID). */
  vendor?: string;
  initramfsCompression?: 'gzip' | 'xz';
  mtime?: number;
  /**
   * GRUB keeps its menu as BLS type 1 entries in /boot/loader/entries
   * (Fedora style). Default: when the image's GRUB has the blscfg module.
   */
  bls?: boolean;
}

export interface PreparedBoot {
  plan: BootPlan;
  kernel: InstalledKernel;
  initrd: string;
  cmdline: string;
  /** Files for the ESP (uefi/hybrid); the FAT writer puts them there. */
  espFiles: EspFile[];
  extlinux?: { payload: ExtlinuxPayload; mbr: Uint8Array; dir: string };
  /** BLS entries written to /boot/loader/entries for GRUB, and whether GRUB reads them itself (blscfg). */
  bls?: { paths: string[]; blscfg: boolean };
}

/** Path as seen from the file system holding /boot. */
function onBootFs(plan: BootPlan, path: string): string {
  return plan.bootFsUuid ? path.replace(/^\/boot(?=\/)/, '') : path;
}

export async function prepareBoot(tree: StagingTree, plan: BootPlan): Promise<PreparedBoot> {
  const kernels = findKernels(tree);
  if (!kernels.length) throw new BootPlanError('the image has no kernel (no /boot/vmlinuz-* or /lib/modules/*/vmlinuz with modules): add a kernel package');
  const kernel = plan.kernelVersion ? kernels.find((k) => k.version === plan.kernelVersion) : kernels[kernels.length - 1];
  if (!kernel) throw new BootPlanError(`kernel ${plan.kernelVersion} is not installed (have ${kernels.map((k) => k.version).join(', ')})`);
  await writeDepmodFiles(tree, kernel.version);
  const existing = [initramfsPath(kernel.version), initramfsPath(kernel.version, 'fedora')].find((p) => tree.lookup(p)?.type === 'file');
  const initrd = existing ?? (await installInitramfs(tree, {
    kernelVersion: kernel.version, rootFsType: plan.rootFsType, compression: plan.initramfsCompression, mtime: plan.mtime,
  })).path;
  // The kernel image must be reachable from /boot for BIOS loaders reading the boot file system.
  let kernelPath = kernel.image;
  if (!kernelPath.startsWith('/boot/')) {
    kernelPath = `/boot/vmlinuz-${kernel.version}`;
    const src = tree.lookup(kernel.image)!;
    if (!tree.lookup(kernelPath)) tree.addFile(kernelPath, src.content ?? new BufferContent(new Uint8Array()), { mode: 0o755, mtime: src.mtime, ctime: src.ctime, atime: src.atime });
  }
  const cmdline = kernelCmdline({ rootUuid: plan.rootUuid, consoles: plan.consoles, extra: plan.append });
  const prep: PreparedBoot = { plan, kernel: { ...kernel, image: kernelPath }, initrd, cmdline, espFiles: [] };
  const bootUuid = plan.bootFsUuid ?? plan.rootUuid;

  const bios = plan.firmware === 'bios' || plan.firmware === 'hybrid' ? (plan.biosLoader ?? (plan.firmware === 'hybrid' ? 'grub' : 'extlinux')) : undefined;
  if (plan.firmware === 'hybrid' && bios === 'extlinux') throw new BootPlanError('a hybrid BIOS+UEFI disk is GPT: use GRUB for BIOS (extlinux here needs an MBR)');
  if (bios === 'extlinux') {
    const { payload, mbr } = await extlinuxFromTree(tree);
    const dir = '/boot/extlinux';
    stageExtlinuxFiles(tree, payload, dir, extlinuxConf({ kernel: onBootFs(plan, kernelPath), initrd: onBootFs(plan, initrd), append: cmdline }));
    prep.extlinux = { payload, mbr, dir };
  }
  const efiGrub = plan.firmware !== 'bios' && (plan.uefiLoader ?? 'systemd-boot') === 'grub';
  let cfg: GrubConfig = { bootFsUuid: bootUuid, kernel: onBootFs(plan, kernelPath), initrd: onBootFs(plan, initrd), cmdline };
  if (bios === 'grub' || efiGrub) {
    if (bios === 'grub') grubPcFromTree(tree); // fail now, naming the package, rather than after the file systems are written
    // The image uses BLS when its GRUB has blscfg; grub.cfg runs blscfg only when every GRUB that reads it
    // has it (hybrid: the BIOS modules and the EFI image), else it carries the entries as menuentries.
    const efiImage = efiGrub ? await findGrubEfi(tree) : undefined;
    const has = [
      ...(bios === 'grub' ? [grubHasBlscfg(tree, '/usr/lib/grub/i386-pc')] : []),
      ...(efiGrub ? [efiImage !== undefined && grubImageHasBlscfg(efiImage.data)] : []),
    ];
    const blscfg = has.every(Boolean);
    if (plan.bls ?? has.some(Boolean)) {
      const token = (await machineId(tree)) ?? plan.vendor ?? 'linux';
      const entry: BlsEntry = { title: `${plan.vendor ?? 'Linux'} (${kernel.version})`, version: kernel.version, linux: cfg.kernel, initrd: cfg.initrd, options: cmdline };
      const path = `/boot/loader/entries/${blsEntryName(token, kernel.version)}`;
      tree.mkdirp('/boot/loader/entries', { mode: 0o755 });
      if (tree.lookup(path)) tree.remove(path);
      tree.addFile(path, new BufferContent(Buffer.from(blsEntryText(entry))), { mode: 0o644 });
      cfg = { ...cfg, bls: { entries: [entry], blscfg } };
      prep.bls = { paths: [path], blscfg };
    }
    tree.mkdirp('/boot/grub', { mode: 0o755 });
    if (tree.lookup('/boot/grub/grub.cfg')) tree.remove('/boot/grub/grub.cfg');
    tree.addFile('/boot/grub/grub.cfg', new BufferContent(Buffer.from(grubCfg(cfg))), { mode: 0o644 });
  }
  if (plan.firmware !== 'bios') {
    const loader = plan.uefiLoader ?? 'systemd-boot';
    prep.espFiles = loader === 'systemd-boot'
      ? await systemdBootEsp(tree, { kernelVersion: kernel.version, kernel: kernel.image, initrd, cmdline, token: plan.vendor ?? 'linux' })
      : await grubEfiEsp(tree, { ...cfg, vendor: plan.vendor ?? 'linux' });
  }
  return prep;
}

export interface WrittenLayout {
  /** The file system that holds /boot (root, or the separate /boot). */
  bootFs: FileBlockMap;
  /** MBR partition index (0-3) of that file system, for the active flag (extlinux). */
  bootPartitionIndex?: number;
  /** Where GRUB's core.img goes: the BIOS boot partition (GPT) or the MBR gap (start sector 1). */
  grubCore?: { sector: number; sectors: number };
  tree: StagingTree;
}

export async function finishBoot(disk: BlockTarget, prep: PreparedBoot, layout: WrittenLayout): Promise<void> {
  if (prep.extlinux) {
    const dirInFs = onBootFs(prep.plan, prep.extlinux.dir);
    await installExtlinux(disk, layout.bootFs, prep.extlinux.payload, prep.extlinux.mbr, { dirInFs, partitionIndex: layout.bootPartitionIndex ?? 0 });
  }
  const bios = prep.plan.firmware === 'bios' || prep.plan.firmware === 'hybrid';
  if (bios && !prep.extlinux) {
    if (!layout.grubCore) throw new BootPlanError('GRUB for BIOS needs an MBR gap or a BIOS boot partition');
    const grub = grubPcFromTree(layout.tree);
    const core = await coreImageFor(grub, { bootFsUuid: prep.plan.bootFsUuid ?? prep.plan.rootUuid, grubDir: onBootFs(prep.plan, '/boot/grub') });
    await installGrubBios(disk, await grub.read('boot.img'), core, { coreSector: layout.grubCore.sector, gapSectors: layout.grubCore.sectors });
  }
}
