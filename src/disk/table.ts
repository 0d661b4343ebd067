/**
 * The partition-table API the builder and `info/ls/cat` use: write an MBR or
 * GPT from byte offsets (typically a {@link Layout}), and read either back
 * into one shape.
 */
import type { BlockTarget, ByteSource } from './target.js';
import { PartitionTableError } from './errors.js';
import { makeGuid, normalizeGuid, seededU32 } from './guid.js';
import { gptTypeGuid, gptTypeName, mbrTypeCode, mbrTypeName } from './types.js';
import { encodeMbr, readMbr, type MbrPartition } from './mbr.js';
import {
  decodeAttributes, encodeAttributes, encodeGpt, GPT_ATTRIBUTE_BITS, GPT_DEFAULT_ENTRIES, hasGptSignatureAt, PROTECTIVE_MBR_TYPE, readGpt, type GptPartition,
} from './gpt.js';
import { randomBytes } from 'node:crypto';

export type TableType = 'gpt' | 'mbr';

export interface TablePartition {
  /** Byte offset and size; both multiples of the sector size. */
  start: number;
  size: number;
  /** GPT: type name (see GPT_TYPES) or GUID, default `linux`. MBR: name, code or hex, default 0x83. */
  type?: string | number;
  /** GPT partition name (≤ 36 UTF-16 code units). */
  name?: string;
  /** GPT unique partition GUID; derived from the seed (or random) when absent. */
  uuid?: string;
  /** GPT attribute names (`legacy-bios-bootable`, `no-automount`, `read-only`, … or `bit:N`). */
  attrs?: string[];
  /** MBR active flag; on GPT sets `legacy-bios-bootable`. */
  bootable?: boolean;
  /** MBR: a logical partition inside the extended partition. */
  logical?: boolean;
  /** GPT entry slot (1-based); defaults to position in the list. */
  index?: number;
}

export interface PartitionTable {
  type: TableType;
  sectorSize?: number;
  partitions: readonly TablePartition[];
  /** GPT disk GUID; derived from the seed (or random) when absent. */
  diskGuid?: string;
  /** MBR disk signature; derived from the seed (or random) when absent. */
  diskSignature?: number;
  /** Seed for every GUID/signature not given: same seed → byte-identical tables. */
  seed?: string;
  /** Bootstrap code for (protective) MBR bytes 0..439 — a bootloader's first stage. */
  bootCode?: Uint8Array;
  /** GPT: active flag on the protective MBR record. */
  pmbrBootable?: boolean;
  /** GPT entry-array slots (128). */
  gptEntries?: number;
  /** MBR extended container type (0x05). */
  extendedType?: number;
}

export interface PartitionInfo {
  index: number;
  /** GPT: type GUID; MBR: type byte in hex without leading zeros, as sfdisk prints it. */
  type: string;
  typeName?: string;
  /** Bytes. */
  start: number;
  size: number;
  name?: string;
  /** GPT unique partition GUID; MBR: the PARTUUID Linux derives (`SSSSSSSS-NN`). */
  uuid?: string;
  attrs: string[];
  bootable: boolean;
  logical?: boolean;
}

export interface PartitionTableInfo {
  type: TableType | null;
  sectorSize: number;
  /** GPT disk GUID. */
  diskGuid?: string;
  /** sfdisk's label id: the GPT disk GUID or `0x`+MBR signature. */
  diskId?: string;
  partitions: PartitionInfo[];
  warnings: string[];
}

const sectorsOf = (bytes: number, ss: number, what: string): number => {
  if (bytes % ss !== 0 || bytes < 0) throw new PartitionTableError('TABLE_UNALIGNED', `${what} ${bytes} is not a multiple of the ${ss}-byte sector`);
  return bytes / ss;
};

/** Write the table's sectors to `target`. Returns what a reader will report. */
export async function writePartitionTable(target: BlockTarget, table: PartitionTable): Promise<PartitionTableInfo> {
  const ss = table.sectorSize ?? 512;
  if (ss !== 512 && ss !== 4096) throw new PartitionTableError('TABLE_SECTOR_SIZE', `unsupported sector size ${ss}`);
  const diskSectors = Math.floor(target.size / ss);
  for (const [i, p] of table.partitions.entries()) {
    if (p.start + p.size > diskSectors * ss) {
      throw new PartitionTableError('TABLE_RANGE', `partition ${i + 1} ends at ${p.start + p.size}, past the ${target.size}-byte disk`);
    }
  }
  if (table.type === 'gpt') {
    const parts = gptPartitions(table, ss);
    const diskGuid = table.diskGuid ? normalizeGuid(table.diskGuid) : makeGuid(table.seed, 'disk');
    for (const w of encodeGpt({
      sectorSize: ss, diskSectors, diskGuid, entryCount: table.gptEntries ?? GPT_DEFAULT_ENTRIES, partitions: parts,
      bootCode: table.bootCode, pmbrBootable: table.pmbrBootable,
    })) await target.write(w.data, w.offset);
    return { type: 'gpt', sectorSize: ss, diskGuid, diskId: diskGuid, partitions: parts.map((p) => gptInfo(p, ss)), warnings: [] };
  }
  const sig = table.diskSignature ?? (table.seed !== undefined ? seededU32(table.seed, 'mbr-signature') : randomBytes(4).readUInt32LE(0));
  const mbrParts = table.partitions.map((p, i): MbrPartition => {
    const type = mbrTypeCode(p.type ?? 0x83);
    if (type === undefined || type === 0) throw new PartitionTableError('MBR_BAD_TYPE', `partition ${i + 1}: unknown MBR type ${JSON.stringify(p.type)}`);
    return { type, startLba: sectorsOf(p.start, ss, 'start'), sectors: sectorsOf(p.size, ss, 'size'), bootable: p.bootable };
  });
  const primaries = mbrParts.filter((_, i) => !table.partitions[i]!.logical);
  const logicals = mbrParts.filter((_, i) => table.partitions[i]!.logical);
  for (const w of encodeMbr({ diskSignature: sig, bootCode: table.bootCode, primaries, logicals, extendedType: table.extendedType })) {
    await target.write(w.data, w.lba * ss);
  }
  return readPartitionTable(target, { sectorSize: ss });
}

function gptPartitions(table: PartitionTable, ss: number): GptPartition[] {
  return table.partitions.map((p, i) => {
    if (p.logical) throw new PartitionTableError('GPT_LOGICAL', `partition ${i + 1}: GPT has no logical partitions`);
    const typeGuid = gptTypeGuid(String(p.type ?? 'linux'));
    if (!typeGuid) throw new PartitionTableError('GPT_BAD_TYPE', `partition ${i + 1}: unknown GPT type ${JSON.stringify(p.type)}`);
    const index = p.index ?? i + 1;
    const firstLba = sectorsOf(p.start, ss, 'start');
    const attrs = [...(p.attrs ?? []), ...(p.bootable ? ['legacy-bios-bootable'] : [])];
    return {
      index, typeGuid, firstLba, lastLba: firstLba + sectorsOf(p.size, ss, 'size') - 1,
      uniqueGuid: p.uuid ? normalizeGuid(p.uuid) : makeGuid(table.seed, `partition:${index}`),
      attributes: encodeAttributes(attrs), name: p.name ?? '',
    };
  });
}

function gptInfo(p: GptPartition, ss: number): PartitionInfo {
  return {
    index: p.index, type: p.typeGuid, typeName: gptTypeName(p.typeGuid), start: p.firstLba * ss, size: (p.lastLba - p.firstLba + 1) * ss,
    name: p.name, uuid: p.uniqueGuid, attrs: decodeAttributes(p.attributes),
    bootable: (p.attributes & (1n << BigInt(GPT_ATTRIBUTE_BITS['legacy-bios-bootable']!))) !== 0n,
  };
}

/**
 * Read an MBR or GPT as sfdisk does: a protective (0xEE) record means GPT;
 * 512-byte sectors first, then 4096 when the GPT header is found there.
 * Returns `type: null` for a disk with neither.
 */
export async function readPartitionTable(source: ByteSource, opts: { sectorSize?: number; file?: string } = {}): Promise<PartitionTableInfo> {
  const file = opts.file;
  if (source.size < 512) return { type: null, sectorSize: opts.sectorSize ?? 512, partitions: [], warnings: [] };
  let mbr;
  try {
    mbr = await readMbr(source, opts.sectorSize ?? 512, file);
  } catch (e) {
    if (e instanceof PartitionTableError && e.code === 'MBR_BAD_SIGNATURE') {
      const warnings = (await hasGptSignatureAt(source, 512)) ? ['a GPT header exists but there is no protective MBR; not read as GPT'] : [];
      return { type: null, sectorSize: opts.sectorSize ?? 512, partitions: [], warnings };
    }
    throw e;
  }
  if (mbr.partitions.some((p) => p.type === PROTECTIVE_MBR_TYPE && !p.logical)) {
    let ss = opts.sectorSize;
    if (ss === undefined) ss = (await hasGptSignatureAt(source, 512)) ? 512 : (await hasGptSignatureAt(source, 4096)) ? 4096 : 512;
    // Both GPT headers invalid → PartitionTableError GPT_CORRUPT (never a guess from the protective MBR).
    const g = await readGpt(source, ss, file);
    return { type: 'gpt', sectorSize: ss, diskGuid: g.diskGuid, diskId: g.diskGuid, partitions: g.partitions.map((p) => gptInfo(p, ss)), warnings: g.warnings };
  }
  const ss = opts.sectorSize ?? 512;
  const sigHex = mbr.diskSignature.toString(16).padStart(8, '0');
  return {
    type: 'mbr', sectorSize: ss, diskId: `0x${sigHex}`, warnings: mbr.warnings,
    partitions: mbr.partitions.map((p) => ({
      index: p.index, type: p.type.toString(16), typeName: mbrTypeName(p.type), start: p.startLba * ss, size: p.sectors * ss,
      uuid: `${sigHex}-${p.index.toString(16).padStart(2, '0')}`, attrs: [], bootable: !!p.bootable, logical: p.logical,
    })),
  };
}
