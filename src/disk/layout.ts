/**
 * The layout engine: turns partition requests (fixed sizes, percentages of
 * the disk, grow-to-fill) into aligned byte offsets, and finds the smallest
 * disk that holds a list of requests. Pure functions; no I/O.
 *
 * Space the table itself needs is kept free: GPT reserves LBA 0..33 and the
 * last 33 LBAs (UEFI spec §5.3, 128 entries of 128 bytes); MBR reserves LBA 0,
 * and each logical partition needs its EBR one alignment unit before it (as
 * fdisk places them).
 */
import { LayoutError } from './errors.js';

export const MiB = 1024 * 1024;
export const DEFAULT_ALIGNMENT = MiB;

export type TableKind = 'gpt' | 'mbr';

export interface PartitionRequest {
  /** Fixed size in bytes (rounded up to the sector size). */
  size?: number;
  /** Size as a percentage of the whole disk (rounded down to the alignment). */
  percent?: number;
  /** Take the space left after fixed and percentage partitions (shared equally among growers). */
  grow?: boolean;
  /** Lower bound for percent/grow partitions (bytes); also what `minimalDiskSize` gives a grower. */
  minSize?: number;
  /** Upper bound for percent/grow partitions (bytes). */
  maxSize?: number;
  /** Start alignment in bytes for this partition (defaults to the layout's). */
  align?: number;
  /** MBR only: place in the extended partition's logical chain. */
  logical?: boolean;
  /** Passed through to the table writer: type name/GUID/code, name, uuid, attributes, boot flag. */
  type?: string | number;
  name?: string;
  uuid?: string;
  attrs?: string[];
  bootable?: boolean;
  /** Free-form key for the caller (mount point, filesystem…). */
  id?: string;
}

export interface LayoutOptions {
  table: TableKind;
  /** Logical sector size (512 or 4096). */
  sectorSize?: number;
  /** Default start alignment in bytes (1 MiB). */
  alignment?: number;
  /** GPT entry count (128, the minimum the spec allows for 512-byte sectors). */
  gptEntries?: number;
}

export interface PlacedPartition extends PartitionRequest {
  /** 1-based index in the table (logical MBR partitions count from 5). */
  index: number;
  /** Byte offset of the first byte. */
  start: number;
  /** Size in bytes (a multiple of the sector size). */
  size: number;
}

export interface Layout {
  table: TableKind;
  sectorSize: number;
  diskSize: number;
  partitions: PlacedPartition[];
  /** Usable byte range [firstUsable, lastUsable) for partitions. */
  firstUsable: number;
  lastUsable: number;
}

interface Geometry { sectorSize: number; alignment: number; head: number; tail: number }

function geometry(opts: LayoutOptions): Geometry {
  const sectorSize = opts.sectorSize ?? 512;
  if (sectorSize !== 512 && sectorSize !== 4096) throw new LayoutError(`unsupported sector size ${sectorSize}`, { field: 'sectorSize' });
  const alignment = opts.alignment ?? DEFAULT_ALIGNMENT;
  if (!(alignment > 0) || alignment % sectorSize !== 0) {
    throw new LayoutError(`alignment ${alignment} is not a positive multiple of the ${sectorSize}-byte sector`, { field: 'alignment' });
  }
  if (opts.table === 'mbr') return { sectorSize, alignment, head: sectorSize, tail: 0 };
  const entryBytes = (opts.gptEntries ?? 128) * 128;
  const entrySectors = Math.ceil(entryBytes / sectorSize);
  return { sectorSize, alignment, head: (2 + entrySectors) * sectorSize, tail: (1 + entrySectors) * sectorSize };
}

const roundUp = (n: number, m: number) => Math.ceil(n / m) * m;
const roundDown = (n: number, m: number) => Math.floor(n / m) * m;

function validate(reqs: readonly PartitionRequest[], opts: LayoutOptions): void {
  const kinds = (r: PartitionRequest) => [r.size !== undefined, r.percent !== undefined, r.grow === true].filter(Boolean).length;
  reqs.forEach((r, i) => {
    const field = `partitions[${i}]`;
    if (kinds(r) !== 1) throw new LayoutError('give exactly one of size, percent, grow', { field });
    if (r.size !== undefined && !(Number.isSafeInteger(r.size) && r.size > 0)) throw new LayoutError(`bad size ${r.size}`, { field });
    if (r.percent !== undefined && !(r.percent > 0 && r.percent <= 100)) throw new LayoutError(`bad percentage ${r.percent}`, { field });
    if (r.align !== undefined && !(r.align > 0 && r.align % (opts.sectorSize ?? 512) === 0)) throw new LayoutError(`bad alignment ${r.align}`, { field });
    if (r.logical && opts.table !== 'mbr') throw new LayoutError('logical partitions exist only in MBR tables', { field });
  });
  const primaries = reqs.filter((r) => !r.logical).length + (reqs.some((r) => r.logical) ? 1 : 0);
  if (opts.table === 'mbr' && primaries > 4) throw new LayoutError(`an MBR holds 4 primary partitions, ${primaries} requested (use logical: true)`);
  const max = opts.table === 'gpt' ? opts.gptEntries ?? 128 : Infinity;
  if (reqs.length > max) throw new LayoutError(`${reqs.length} partitions exceed the ${max} GPT entries`);
  const logicalIdx = reqs.map((r) => !!r.logical);
  const firstLogical = logicalIdx.indexOf(true);
  if (firstLogical >= 0 && logicalIdx.slice(firstLogical).some((l) => !l)) {
    throw new LayoutError('logical partitions must come last (they share one extended partition)');
  }
}

/**
 * Place `reqs` in order on a disk of `diskSize` bytes. Throws LayoutError
 * when they do not fit.
 */
export function computeLayout(reqs: readonly PartitionRequest[], diskSize: number, opts: LayoutOptions): Layout {
  validate(reqs, opts);
  const g = geometry(opts);
  const diskBytes = roundDown(diskSize, g.sectorSize);
  const lastUsable = diskBytes - g.tail;
  const sizes = resolveSizes(reqs, diskBytes, lastUsable, g);
  const partitions: PlacedPartition[] = [];
  let cursor = g.head;
  let nextLogical = 5;
  reqs.forEach((r, i) => {
    const align = r.align ?? g.alignment;
    // A logical partition's EBR sits one alignment unit before it.
    const start = roundUp(cursor + (r.logical ? g.sectorSize : 0), align);
    const size = sizes[i]!;
    if (size <= 0) throw new LayoutError(`partition ${i + 1} gets no space on a ${diskSize}-byte disk`, { field: `partitions[${i}]` });
    if (start + size > lastUsable) {
      throw new LayoutError(`partition ${i + 1} (${size} bytes at ${start}) does not fit a ${diskSize}-byte disk`, {
        field: `partitions[${i}]`, expected: `end ≤ ${lastUsable}`, actual: String(start + size),
      });
    }
    const index = r.logical ? nextLogical++ : partitions.filter((p) => !p.logical).length + 1;
    partitions.push({ ...r, index, start, size });
    cursor = start + size;
  });
  return { table: opts.table, sectorSize: g.sectorSize, diskSize: diskBytes, partitions, firstUsable: g.head, lastUsable };
}

function resolveSizes(reqs: readonly PartitionRequest[], diskBytes: number, lastUsable: number, g: Geometry): number[] {
  const clamp = (r: PartitionRequest, n: number) => {
    let v = n;
    if (r.minSize !== undefined) v = Math.max(v, roundUp(r.minSize, g.sectorSize));
    if (r.maxSize !== undefined) v = Math.min(v, roundDown(r.maxSize, g.sectorSize));
    return v;
  };
  const sizes = reqs.map((r) => {
    if (r.size !== undefined) return roundUp(r.size, g.sectorSize);
    if (r.percent !== undefined) return clamp(r, roundDown((diskBytes * r.percent) / 100, g.alignment));
    return 0;
  });
  const growers = reqs.map((r, i) => (r.grow ? i : -1)).filter((i) => i >= 0);
  if (growers.length === 0) return sizes;
  // Free space = what remains after placing everything with growers at their minimum.
  const trial = sizes.map((s, i) => (reqs[i]!.grow ? clamp(reqs[i]!, 0) : s));
  const end = placeEnd(reqs, trial, g);
  let free = Math.max(0, lastUsable - end);
  let pending = growers.slice();
  // Growers share the free space equally in whole alignment units, so every
  // partition also ends aligned; one capped by maxSize leaves its rest to the others.
  for (let round = 0; round < growers.length && pending.length; round++) {
    const share = roundDown(free / pending.length, g.alignment);
    const next: number[] = [];
    let used = 0;
    for (const i of pending) {
      const want = trial[i]! + share;
      const got = clamp(reqs[i]!, want);
      used += got - trial[i]!;
      trial[i] = got;
      if (got === want) next.push(i);
    }
    free -= used;
    if (next.length === pending.length) break;
    pending = next;
  }
  // What equal shares leave over (less than one unit per grower) goes to the last uncapped grower.
  const lastFree = [...pending].reverse().find((i) => reqs[i]!.maxSize === undefined);
  if (lastFree !== undefined) trial[lastFree] = trial[lastFree]! + roundDown(Math.max(0, lastUsable - placeEnd(reqs, trial, g)), g.alignment);
  return trial;
}

/** End offset of the last partition when placed from the table head (or from `from`). */
function placeEnd(reqs: readonly PartitionRequest[], sizes: readonly number[], g: Geometry, from = g.head): number {
  let cursor = from;
  if (reqs.length === 0) return from === 0 ? 0 : cursor;
  reqs.forEach((r, i) => {
    const start = roundUp(cursor + (r.logical ? g.sectorSize : 0), r.align ?? g.alignment);
    cursor = start + sizes[i]!;
  });
  return cursor;
}

/**
 * The smallest disk (a multiple of the alignment) on which `reqs` fit, with
 * growers at their `minSize` (or one alignment unit) and percentages honoured.
 */
export function minimalDiskSize(reqs: readonly PartitionRequest[], opts: LayoutOptions): number {
  validate(reqs, opts);
  const g = geometry(opts);
  const base = reqs.map((r) => {
    if (r.size !== undefined) return roundUp(r.size, g.sectorSize);
    if (r.grow) return roundUp(Math.max(r.minSize ?? g.alignment, g.sectorSize), g.sectorSize);
    return roundUp(r.minSize ?? g.alignment, g.alignment);
  });
  const fixedEnd = placeEnd(reqs, base, g) + g.tail;
  const pct = reqs.reduce((s, r) => s + (r.percent ?? 0), 0);
  if (pct >= 100 && reqs.some((r) => r.percent === undefined)) throw new LayoutError(`percentages add up to ${pct}% with other partitions present`);
  // Percentage partitions scale with the disk: solve disk = rest + pct·disk, then step up until it fits.
  const nonPct = fixedEnd - reqs.reduce((s, r, i) => s + (r.percent !== undefined ? base[i]! : 0), 0);
  const fits = (size: number): boolean => {
    try {
      const l = computeLayout(reqs, size, opts);
      return l.partitions.every((p, i) => reqs[i]!.size !== undefined || p.size >= base[i]!);
    } catch (e) {
      if (e instanceof LayoutError) return false;
      throw e;
    }
  };
  let size = roundUp(pct > 0 ? Math.max(fixedEnd, nonPct / (1 - Math.min(pct, 99.999) / 100)) : fixedEnd, g.alignment);
  // Rounding percentages down can let a slightly smaller disk fit: look a little below, then upward.
  if (fits(size)) {
    for (let k = 0; k < 256 && size - g.alignment >= fixedEnd && fits(size - g.alignment); k++) size -= g.alignment;
    return size;
  }
  for (let step = 0; step < 100000; step++) {
    size += g.alignment;
    if (fits(size)) return size;
  }
  throw new LayoutError('could not find a disk size that holds the partitions');
}

const UNITS: Record<string, number> = {
  '': 1, b: 1, k: 1024, kb: 1000, kib: 1024, m: MiB, mb: 1e6, mib: MiB, g: 1024 * MiB, gb: 1e9, gib: 1024 * MiB,
  t: 1024 * 1024 * MiB, tb: 1e12, tib: 1024 * 1024 * MiB, s: 512,
};

/**
 * Parse a size as image definitions write it: `512M`, `1GiB`, `2048s`
 * (sectors), `50%`, `grow`/`*`. Returns the matching request fields.
 */
export function parseSize(text: string): Pick<PartitionRequest, 'size' | 'percent' | 'grow'> {
  const t = text.trim().toLowerCase();
  if (t === 'grow' || t === '*' || t === '+') return { grow: true };
  const pm = /^(\d+(?:\.\d+)?)\s*%$/.exec(t);
  if (pm) return { percent: Number(pm[1]) };
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/.exec(t);
  if (!m || !(m[2]! in UNITS)) throw new LayoutError(`cannot parse size ${JSON.stringify(text)}`, { expected: 'e.g. 512M, 1GiB, 50%, grow' });
  const size = Math.ceil(Number(m[1]) * UNITS[m[2]!]!);
  if (!(size > 0) || !Number.isSafeInteger(size)) throw new LayoutError(`size out of range: ${text}`);
  return { size };
}
