/**
 * The IBM PC master boot record: 440 bytes of bootstrap code, the disk
 * signature, four 16-byte partition entries and the 0x55AA signature; and the
 * chain of extended boot records (EBRs) that holds logical partitions.
 * Layout facts: UEFI spec §5.2.1 (legacy MBR) and the conventional EBR chain
 * (each EBR: entry 0 the logical partition relative to the EBR, entry 1 the
 * next EBR relative to the extended partition's start).
 */
import { Struct, type Decoded } from '../binary/struct.js';
import type { ByteSource } from './target.js';
import { PartitionTableError } from './errors.js';
import { MBR_EXTENDED_TYPES } from './types.js';

export const MBR_SIZE = 512;
export const MBR_BOOTSTRAP_SIZE = 440;
export const MBR_SIGNATURE = 0xaa55;
export const MBR_STATUS_ACTIVE = 0x80;
/** CHS value meaning "beyond what CHS can address" (cylinder 1023, head 254, sector 63). */
export const CHS_OVERFLOW = Uint8Array.of(0xfe, 0xff, 0xff);
/** Conventional translation geometry for CHS fields. */
export const CHS_HEADS = 255;
export const CHS_SECTORS = 63;
/** Guard on the logical-partition chain (Linux reads at most a few hundred). */
export const MAX_LOGICAL_PARTITIONS = 256;

export const MbrPartitionRecord = new Struct('MbrPartitionRecord', 16, {
  bootIndicator: { offset: 0, type: 'u8' },
  startingChs: { offset: 1, type: { bytes: 3 } },
  osType: { offset: 4, type: 'u8' },
  endingChs: { offset: 5, type: { bytes: 3 } },
  startingLba: { offset: 8, type: 'u32le' },
  sizeInLba: { offset: 12, type: 'u32le' },
});

export const LegacyMbr = new Struct('LegacyMbr', MBR_SIZE, {
  bootCode: { offset: 0, type: { bytes: MBR_BOOTSTRAP_SIZE } },
  uniqueMbrDiskSignature: { offset: 440, type: 'u32le' },
  unknown: { offset: 444, type: 'u16le' },
  partitionRecords: { offset: 446, type: { bytes: 64 } },
  signature: { offset: 510, type: 'u16le' },
});

export type MbrRecord = Decoded<typeof MbrPartitionRecord['fields']>;

/** One MBR partition in sectors. */
export interface MbrPartition {
  type: number;
  startLba: number;
  sectors: number;
  bootable?: boolean;
  /** EBR records hold relative LBAs; their CHS fields are absolute, computed from this LBA. */
  absoluteLba?: number;
}

/** CHS address of `lba` in the 255-head, 63-sector translation; 0xFEFFFF past cylinder 1023. */
export function lbaToChs(lba: number): Uint8Array {
  const c = Math.floor(lba / (CHS_HEADS * CHS_SECTORS));
  if (c > 1023) return CHS_OVERFLOW.slice();
  const h = Math.floor(lba / CHS_SECTORS) % CHS_HEADS;
  const s = (lba % CHS_SECTORS) + 1;
  return Uint8Array.of(h, s | ((c >> 2) & 0xc0), c & 0xff);
}

function record(p: MbrPartition | null): Partial<MbrRecord> {
  if (!p || p.type === 0) return {};
  if (!(p.startLba >= 0 && p.sectors > 0 && p.startLba + p.sectors <= 0x1_0000_0000)) {
    throw new PartitionTableError('MBR_RANGE', `partition at LBA ${p.startLba} of ${p.sectors} sectors is outside what MBR can address (2^32 sectors)`, {
      field: 'startingLba',
    });
  }
  const abs = p.absoluteLba ?? p.startLba;
  return {
    bootIndicator: p.bootable ? MBR_STATUS_ACTIVE : 0,
    startingChs: lbaToChs(abs),
    osType: p.type,
    endingChs: lbaToChs(abs + p.sectors - 1),
    startingLba: p.startLba,
    sizeInLba: p.sectors,
  };
}

/** Encode one 512-byte MBR or EBR sector. */
export function encodeMbrSector(records: readonly (MbrPartition | null)[], opts: { diskSignature?: number; bootCode?: Uint8Array } = {}): Uint8Array {
  if (records.length > 4) throw new PartitionTableError('MBR_TOO_MANY', `${records.length} records do not fit 4 slots`);
  if (opts.bootCode && opts.bootCode.length > MBR_BOOTSTRAP_SIZE) {
    throw new PartitionTableError('MBR_BOOT_CODE', `boot code of ${opts.bootCode.length} bytes exceeds the ${MBR_BOOTSTRAP_SIZE}-byte bootstrap area`);
  }
  const table = new Uint8Array(64);
  records.forEach((r, i) => MbrPartitionRecord.encode(record(r), table, i * 16));
  return LegacyMbr.encode({
    bootCode: opts.bootCode ?? new Uint8Array(0),
    uniqueMbrDiskSignature: (opts.diskSignature ?? 0) >>> 0,
    partitionRecords: table,
    signature: MBR_SIGNATURE,
  });
}

export interface MbrLayout {
  diskSignature: number;
  bootCode?: Uint8Array;
  /** Up to four primaries (null = empty slot). */
  primaries: readonly (MbrPartition | null)[];
  /** Logical partitions, in chain order; an extended partition is added in the first free slot. */
  logicals?: readonly MbrPartition[];
  /** Type of the extended container (0x05 default; 0x0F for LBA-only). */
  extendedType?: number;
}

/** A sector to write: LBA and its 512 bytes (positioned at lba × sectorSize). */
export interface SectorWrite { lba: number; data: Uint8Array }

/**
 * Encode an MBR and its EBR chain. Each EBR goes in the first sector after
 * the partition before its logical (the layout engine leaves that gap).
 */
export function encodeMbr(layout: MbrLayout): SectorWrite[] {
  const primaries: (MbrPartition | null)[] = [...layout.primaries];
  while (primaries.length < 4) primaries.push(null);
  if (primaries.length > 4) throw new PartitionTableError('MBR_TOO_MANY', `${primaries.length} primary partitions; an MBR has 4 slots`);
  const out: SectorWrite[] = [];
  const logicals = layout.logicals ?? [];
  const all = [...primaries, ...logicals].filter((p): p is MbrPartition => !!p && p.type !== 0).sort((a, b) => a.startLba - b.startLba);
  for (let i = 1; i < all.length; i++) {
    if (all[i]!.startLba < all[i - 1]!.startLba + all[i - 1]!.sectors) {
      throw new PartitionTableError('MBR_OVERLAP', `partitions at LBA ${all[i - 1]!.startLba} and ${all[i]!.startLba} overlap`);
    }
  }
  if (all.length && all[0]!.startLba < 1) throw new PartitionTableError('MBR_RANGE', 'a partition may not start at LBA 0 (the MBR)');
  if (logicals.length) {
    const slot = primaries.findIndex((p) => p === null || p.type === 0);
    if (slot < 0) throw new PartitionTableError('MBR_TOO_MANY', 'no free primary slot for the extended partition');
    const ends = primaries.filter((p): p is MbrPartition => !!p && p.type !== 0).map((p) => p.startLba + p.sectors);
    let prevEnd = Math.max(1, ...ends.filter((e) => e <= logicals[0]!.startLba));
    const ebrs: number[] = [];
    for (const [i, l] of logicals.entries()) {
      const ebr = prevEnd;
      if (ebr >= l.startLba) {
        throw new PartitionTableError('MBR_NO_EBR_ROOM', `no free sector before logical partition ${i + 5} (LBA ${l.startLba}) for its EBR`);
      }
      ebrs.push(ebr);
      prevEnd = l.startLba + l.sectors;
    }
    const extStart = ebrs[0]!;
    const last = logicals[logicals.length - 1]!;
    primaries[slot] = { type: layout.extendedType ?? 0x05, startLba: extStart, sectors: last.startLba + last.sectors - extStart };
    logicals.forEach((l, i) => {
      const next = i + 1 < logicals.length ? logicals[i + 1]! : undefined;
      const recs: (MbrPartition | null)[] = [{ ...l, startLba: l.startLba - ebrs[i]!, absoluteLba: l.startLba }];
      if (next) {
        recs.push({ type: 0x05, startLba: ebrs[i + 1]! - extStart, sectors: next.startLba + next.sectors - ebrs[i + 1]!, absoluteLba: ebrs[i + 1]! });
      }
      out.push({ lba: ebrs[i]!, data: encodeMbrSector(recs) });
    });
  }
  out.unshift({ lba: 0, data: encodeMbrSector(primaries, { diskSignature: layout.diskSignature, bootCode: layout.bootCode }) });
  return out;
}

export interface ReadMbrPartition extends MbrPartition {
  /** Slot number 1–4 for primaries, 5… for logicals in chain order (Linux numbering). */
  index: number;
  logical: boolean;
}

export interface MbrReadResult {
  diskSignature: number;
  partitions: ReadMbrPartition[];
  warnings: string[];
}

/** Decode the four records of an MBR/EBR sector; throws when the 0x55AA signature is absent. */
export function decodeMbrSector(sector: Uint8Array, ctx: { file?: string; base?: number } = {}): { diskSignature: number; records: MbrRecord[] } {
  const m = LegacyMbr.decode(sector, 0, ctx);
  if (m.signature !== MBR_SIGNATURE) {
    throw new PartitionTableError('MBR_BAD_SIGNATURE', 'no boot signature', {
      file: ctx.file, offset: (ctx.base ?? 0) + 510, field: 'signature', expected: '0xaa55', actual: `0x${m.signature.toString(16)}`,
    });
  }
  const records = [0, 1, 2, 3].map((i) => MbrPartitionRecord.decode(m.partitionRecords, i * 16));
  return { diskSignature: m.uniqueMbrDiskSignature, records };
}

/**
 * Read an MBR and follow the EBR chain of its extended partition. A chain
 * that leaves the disk or loops ends with a warning (as fdisk reports), never
 * an endless walk.
 */
export async function readMbr(src: ByteSource, sectorSize = 512, file?: string): Promise<MbrReadResult> {
  const sector = new Uint8Array(MBR_SIZE);
  await src.read(sector, 0);
  const { diskSignature, records } = decodeMbrSector(sector, { file });
  const warnings: string[] = [];
  const partitions: ReadMbrPartition[] = [];
  let extended: MbrRecord | undefined;
  records.forEach((r, i) => {
    if (r.osType === 0) return;
    partitions.push({ index: i + 1, logical: false, type: r.osType, startLba: r.startingLba, sectors: r.sizeInLba, bootable: r.bootIndicator === MBR_STATUS_ACTIVE });
    if (r.bootIndicator !== 0 && r.bootIndicator !== MBR_STATUS_ACTIVE) warnings.push(`partition ${i + 1}: invalid boot indicator 0x${r.bootIndicator.toString(16)}`);
    if (MBR_EXTENDED_TYPES.has(r.osType) && !extended) extended = r;
  });
  if (extended) partitions.push(...(await readLogicals(src, extended, sectorSize, warnings, file)));
  return { diskSignature, partitions, warnings };
}

async function readLogicals(src: ByteSource, ext: MbrRecord, ss: number, warnings: string[], file?: string): Promise<ReadMbrPartition[]> {
  const out: ReadMbrPartition[] = [];
  const extStart = ext.startingLba;
  const extEnd = extStart + ext.sizeInLba;
  const seen = new Set<number>();
  let ebr = extStart;
  const buf = new Uint8Array(MBR_SIZE);
  while (true) {
    if (seen.has(ebr)) { warnings.push(`extended partition chain loops at LBA ${ebr}; stopped`); break; }
    if (out.length >= MAX_LOGICAL_PARTITIONS) { warnings.push(`more than ${MAX_LOGICAL_PARTITIONS} logical partitions; stopped`); break; }
    if ((ebr + 1) * ss > src.size || ebr < extStart || ebr >= extEnd) {
      warnings.push(`failed to read extended partition table at LBA ${ebr} (outside the ${ebr >= extEnd || ebr < extStart ? 'extended partition' : 'disk'})`);
      break;
    }
    seen.add(ebr);
    await src.read(buf, ebr * ss);
    let decoded;
    try {
      decoded = decodeMbrSector(buf, { file, base: ebr * ss });
    } catch (e) {
      if (!(e instanceof PartitionTableError)) throw e;
      warnings.push(`EBR at LBA ${ebr} has no boot signature; chain ends`);
      break;
    }
    const [l, link] = decoded.records as [MbrRecord, MbrRecord];
    if (l.osType !== 0 && l.sizeInLba > 0) {
      out.push({
        index: 5 + out.length, logical: true, type: l.osType, startLba: ebr + l.startingLba, sectors: l.sizeInLba,
        bootable: l.bootIndicator === MBR_STATUS_ACTIVE,
      });
    }
    if (link.osType === 0 || link.startingLba === 0) break;
    ebr = extStart + link.startingLba;
  }
  return out;
}
