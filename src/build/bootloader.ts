/**
 * Boot loader installation from the image's own packages: UEFI (GRUB EFI or
 * systemd-boot on the ESP), BIOS (extlinux on MBR, GRUB i386-pc), or both for
 * hybrid disks. Files go into the tree here; boot sectors are patched by the
 * `finish` step once the filesystems are written.
 */
import { BufferContent, type StagingTree } from '../tree/tree.js';
import type { ImageSpec } from '../spec/model.js';
import { extlinuxConf, extlinuxFromTree, installExtlinux, stageExtlinuxFiles } from '../boot/extlinux.js';
import { entryToken, grubEfiEsp, systemdBootEsp } from '../boot/uefi.js';
import { readTreeText } from '../install/treetext.js';
import type { DiskPlan, WrittenDisk } from './disk.js';
import { BootStageError, kernelCommandLine, type BootContext, type BootPrep } from './boot-stage.js';

const ESP_MOUNT = '/boot/efi';

async function osRelease(tree: StagingTree): Promise<Record<string, string>> {
  const text = (await readTreeText(tree, '/etc/os-release')) ?? (await readTreeText(tree, '/usr/lib/os-release')) ?? '';
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (m) out[m[1]!] = m[2]!.replace(/^"(.*)"$/, '$1');
  }
  return out;
}

/** A path of the image as seen from the filesystem holding it. */
function inFs(plan: DiskPlan, path: string): string {
  const m = plan.holding(path).mount!;
  return m === '/' ? path : path.slice(m.length) || '/';
}

/** Byte ranges of a contiguous-placed file in its filesystem, from the ext4 writer's report. */
function placement(disk: WrittenDisk, plan: DiskPlan, path: string): { ranges: { offset: number; length: number }[]; fsOffset: number; fsSize: number; partIndex: number } {
  const part = plan.holding(path);
  const written = disk.placed.find((p) => p.plan === part)!;
  const fs = disk.ext4.get(part.mount!);
  const rel = inFs(plan, path);
  const file = fs?.files[rel];
  if (!fs || !file) throw new BootStageError('NO_PLACEMENT', `the filesystem writer did not report where ${path} is`);
  return {
    ranges: file.extents.map((e) => ({ offset: e.pblk * fs.blockSize, length: e.len * fs.blockSize })),
    fsOffset: written.start, fsSize: written.size, partIndex: written.index - 1,
  };
}

export async function installBootloader(tree: StagingTree, spec: ImageSpec, plan: DiskPlan, _ctx: BootContext, prep: BootPrep): Promise<BootPrep> {
  const bl = spec.bootloader;
  const fw = bl.firmware;
  const kernel = prep.kernels[prep.kernels.length - 1]!;
  const cmdline = kernelCommandLine(spec, plan);
  const os = await osRelease(tree);
  const title = os.PRETTY_NAME ?? os.NAME ?? 'Linux';
  const bootFs = plan.holding(kernel.kernel);
  const finish: ((disk: WrittenDisk) => Promise<void>)[] = [];

  if (fw === 'uefi' || fw === 'hybrid') {
    if (!plan.byMount(ESP_MOUNT)) {
      throw new BootStageError('NO_ESP', `UEFI boot needs an EFI system partition mounted at ${ESP_MOUNT}`, { field: 'disk.partitions' });
    }
    let files;
    if (bl.kind === 'systemd-boot') {
      files = await systemdBootEsp(tree, { kernelVersion: kernel.version, kernel: kernel.kernel, initrd: kernel.initrd, cmdline, title, token: entryToken(os.ID) });
    } else if (bl.kind === 'grub') {
      files = await grubEfiEsp(tree, {
        bootFsUuid: bootFs.fsUuid!, kernel: inFs(plan, kernel.kernel), initrd: inFs(plan, kernel.initrd), cmdline, title,
        timeout: bl.timeout, vendor: os.ID ?? 'linux',
      });
    } else {
      throw new BootStageError('BOOTLOADER_FIRMWARE', `${bl.kind} cannot boot UEFI firmware: use grub or systemd-boot`, { field: 'bootloader.kind' });
    }
    const t = tree.defaultTime;
    for (const f of files) tree.addFile(`${ESP_MOUNT}${f.path}`, new BufferContent(f.data), { mode: 0o700, mtime: t });
  }

  if (fw === 'bios' || fw === 'hybrid') {
    if (bl.kind === 'extlinux') {
      if (plan.table !== 'mbr') {
        throw new BootStageError('EXTLINUX_GPT', 'extlinux is installed on MBR disks here (GPT needs gptmbr.bin and a legacy-bootable partition, not supported yet): set disk.table to mbr or use grub', { field: 'bootloader.kind' });
      }
      const { payload, mbr } = await extlinuxFromTree(tree);
      const dir = '/boot/extlinux';
      stageExtlinuxFiles(tree, payload, dir, extlinuxConf({
        kernel: inFs(plan, kernel.kernel), initrd: inFs(plan, kernel.initrd), append: cmdline, timeout: bl.timeout * 10,
      }));
      prep.contiguous.push(`${dir}/ldlinux.sys`);
      finish.push(async (disk) => {
        const p = placement(disk, plan, `${dir}/ldlinux.sys`);
        await installExtlinux(disk.target, { fileBlocks: () => p.ranges, fsOffset: p.fsOffset, fsSize: p.fsSize }, payload, mbr, {
          dirInFs: inFs(plan, dir), partitionIndex: p.partIndex,
        });
      });
    } else if (bl.kind === 'grub') {
      const { installGrubBios } = await import('./grub-bios.js');
      finish.push(...await installGrubBios(tree, spec, plan, { kernel: kernel.kernel, initrd: kernel.initrd, cmdline, title, bootFsUuid: bootFs.fsUuid!, inFs: (p) => inFs(plan, p) }));
    } else {
      throw new BootStageError('BOOTLOADER_FIRMWARE', `${bl.kind} cannot boot BIOS firmware: use extlinux or grub`, { field: 'bootloader.kind' });
    }
  }
  if (finish.length) prep.finish = async (disk) => { for (const f of finish) await f(disk); };
  return prep;
}
