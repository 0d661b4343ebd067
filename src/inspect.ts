/**
 * `inspect`: a disk image of any format described — format, sizes, backing
 * file, partition table, and each partition's filesystem, label and UUID as
 * blkid reports them — and access to a filesystem inside it for ls/cat.
 */
import { imageInfo, setPartitionReader, type ImageInfo, type PartitionInfo } from '../formats/info.js';
import { openImage, type OpenOptions, type DiskImage } from '../formats/index.js';
import { describePartitions, probeFilesystem } from './disk/probe.js';
import { SubSource } from './disk/subsource.js';
import type { ByteSource } from './disk/target.js';
import { IngotError } from './errors.js';

export class InspectError extends IngotError {}

async function readPartitions(source: ByteSource): Promise<{ table: 'gpt' | 'mbr' | null; partitions: PartitionInfo[] }> {
  const { table, partitions } = await describePartitions(source);
  return { table, partitions };
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
    if (partition === undefined && whole.fs) return { image, source: image, fs: whole.fs };
    const { partitions } = await readPartitions(image);
    let p: PartitionInfo | undefined;
    if (partition !== undefined) {
      p = partitions.find((x) => x.index === partition);
      if (!p) throw new InspectError('NO_PARTITION', `${path} has no partition ${partition} (partitions: ${partitions.map((x) => x.index).join(', ') || 'none'})`, { file: path, field: 'partition' });
    } else {
      const candidates = partitions.filter((x) => x.fs && x.fs !== 'swap');
      p = candidates.find((x) => x.typeName?.startsWith('root')) ?? candidates.find((x) => x.fs?.startsWith('ext')) ?? candidates[0];
      // No table and no recognised filesystem: hand back the whole image, the filesystem reader says what is wrong.
      if (!p && partitions.length === 0) return { image, source: image, fs: null };
      if (!p) throw new InspectError('NO_FILESYSTEM', `${path} holds no filesystem ingot can read`, { file: path });
    }
    if (!p.fs) throw new InspectError('UNKNOWN_FILESYSTEM', `partition ${p.index} of ${path} holds no ext2/3/4 or FAT filesystem`, { file: path, offset: p.start });
    return { image, source: new SubSource(image, p.start, p.size), fs: p.fs };
  } catch (e) {
    await image.close();
    throw e;
  }
}
