/** GRUB for BIOS (i386-pc): not yet — the core.img assembler is being built in src/boot. */
import type { StagingTree } from '../tree/tree.js';
import type { ImageSpec } from '../spec/model.js';
import type { DiskPlan, WrittenDisk } from './disk.js';
import { BootStageError } from './boot-stage.js';

export interface GrubBiosEntry { kernel: string; initrd: string; cmdline: string; title: string; bootFsUuid: string; inFs: (p: string) => string }

export async function installGrubBios(_tree: StagingTree, _spec: ImageSpec, _plan: DiskPlan, _e: GrubBiosEntry): Promise<((disk: WrittenDisk) => Promise<void>)[]> {
  throw new BootStageError('GRUB_BIOS_NOT_YET', 'GRUB for BIOS: not yet — use extlinux (MBR) for BIOS boot, or firmware uefi', { field: 'bootloader.kind' });
}
