/**
 * The fixture repository's kernel, unpacked (fixtures/images.ts), as a
 * staging tree with ingot's initramfs installed: what the host-tool boot
 * tests (GRUB BIOS, UEFI, hybrid) put on their disks.
 */
import { kernelVersion, stagedFixtureRoot } from '../../fixtures/images.js';
import { treeFromDir } from '../../fixtures/tree.js';
import { installInitramfs } from '../../src/boot/initramfs.js';
import { readAll } from '../../src/boot/depmod.js';
import type { StagingTree } from '../../src/tree/tree.js';

export interface StagedKernel { /** The unpacked packages on the host. */ root: string; kver: string; tree: StagingTree; initrdPath: string; initrd: Uint8Array }

export async function stagedKernel(): Promise<StagedKernel> {
  const root = stagedFixtureRoot();
  const kver = kernelVersion(root);
  const tree = treeFromDir(root);
  const { path: initrdPath } = await installInitramfs(tree);
  const initrd = await readAll(tree.lookup(initrdPath)!, initrdPath);
  return { root, kver, tree, initrdPath, initrd };
}
