/**
 * Volume geometry: FAT type, cluster size, reserved sectors, FAT size and
 * cluster count for a volume of a given size. The FAT type follows from the
 * cluster count alone (fatgen103 §3.5: < 4085 FAT12, < 65525 FAT16, else
 * FAT32); default cluster sizes are fatgen103's tables, and the automatic
 * choice is mkfs.fat's: FAT32 from 512 MiB up, FAT16 below.
 */
import { FatError } from './errors.js';
import { DIR_ENTRY_SIZE } from './structs.js';

export type FatType = 12 | 16 | 32;

export const FAT16_MIN_CLUSTERS = 4085;
export const FAT32_MIN_CLUSTERS = 65525;
/** Highest cluster number FAT32 can address is 0x0FFFFFF6; fatgen103 keeps clusters below 0x0FFFFFF5. */
export const FAT32_MAX_CLUSTERS = 0x0ffffff5 - 2;
export const FAT32_RESERVED_SECTORS = 32;
export const FAT32_BACKUP_BOOT_SECTOR = 6;
export const FAT32_FSINFO_SECTOR = 1;
export const DEFAULT_ROOT_ENTRIES = 512;
export const NUM_FATS = 2;

export interface FatGeometry {
  fatType: FatType;
  bytesPerSector: number;
  sectorsPerCluster: number;
  reservedSectors: number;
  numFats: number;
  /** FAT12/16 fixed root directory entries (0 on FAT32). */
  rootEntries: number;
  totalSectors: number;
  fatSectors: number;
  rootDirSectors: number;
  firstDataSector: number;
  clusterCount: number;
}

export interface GeometryOptions {
  fatType?: 16 | 32;
  /** Cluster size in bytes (power of two, sector size … 64 KiB). */
  clusterSize?: number;
  sectorSize?: number;
  /** FAT16: fixed root-directory entries (512). */
  rootEntries?: number;
}

/** fatgen103 "DskTableFAT16" / "DskTableFAT32": sectors per cluster by volume size in 512-byte sectors. */
function defaultSectorsPerCluster(fatType: 16 | 32, sectors512: number): number {
  const table: [number, number][] = fatType === 16
    ? [[32680, 2], [262144, 4], [524288, 8], [1048576, 16], [2097152, 32], [4194304, 64]]
    : [[532480, 1], [16777216, 8], [33554432, 16], [67108864, 32]];
  for (const [limit, spc] of table) if (sectors512 <= limit) return spc;
  return fatType === 16 ? 64 : 64;
}

function layoutWith(fatType: 16 | 32, totalSectors: number, bps: number, spc: number, rootEntries: number): FatGeometry {
  const rootDirSectors = fatType === 32 ? 0 : Math.ceil((rootEntries * DIR_ENTRY_SIZE) / bps);
  let reserved = fatType === 32 ? FAT32_RESERVED_SECTORS : 1;
  const entryBytes = fatType === 32 ? 4 : 2;
  // FAT size fixed point: enough entries for every data cluster plus the two reserved ones.
  let fatSectors = 1;
  for (let i = 0; i < 64; i++) {
    const clusters = Math.floor((totalSectors - reserved - rootDirSectors - NUM_FATS * fatSectors) / spc);
    const need = Math.ceil(((Math.max(clusters, 0) + 2) * entryBytes) / bps);
    if (need <= fatSectors) break;
    fatSectors = need;
  }
  // Start the data region on a cluster boundary (as mkfs.fat does) by padding the reserved area.
  const unaligned = (reserved + NUM_FATS * fatSectors + rootDirSectors) % spc;
  if (unaligned) reserved += spc - unaligned;
  const firstDataSector = reserved + NUM_FATS * fatSectors + rootDirSectors;
  const clusterCount = Math.floor((totalSectors - firstDataSector) / spc);
  return {
    fatType, bytesPerSector: bps, sectorsPerCluster: spc, reservedSectors: reserved, numFats: NUM_FATS,
    rootEntries: fatType === 32 ? 0 : rootEntries, totalSectors, fatSectors, rootDirSectors, firstDataSector, clusterCount,
  };
}

const fitsType = (g: FatGeometry): boolean => g.fatType === 16
  ? g.clusterCount >= FAT16_MIN_CLUSTERS && g.clusterCount < FAT32_MIN_CLUSTERS
  : g.clusterCount >= FAT32_MIN_CLUSTERS && g.clusterCount <= FAT32_MAX_CLUSTERS;

/** Geometry for a volume of `sizeBytes`. Throws FatError when no FAT16/FAT32 layout fits. */
export function chooseGeometry(sizeBytes: number, opts: GeometryOptions = {}): FatGeometry {
  const bps = opts.sectorSize ?? 512;
  if (![512, 1024, 2048, 4096].includes(bps)) throw new FatError('FAT_GEOMETRY', `unsupported sector size ${bps}`);
  const totalSectors = Math.floor(sizeBytes / bps);
  if (totalSectors > 0xffffffff) throw new FatError('FAT_GEOMETRY', `a FAT volume has at most 2^32-1 sectors; ${totalSectors} requested`);
  const rootEntries = opts.rootEntries ?? DEFAULT_ROOT_ENTRIES;
  const types: (16 | 32)[] = opts.fatType ? [opts.fatType] : sizeBytes >= 512 * 1024 * 1024 ? [32, 16] : [16, 32];
  if (opts.clusterSize !== undefined) {
    const cs = opts.clusterSize;
    if (cs < bps || cs > 65536 || (cs & (cs - 1)) !== 0) throw new FatError('FAT_GEOMETRY', `cluster size ${cs} must be a power of two from ${bps} to 65536`);
  }
  const tried: string[] = [];
  for (const t of types) {
    const spcs = opts.clusterSize !== undefined ? [opts.clusterSize / bps] : candidateSpcs(t, totalSectors, bps);
    for (const spc of spcs) {
      const g = layoutWith(t, totalSectors, bps, spc, rootEntries);
      if (fitsType(g)) return g;
      tried.push(`FAT${t} with ${spc * bps}-byte clusters: ${g.clusterCount} clusters`);
    }
  }
  throw new FatError('FAT_GEOMETRY', `no FAT${opts.fatType ?? '16/32'} layout fits ${sizeBytes} bytes (${tried.join('; ')})`, {
    expected: 'FAT16: 4085–65524 clusters, FAT32: ≥ 65525 clusters',
  });
}

/** The table's cluster size first, then the others nearest to it. */
function candidateSpcs(t: 16 | 32, totalSectors: number, bps: number): number[] {
  const first = Math.max(1, Math.round((defaultSectorsPerCluster(t, (totalSectors * bps) / 512) * 512) / bps));
  const all = [1, 2, 4, 8, 16, 32, 64, 128].filter((s) => s * bps <= 65536);
  return [first, ...all.filter((s) => s !== first).sort((a, b) => Math.abs(Math.log2(a / first)) - Math.abs(Math.log2(b / first)) || a - b)];
}
