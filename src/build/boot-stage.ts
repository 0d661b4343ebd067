/**
 * Boot loader and initramfs stage of the build: files into the tree before
 * the filesystems are written (config, stage files, initramfs), and boot
 * sectors patched into the disk after (they need the physical placement of
 * files the filesystem writer chose).
 */
import { IngotError } from '../errors.js';
import type { ContentStore } from '../tree/content-store.js';
import type { StagingTree } from '../tree/tree.js';
import type { ImageSpec } from '../spec/model.js';
import type { DiskPlan, WrittenDisk } from './disk.js';

export class BootStageError extends IngotError {}

export interface BootPrep {
  /** Image paths the filesystem writer must store contiguously. */
  contiguous: string[];
  warnings: string[];
  scriptlets: { package: string; kind: string; interpreter: string; handled: string }[];
  /** Work for `finishBoot`. */
  finish?: (disk: WrittenDisk) => Promise<void>;
}

export async function prepareBoot(_tree: StagingTree, spec: ImageSpec, _plan: DiskPlan, _o: { store: ContentStore; seed: string; epoch: number }): Promise<BootPrep> {
  if (spec.bootloader.kind === 'none') return { contiguous: [], warnings: [], scriptlets: [] };
  throw new BootStageError('BOOTLOADER_NOT_YET', `boot loader ${spec.bootloader.kind}: not yet — the boot loader installers have not landed`, { field: 'bootloader.kind' });
}

export async function finishBoot(disk: WrittenDisk, prep: BootPrep, _spec: ImageSpec): Promise<void> {
  if (prep.finish) await prep.finish(disk);
}
