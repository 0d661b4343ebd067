/**
 * From the spec's partitions to a written sparse disk: identities (UUIDs,
 * serials) first — fstab, the boot loader and the initramfs need them before
 * any filesystem exists — then the subtrees of each mount point split off,
 * each filesystem sized from its content, the layout computed, the table and
 * the filesystems written into their windows of one sparse file.
 */
import { IngotError } from '../errors.js';
import { computeLayout, minimalDiskSize, writePartitionTable, seededGuid, seededU32, type PartitionRequest, type PlacedPartition } from '../disk/index.js';
import { SparseFileTarget, SubTarget } from '../disk/target.js';
import { prepareExt4, type PreparedExt4 } from '../fs/ext4/writer.js';
import type { Ext4Result } from '../fs/ext4/writer.js';
import { minimalFatSize, writeFat } from '../fs/fat/index.js';
import type { ContentStore } from '../tree/content-store.js';
import { StagingTree } from '../tree/tree.js';
import type { MountedFilesystem } from '../install/sysconfig.js';
import type { ImageSpec, Partition } from '../spec/model.js';
import { writeSwapHeader } from './swap.js';

export class DiskPlanError extends IngotError {}

const MiB = 1024 * 1024;

export type FsKind = 'ext4' | 'vfat' | 'swap' | 'biosboot';

export interface PlannedPartition {
  /** Position in the spec's partition list. */
  index: number;
  spec: Partition;
  kind: FsKind;
  mount?: string;
  /** Filesystem UUID as blkid shows it (FAT: XXXX-XXXX). */
  fsUuid?: string;
  fatSerial?: number;
  label?: string;
  /** Partition table type name or code. */
  partType: string;
  /** GPT unique partition GUID. */
  partUuid?: string;
}

export class DiskPlan {
  constructor(readonly table: 'gpt' | 'mbr', readonly partitions: PlannedPartition[], readonly size: number | undefined, readonly arch: string) {}

  /** What fstab lists: every mounted filesystem and swap. */
  filesystems(): MountedFilesystem[] {
    return this.partitions.filter((p) => p.mount || p.kind === 'swap').map((p) => ({
      mount: p.kind === 'swap' ? 'swap' : p.mount!, type: p.kind, uuid: p.fsUuid, label: p.label,
      options: p.spec.mountOptions,
    }));
  }

  byMount(mount: string): PlannedPartition | undefined {
    return this.partitions.find((p) => p.mount === mount);
  }

  root(): PlannedPartition { return this.byMount('/')!; }

  /** The partition holding `path` (longest mount-point prefix). */
  holding(path: string): PlannedPartition {
    let best = this.root();
    for (const p of this.partitions) {
      if (!p.mount || p.kind === 'swap') continue;
      if ((path === p.mount || path.startsWith(p.mount === '/' ? '/' : `${p.mount}/`)) && p.mount.length > (best.mount?.length ?? 0)) best = p;
    }
    return best;
  }
}

function rootType(arch: string): string {
  switch (arch) {
    case 'x86_64': return 'root-x86-64';
    case 'i686': case 'i386': return 'root-x86';
    case 'aarch64': return 'root-arm64';
    case 'ppc64le': return 'root-ppc64le';
    case 'riscv64': return 'root-riscv64';
    case 's390x': return 'root-s390x';
    default: return 'linux';
  }
}

function fatUuid(serial: number): string {
  const h = serial.toString(16).toUpperCase().padStart(8, '0');
  return `${h.slice(0, 4)}-${h.slice(4)}`;
}

export function planDisk(spec: ImageSpec, seed: string): DiskPlan {
  const table = spec.disk.table;
  const parts = spec.disk.partitions.map((p, index): PlannedPartition => {
    const kind: FsKind | undefined = p.fs === 'ext4' ? 'ext4' : p.fs === 'efi' || p.fs === 'vfat' ? 'vfat' : p.fs === 'swap' ? 'swap' : p.fs === 'biosboot' ? 'biosboot' : undefined;
    if (!kind) {
      throw new DiskPlanError('UNSUPPORTED_FS', `ingot writes ext4, vfat/efi, swap and biosboot partitions; ${p.fs} is not supported`, { field: `disk.partitions[${index}].fs`, actual: p.fs });
    }
    if (table === 'mbr' && kind === 'biosboot') {
      throw new DiskPlanError('BIOSBOOT_ON_MBR', 'a biosboot partition only exists on GPT (GRUB uses the gap after the MBR instead)', { field: `disk.partitions[${index}].fs` });
    }
    const out: PlannedPartition = { index, spec: p, kind, mount: p.mount?.startsWith('/') ? p.mount : undefined, label: p.label, partType: '' };
    if (p.type) out.partType = p.type;
    else if (table === 'gpt') {
      out.partType = kind === 'biosboot' ? 'bios-boot' : p.fs === 'efi' ? 'esp' : kind === 'swap' ? 'swap'
        : out.mount === '/' ? rootType(spec.arch) : out.mount === '/boot' ? 'xbootldr' : out.mount === '/home' ? 'home' : out.mount === '/srv' ? 'srv' : out.mount === '/var' ? 'var' : 'linux';
    } else {
      out.partType = p.fs === 'efi' ? 'efi' : kind === 'vfat' ? 'fat32-lba' : kind === 'swap' ? 'linux-swap' : 'linux';
    }
    if (table === 'gpt') out.partUuid = seededGuid(seed, `partition/${index}`);
    if (kind === 'ext4' || kind === 'swap') out.fsUuid = seededGuid(seed, `filesystem/${index}`).toLowerCase();
    if (kind === 'vfat') { out.fatSerial = seededU32(seed, `fat-serial/${index}`); out.fsUuid = fatUuid(out.fatSerial); }
    return out;
  });
  return new DiskPlan(table, parts, spec.disk.size, spec.arch);
}

export interface WrittenDisk {
  target: SparseFileTarget;
  closed: boolean;
  diskSize: number;
  partitions: { index: number; mount?: string; fs: string; start: number; size: number; uuid?: string; label?: string; partUuid?: string }[];
  placed: (PlacedPartition & { plan: PlannedPartition })[];
  /** ext4 results by mount point (contiguous-file placements for boot loaders). */
  ext4: Map<string, Ext4Result>;
}

export interface WriteDiskOptions {
  epoch: number;
  seed: string;
  /** Image paths that must be stored contiguously (boot loader stage files). */
  contiguous: string[];
  store: ContentStore;
  /** ext4 headroom over the content for automatically sized filesystems (fraction). */
  headroom?: number;
}

/** Split the tree by mount point, size each filesystem, lay out and write the disk at `rawPath`. */
export async function writeDisk(tree: StagingTree, plan: DiskPlan, rawPath: string, o: WriteDiskOptions): Promise<WrittenDisk> {
  // Deepest mount points first, so /boot/efi leaves /boot before /boot leaves /.
  const mounted = plan.partitions.filter((p) => p.mount && p.mount !== '/' && p.kind !== 'swap')
    .sort((a, b) => b.mount!.split('/').length - a.mount!.split('/').length);
  const trees = new Map<number, StagingTree>();
  for (const p of mounted) {
    tree.mkdirp(p.mount!);
    trees.set(p.index, tree.detach(p.mount!));
  }
  trees.set(plan.root().index, tree);

  const within = (p: PlannedPartition) => o.contiguous
    .filter((c) => plan.holding(c) === p)
    .map((c) => (p.mount === '/' ? c : c.slice(p.mount!.length) || '/'));

  const ext4Prepared = new Map<number, PreparedExt4>();
  const reqs: PartitionRequest[] = plan.partitions.map((p) => {
    let need = p.spec.size;
    const sub = trees.get(p.index);
    if (p.kind === 'ext4') {
      // One walk of the tree serves both the size plan and the write.
      const prepared = prepareExt4(sub ?? new StagingTree(), {
        uuid: p.fsUuid, label: p.label, seed: `${o.seed}/fs/${p.index}`, sourceDateEpoch: o.epoch, timestamp: o.epoch,
        contiguous: within(p), headroom: o.headroom ?? 0.2,
      });
      ext4Prepared.set(p.index, prepared);
      if (sub) need = prepared.plan('auto').bytes;
    } else if (p.kind === 'vfat' && sub) {
      need = minimalFatSize(sub, { label: p.label });
    }
    if (!p.spec.grow && need > p.spec.size) {
      throw new DiskPlanError('PARTITION_TOO_SMALL', `the ${p.mount ?? p.kind} partition needs ${Math.ceil(need / MiB)} MiB for its content but the spec gives it ${Math.floor(p.spec.size / MiB)} MiB`, { field: `disk.partitions[${p.index}].size`, expected: `≥ ${need} bytes`, actual: `${p.spec.size}` });
    }
    const size = Math.max(p.spec.size, need);
    const req: PartitionRequest = { type: p.partType, uuid: p.partUuid, name: p.label ?? p.mount ?? p.kind, id: String(p.index) };
    if (p.spec.grow) { req.grow = true; req.minSize = Math.ceil(size / MiB) * MiB; if (p.spec.maxSize) req.maxSize = p.spec.maxSize; }
    else req.size = Math.ceil(size / MiB) * MiB;
    if (plan.table === 'mbr' && p.mount === (plan.byMount('/boot') ? '/boot' : '/')) req.bootable = true;
    return req;
  });
  const min = minimalDiskSize(reqs, { table: plan.table });
  if (plan.size !== undefined && plan.size < min) {
    throw new DiskPlanError('DISK_TOO_SMALL', `the disk needs at least ${Math.ceil(min / MiB)} MiB for its partitions and content`, { field: 'disk.size', expected: `≥ ${min}`, actual: `${plan.size}` });
  }
  const layout = computeLayout(reqs, plan.size ?? min, { table: plan.table });
  const target = await SparseFileTarget.create(rawPath, layout.diskSize);
  try {
    await writePartitionTable(target, {
      type: plan.table, seed: o.seed,
      partitions: layout.partitions.map((l) => ({ start: l.start, size: l.size, type: l.type, name: plan.table === 'gpt' ? l.name : undefined, uuid: l.uuid, bootable: l.bootable, attrs: l.attrs })),
    });
    const placed = layout.partitions.map((l) => ({ ...l, plan: plan.partitions[Number(l.id)]! }));
    const ext4 = new Map<string, Ext4Result>();
    for (const l of placed) {
      const p = l.plan;
      const window = new SubTarget(target, l.start, l.size);
      const sub = trees.get(p.index);
      if (p.kind === 'ext4') {
        ext4.set(p.mount ?? `#${p.index}`, await ext4Prepared.get(p.index)!.write(window));
      } else if (p.kind === 'vfat') {
        await writeFat(window, sub ?? new StagingTree(), { label: p.label, serial: p.fatSerial, seed: `${o.seed}/fat/${p.index}`, hiddenSectors: l.start / 512, clampTime: o.epoch });
      } else if (p.kind === 'swap') {
        await writeSwapHeader(window, { uuid: p.fsUuid!, label: p.label });
      }
    }
    return {
      target, closed: false, diskSize: layout.diskSize, placed, ext4,
      partitions: placed.map((l) => ({ index: l.index, mount: l.plan.mount, fs: l.plan.kind, start: l.start, size: l.size, uuid: l.plan.fsUuid, label: l.plan.label, partUuid: l.plan.partUuid })),
    };
  } catch (e) {
    await target.close();
    throw e;
  }
}
