/**
 * `inspect`: a disk image of any format described — format, sizes, backing
 * file, partition table, and each partition's filesystem, label and UUID as
 * blkid reports them — and access to a filesystem inside it for ls/cat.
 */
import { imageInfo, setPartitionReader, type ImageInfo, type PartitionInfo } from '../formats/info.js';
import { openImage, type OpenOptions, type DiskImage } from '../formats/index.js';
import { readPartitionTable } from './disk/table.js';
import { probeFilesystem } from './disk/probe.js';
import { SubTarget, type ByteSource, type BlockTarget } from './disk/target.js';
import { IngotError } from './errors.js';

export class InspectError extends IngotError {}

async function readPartitions(source: ByteSource): Promise<{ table: 'gpt' | 'mbr' | null; partitions: PartitionInfo[] }> {
  const t = await readPartitionTable(source);
  const partitions: PartitionInfo[] = [];
  for (const p of t.partitions) {
    const fs = p.size > 0 && p.start + p.size <= source.size ? await probeFilesystem(window(source, p.start, p.size)) : null;
    partitions.push({
      index: p.index, type: p.type, typeName: p.typeName ?? null, start: p.start, size: p.size, name: p.name ?? null,
      uuid: p.uuid ?? null, fs: fs?.fs ?? null, label: fs?.label ?? null, fsUuid: fs?.uuid ?? null,
    });
  }
  return { table: t.type, partitions };
}

/** A read-only window of a source (SubTarget's read side). */
export function window(source: ByteSource, offset: number, size: number): ByteSource {
  return new SubTarget(source as BlockTarget, offset, size);
}

setPartitionReader(readPartitions);

export async function inspect(path: string, opts: OpenOptions = {}): Promise<ImageInfo> {
  return imageInfo(path, opts);
}

/**
 * The filesystem source for ls/cat: partition N of the image, or — when no
 * partition is named — the only Linux filesystem, or the whole image when it
 * is a bare filesystem.
 */
export async function openFilesystemSource(path: string, partition?: number, opts: OpenOptions = {}): Promise<{ image: DiskImage; source: ByteSource; fs: string | null }> {
  const image = await openImage(path, opts);
  try {
    const whole = await probeFilesystem(image);
    if (partition === undefined && whole) return { image, source: image, fs: whole.fs };
    const { partitions } = await readPartitions(image);
    let p: PartitionInfo | undefined;
    if (partition !== undefined) {
      p = partitions.find((x) => x.index === partition);
      if (!p) throw new InspectError('NO_PARTITION', `${path} has no partition ${partition} (partitions: ${partitions.map((x) => x.index).join(', ') || 'none'})`, { file: path, field: 'partition' });
    } else {
      const candidates = partitions.filter((x) => x.fs && x.fs !== 'swap');
      p = candidates.find((x) => x.typeName?.startsWith('root')) ?? candidates.find((x) => x.fs?.startsWith('ext')) ?? candidates[0];
      if (!p) throw new InspectError('NO_FILESYSTEM', `${path} holds no filesystem ingot can read`, { file: path });
    }
    if (!p.fs) throw new InspectError('UNKNOWN_FILESYSTEM', `partition ${p.index} of ${path} holds no ext2/3/4 or FAT filesystem`, { file: path, offset: p.start });
    return { image, source: window(image, p.start, p.size), fs: p.fs };
  } catch (e) {
    await image.close();
    throw e;
  }
}
