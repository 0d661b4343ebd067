/**
 * `ingot info`: what an image is (format, sizes, backing file, format
 * details) and what it holds (partition table and partitions).
 */
import type { ByteSource } from '../src/disk/target.js';
import { allocatedBytes, openImage, type FormatName, type ImageDetails, type OpenOptions } from './index.js';

export interface PartitionInfo {
  index: number; type: string; typeName: string | null; start: number; size: number;
  name: string | null; uuid: string | null; fs: string | null; label: string | null; fsUuid: string | null;
}

export interface ImageInfo extends ImageDetails {
  format: FormatName;
  virtualSize: number;
  allocatedBytes: number;
  table: 'gpt' | 'mbr' | null;
  partitions: PartitionInfo[];
}

/**
 * Partition table reader. INTEGRATION POINT: once `src/disk/` (issue 4 items
 * 1-2) lands in main, this calls its `readPartitionTable(source)`; until
 * then no table is reported.
 */
export type PartitionReader = (source: ByteSource) => Promise<{ table: 'gpt' | 'mbr' | null; partitions: PartitionInfo[] }>;
let partitionReader: PartitionReader = async () => ({ table: null, partitions: [] });
export function setPartitionReader(r: PartitionReader): void { partitionReader = r; }

export async function imageInfo(path: string, opts: OpenOptions = {}): Promise<ImageInfo> {
  const img = await openImage(path, opts);
  try {
    const pt = await partitionReader(img);
    return {
      format: img.format, virtualSize: img.size, allocatedBytes: await allocatedBytes(img),
      ...img.details, table: pt.table, partitions: pt.partitions,
    };
  } finally {
    await img.close();
  }
}
