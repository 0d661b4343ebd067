/**
 * What `ingot info` shows per partition: the table entry plus the
 * filesystem found inside (type, label, UUID as blkid spells them).
 * Probes read a few sectors only: the FAT boot sector and root directory,
 * the ext2/3/4 superblock (magic 0xEF53 at byte 1024+56).
 */
import type { ByteSource } from './target.js';
import { SubSource } from './subsource.js';
import { readPartitionTable, type PartitionInfo } from './table.js';
import { openFat } from '../fs/fat/reader.js';
import { IngotError } from '../errors.js';
import { PartitionTableError } from './errors.js';

export interface FsProbe { fs: string | null; label: string | null; fsUuid: string | null }

const EXT_SUPERBLOCK = 1024;
const EXT_MAGIC = 0xef53;
const EXT_FEATURE_INCOMPAT_EXTENTS = 0x40;
const EXT_FEATURE_INCOMPAT_64BIT = 0x80;
const EXT_FEATURE_COMPAT_HAS_JOURNAL = 0x4;
const SWAP_PAGE = 4096;
const SWAP_MAGIC = 'SWAPSPACE2';

function uuidText(b: Uint8Array): string {
  const h = Buffer.from(b).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** Identify the filesystem at the start of `src` (null fields when nothing is recognised). */
export async function probeFilesystem(src: ByteSource): Promise<FsProbe> {
  if (src.size >= EXT_SUPERBLOCK + 1024) {
    const sb = new Uint8Array(1024);
    await src.read(sb, EXT_SUPERBLOCK);
    const dv = new DataView(sb.buffer);
    if (dv.getUint16(56, true) === EXT_MAGIC) {
      const compat = dv.getUint32(92, true), incompat = dv.getUint32(96, true);
      // blkid's naming: extents or 64bit → ext4; a journal → ext3; else ext2.
      const fs = incompat & (EXT_FEATURE_INCOMPAT_EXTENTS | EXT_FEATURE_INCOMPAT_64BIT) ? 'ext4' : compat & EXT_FEATURE_COMPAT_HAS_JOURNAL ? 'ext3' : 'ext2';
      const label = Buffer.from(sb.subarray(120, 136)).toString('utf8').replace(/\0.*$/s, '');
      return { fs, label: label || null, fsUuid: uuidText(sb.subarray(104, 120)) };
    }
  }
  if (src.size >= SWAP_PAGE) {
    // Linux swap (mkswap): magic in the last bytes of the first page, swap_header_v1_2 at 1024.
    const page = new Uint8Array(SWAP_PAGE);
    await src.read(page, 0);
    if (Buffer.from(page.subarray(SWAP_PAGE - SWAP_MAGIC.length)).toString('latin1') === SWAP_MAGIC) {
      const label = Buffer.from(page.subarray(1052, 1068)).toString('utf8').replace(/\0.*$/s, '');
      return { fs: 'swap', label: label || null, fsUuid: uuidText(page.subarray(1036, 1052)) };
    }
  }
  try {
    const fat = await openFat(src);
    const info = await fat.info();
    return { fs: 'vfat', label: info.label ?? info.bootSectorLabel ?? null, fsUuid: info.uuid };
  } catch (e) {
    if (!(e instanceof IngotError)) throw e;
  }
  return { fs: null, label: null, fsUuid: null };
}

export interface DescribedPartition extends FsProbe {
  index: number; type: string; typeName: string | null; start: number; size: number; name: string | null; uuid: string | null;
}

/**
 * The partition table of `source` with a filesystem probe of each partition
 * — the shape `ingot info` reports (formats/info.ts `setPartitionReader`).
 * When no partition is found, the whole disk is probed as a bare filesystem
 * (`filesystem`): a FAT boot sector also reads as an empty MBR, as in sfdisk.
 */
export async function describePartitions(source: ByteSource): Promise<{
  table: 'gpt' | 'mbr' | null; partitions: DescribedPartition[]; filesystem?: FsProbe; warnings: string[];
}> {
  const t = await readPartitionTable(source);
  if (t.partitions.length === 0) {
    const whole = await probeFilesystem(source);
    return { table: t.type, partitions: [], ...(whole.fs ? { filesystem: whole } : {}), warnings: t.warnings };
  }
  const partitions: DescribedPartition[] = [];
  for (const p of t.partitions) {
    const inside = p.start + p.size <= source.size && !isContainer(p);
    partitions.push({
      index: p.index, type: p.type, typeName: p.typeName ?? null, start: p.start, size: p.size, name: p.name || null, uuid: p.uuid ?? null,
      ...(inside ? await probeFilesystem(new SubSource(source, p.start, p.size)) : { fs: null, label: null, fsUuid: null }),
    });
  }
  return { table: t.type, partitions, warnings: t.warnings };
}

function isContainer(p: PartitionInfo): boolean {
  return p.type === '5' || p.type === 'f' || p.type === '85' || p.type === 'ee';
}

/**
 * The window of partition `index` (as `ls`/`cat --partition N` name it), or
 * the whole source when `index` is undefined. Unknown index or a partition
 * passing the end of the disk → PartitionTableError.
 */
export async function openPartition(source: ByteSource, index?: number): Promise<{ source: ByteSource; partition?: PartitionInfo }> {
  if (index === undefined) return { source };
  const t = await readPartitionTable(source);
  const p = t.partitions.find((q) => q.index === index);
  if (!p) {
    throw new PartitionTableError('NO_SUCH_PARTITION', `no partition ${index}`, {
      expected: t.partitions.length ? `one of ${t.partitions.map((q) => q.index).join(', ')}` : 'a partitioned disk', actual: String(index),
    });
  }
  if (p.start + p.size > source.size) {
    throw new PartitionTableError('PARTITION_RANGE', `partition ${index} ends at ${p.start + p.size}, past the ${source.size}-byte disk`, { offset: p.start });
  }
  return { source: new SubSource(source, p.start, p.size), partition: p };
}
