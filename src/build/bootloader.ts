/** Boot loader installation dispatch (filled in as the installers land). */
import type { StagingTree } from '../tree/tree.js';
import type { ImageSpec } from '../spec/model.js';
import type { DiskPlan } from './disk.js';
import { BootStageError, type BootContext, type BootPrep } from './boot-stage.js';

export async function installBootloader(_tree: StagingTree, spec: ImageSpec, _plan: DiskPlan, _ctx: BootContext, _prep: BootPrep): Promise<BootPrep> {
  throw new BootStageError('BOOTLOADER_NOT_YET', `boot loader ${spec.bootloader.kind}: not yet — the installer has not landed`, { field: 'bootloader.kind' });
}
