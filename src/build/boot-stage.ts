/**
 * The build's boot step, around the filesystem writers: `prepareBoot` maps
 * the spec onto a boot plan (src/boot/plan.ts) that stages the initramfs,
 * modules.dep and loader files into the tree and returns the ESP's files;
 * `finishBoot` patches boot sectors, core.img and ldlinux.sys once the
 * filesystems exist (they need where the ext4 writer placed files).
 */
import { IngotError } from '../errors.js';
import { BufferContent, type StagingTree } from '../tree/tree.js';
import type { ImageSpec } from '../spec/model.js';
import { prepareBoot as planBoot, finishBoot as finishPlan, type BootPlan, type PreparedBoot } from '../boot/plan.js';
import { readTreeText } from '../install/treetext.js';
import type { ContentStore } from '../tree/content-store.js';
import type { DiskPlan, WrittenDisk } from './disk.js';

export class BootStageError extends IngotError {}

export interface BootContext { store: ContentStore; seed: string; epoch: number }

export interface BootPrep {
  prepared?: PreparedBoot;
  /** Image paths the filesystem writer must store contiguously. */
  contiguous: string[];
  warnings: string[];
}

const ESP_MOUNT = '/boot/efi';

async function osId(tree: StagingTree): Promise<string | undefined> {
  const text = (await readTreeText(tree, '/etc/os-release')) ?? (await readTreeText(tree, '/usr/lib/os-release')) ?? '';
  return /^ID="?([A-Za-z0-9._-]+)"?$/m.exec(text)?.[1];
}

export async function prepareBoot(tree: StagingTree, spec: ImageSpec, plan: DiskPlan, ctx: BootContext): Promise<BootPrep> {
  const bl = spec.bootloader;
  const prep: BootPrep = { contiguous: [], warnings: [] };
  if (bl.kind === 'none') return prep;
  const fw = bl.firmware;
  if (fw !== 'uefi' && bl.kind === 'systemd-boot') {
    throw new BootStageError('BOOTLOADER_FIRMWARE', 'systemd-boot only boots UEFI firmware: use grub or extlinux for BIOS', { field: 'bootloader.kind' });
  }
  if (fw !== 'bios' && bl.kind === 'extlinux') {
    throw new BootStageError('BOOTLOADER_FIRMWARE', 'extlinux boots BIOS firmware only here: use grub or systemd-boot for UEFI', { field: 'bootloader.kind' });
  }
  if (fw !== 'bios' && !plan.byMount(ESP_MOUNT)) {
    throw new BootStageError('NO_ESP', `UEFI boot needs an EFI system partition mounted at ${ESP_MOUNT}`, { field: 'disk.partitions' });
  }
  if (bl.kind === 'extlinux' && plan.table !== 'mbr') {
    throw new BootStageError('EXTLINUX_GPT', 'extlinux is installed on MBR disks (set disk.table to mbr), or use grub on GPT', { field: 'bootloader.kind' });
  }
  if (bl.kind === 'grub' && fw !== 'uefi' && plan.table === 'gpt' && !plan.partitions.some((p) => p.kind === 'biosboot')) {
    throw new BootStageError('NO_BIOS_BOOT', 'GRUB on a GPT disk booted by BIOS needs a 1 MiB biosboot partition for core.img', { field: 'disk.partitions' });
  }
  const root = plan.root();
  const boot = plan.byMount('/boot');
  const givesConsole = bl.kernelArgs.some((a) => a.startsWith('console='));
  const bootPlan: BootPlan = {
    firmware: fw,
    biosLoader: bl.kind === 'extlinux' ? 'extlinux' : 'grub',
    uefiLoader: bl.kind === 'systemd-boot' ? 'systemd-boot' : 'grub',
    rootUuid: root.fsUuid!, rootFsType: root.kind,
    bootFsUuid: boot?.fsUuid,
    append: bl.kernelArgs,
    consoles: givesConsole ? [] : undefined,
    vendor: (await osId(tree)) ?? 'linux',
    mtime: ctx.epoch,
    bls: bl.bls,
  };
  const prepared = await planBoot(tree, bootPlan);
  const t = { sec: ctx.epoch, nsec: 0 };
  for (const f of prepared.espFiles) tree.addFile(`${ESP_MOUNT}${f.path}`, new BufferContent(f.data), { mode: 0o700, mtime: t });
  if (prepared.extlinux) prep.contiguous.push(`${prepared.extlinux.dir}/ldlinux.sys`);
  prep.prepared = prepared;
  return prep;
}

/** A path of the image as seen from the filesystem holding it. */
function inFs(plan: DiskPlan, path: string): string {
  const m = plan.holding(path).mount!;
  return m === '/' ? path : path.slice(m.length) || '/';
}

export async function finishBoot(disk: WrittenDisk, prep: BootPrep, plan: DiskPlan, tree: StagingTree): Promise<void> {
  const p = prep.prepared;
  if (!p) return;
  const bootPart = plan.holding('/boot/x');
  const placed = disk.placed.find((x) => x.plan === bootPart)!;
  const fs = disk.ext4.get(bootPart.mount!);
  const biosBoot = disk.placed.find((x) => x.plan.kind === 'biosboot');
  const firstStart = Math.min(...disk.placed.map((x) => x.start));
  await finishPlan(disk.target, p, {
    bootFs: {
      fsOffset: placed.start, fsSize: placed.size,
      fileBlocks: (path: string) => {
        const rel = path.startsWith('/') ? path : `/${path}`;
        const f = fs?.files[rel] ?? fs?.files[inFs(plan, rel)];
        if (!fs || !f) throw new BootStageError('NO_PLACEMENT', `the ext4 writer did not report where ${path} is`);
        return f.extents.map((e) => ({ offset: e.pblk * fs.blockSize, length: e.len * fs.blockSize }));
      },
    },
    bootPartitionIndex: placed.index - 1,
    grubCore: biosBoot ? { sector: biosBoot.start / 512, sectors: biosBoot.size / 512 } : { sector: 1, sectors: firstStart / 512 - 1 },
    tree,
  });
}
