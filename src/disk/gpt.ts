/**
 * GUID Partition Table (UEFI spec 2.10 §5.3): protective MBR at LBA 0,
 * primary header at LBA 1 followed by the entry array, backup entry array
 * and backup header at the end of the disk. Header and entry-array CRC32s
 * make corruption detectable; the reader falls back to the backup header.
 */
import { Struct, type Decoded } from '../binary/struct.js';
import type { ByteSource } from './target.js';
import { crc32 } from './crc32.js';
import { PartitionTableError } from './errors.js';
import { encodeMbrSector } from './mbr.js';

export const GPT_SIGNATURE = 'EFI PART';
export const GPT_REVISION = 0x00010000;
export const GPT_HEADER_SIZE = 92;
export const GPT_ENTRY_SIZE = 128;
export const GPT_DEFAULT_ENTRIES = 128;
/** UEFI §5.3.2: at least 16,384 bytes are reserved for the entry array. */
export const GPT_MIN_ENTRY_ARRAY_BYTES = 16384;
/** Reader guard: entry arrays larger than this are refused (no unbounded allocation). */
export const GPT_MAX_ENTRY_ARRAY_BYTES = 4 * 1024 * 1024;
export const PROTECTIVE_MBR_TYPE = 0xee;
export const UNUSED_ENTRY_GUID = '00000000-0000-0000-0000-000000000000';

export const GptHeader = new Struct('GptHeader', GPT_HEADER_SIZE, {
  signature: { offset: 0, type: { bytes: 8 } },
  revision: { offset: 8, type: 'u32le' },
  headerSize: { offset: 12, type: 'u32le' },
  headerCrc32: { offset: 16, type: 'u32le' },
  reserved: { offset: 20, type: 'u32le' },
  myLba: { offset: 24, type: 'u64le' },
  alternateLba: { offset: 32, type: 'u64le' },
  firstUsableLba: { offset: 40, type: 'u64le' },
  lastUsableLba: { offset: 48, type: 'u64le' },
  diskGuid: { offset: 56, type: 'guid' },
  partitionEntryLba: { offset: 72, type: 'u64le' },
  numberOfPartitionEntries: { offset: 80, type: 'u32le' },
  sizeOfPartitionEntry: { offset: 84, type: 'u32le' },
  partitionEntryArrayCrc32: { offset: 88, type: 'u32le' },
});

export const GptPartitionEntry = new Struct('GptPartitionEntry', GPT_ENTRY_SIZE, {
  partitionTypeGuid: { offset: 0, type: 'guid' },
  uniquePartitionGuid: { offset: 16, type: 'guid' },
  startingLba: { offset: 32, type: 'u64le' },
  endingLba: { offset: 40, type: 'u64le' },
  attributes: { offset: 48, type: 'u64le' },
  partitionName: { offset: 56, type: { utf16le: 72 } },
});

export type GptHeaderFields = Decoded<typeof GptHeader['fields']>;

/**
 * Attribute bits: 0–2 from UEFI §5.3.3 Table 5.8; 59–63 are the
 * type-specific bits the Discoverable Partitions Specification assigns
 * (and Microsoft basic data uses 60/62/63 the same way).
 */
export const GPT_ATTRIBUTE_BITS: Readonly<Record<string, number>> = {
  'required': 0,
  'no-block-io': 1,
  'legacy-bios-bootable': 2,
  'grow-fs': 59,
  'read-only': 60,
  'shadow-copy': 61,
  'hidden': 62,
  'no-automount': 63,
};

const ATTR_NAME_BY_BIT = new Map(Object.entries(GPT_ATTRIBUTE_BITS).map(([k, v]) => [v, k]));

/** Attribute names (or `bit:N`) → the 64-bit field. */
export function encodeAttributes(names: readonly string[] | bigint | undefined): bigint {
  if (names === undefined) return 0n;
  if (typeof names === 'bigint') return names;
  let v = 0n;
  for (const n of names) {
    const key = n.toLowerCase();
    const m = /^(?:bit|guid):(\d+)$/.exec(key);
    const bit = m ? Number(m[1]) : GPT_ATTRIBUTE_BITS[key];
    if (bit === undefined || bit < 0 || bit > 63) {
      throw new PartitionTableError('GPT_BAD_ATTRIBUTE', `unknown GPT attribute ${JSON.stringify(n)}`, {
        expected: `${Object.keys(GPT_ATTRIBUTE_BITS).join(', ')} or bit:N`,
      });
    }
    v |= 1n << BigInt(bit);
  }
  return v;
}

export function decodeAttributes(v: bigint): string[] {
  const out: string[] = [];
  for (let b = 0; b < 64; b++) if ((v >> BigInt(b)) & 1n) out.push(ATTR_NAME_BY_BIT.get(b) ?? `bit:${b}`);
  return out;
}

export interface GptPartition {
  /** Slot in the entry array, 1-based. */
  index: number;
  typeGuid: string;
  uniqueGuid: string;
  firstLba: number;
  /** Inclusive, as in the entry. */
  lastLba: number;
  attributes: bigint;
  name: string;
}

export interface GptLayout {
  sectorSize: number;
  diskSectors: number;
  diskGuid: string;
  entryCount?: number;
  partitions: readonly GptPartition[];
  /** Bootstrap code for the protective MBR (e.g. GRUB's boot.img), ≤ 440 bytes. */
  bootCode?: Uint8Array;
  /** Set the active flag on the protective entry (some BIOSes refuse to boot otherwise). */
  pmbrBootable?: boolean;
}

export interface GptGeometry {
  entryCount: number;
  entrySectors: number;
  firstUsableLba: number;
  lastUsableLba: number;
  backupEntriesLba: number;
  backupHeaderLba: number;
}

export function gptGeometry(sectorSize: number, diskSectors: number, entryCount = GPT_DEFAULT_ENTRIES): GptGeometry {
  const entrySectors = Math.ceil(Math.max(entryCount * GPT_ENTRY_SIZE, GPT_MIN_ENTRY_ARRAY_BYTES) / sectorSize);
  const backupHeaderLba = diskSectors - 1;
  const backupEntriesLba = backupHeaderLba - entrySectors;
  return { entryCount, entrySectors, firstUsableLba: 2 + entrySectors, lastUsableLba: backupEntriesLba - 1, backupEntriesLba, backupHeaderLba };
}

function encodeEntries(l: GptLayout, g: GptGeometry): Uint8Array {
  const buf = new Uint8Array(g.entrySectors * l.sectorSize);
  const slots = new Set<number>();
  for (const p of l.partitions) {
    if (slots.has(p.index)) throw new PartitionTableError('GPT_BAD_INDEX', `partition index ${p.index} used twice`);
    slots.add(p.index);
    if (p.index < 1 || p.index > g.entryCount) throw new PartitionTableError('GPT_BAD_INDEX', `partition index ${p.index} outside 1..${g.entryCount}`);
    if (p.firstLba < g.firstUsableLba || p.lastLba > g.lastUsableLba || p.lastLba < p.firstLba) {
      throw new PartitionTableError('GPT_RANGE', `partition ${p.index} (LBA ${p.firstLba}..${p.lastLba}) is outside the usable LBAs ${g.firstUsableLba}..${g.lastUsableLba}`);
    }
    if (p.name.length > 36) throw new PartitionTableError('GPT_NAME_TOO_LONG', `partition name ${JSON.stringify(p.name)} exceeds 36 UTF-16 code units`);
    GptPartitionEntry.encode({
      partitionTypeGuid: p.typeGuid,
      uniquePartitionGuid: p.uniqueGuid,
      startingLba: BigInt(p.firstLba),
      endingLba: BigInt(p.lastLba),
      attributes: p.attributes,
      partitionName: p.name,
    }, buf, (p.index - 1) * GPT_ENTRY_SIZE);
  }
  const sorted = [...l.partitions].sort((a, b) => a.firstLba - b.firstLba);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i]!.firstLba <= sorted[i - 1]!.lastLba) {
      throw new PartitionTableError('GPT_OVERLAP', `partitions ${sorted[i - 1]!.index} and ${sorted[i]!.index} overlap`);
    }
  }
  return buf;
}

function encodeHeader(l: GptLayout, g: GptGeometry, entriesCrc: number, backup: boolean): Uint8Array {
  const sector = new Uint8Array(l.sectorSize);
  const fields: Partial<GptHeaderFields> = {
    signature: Buffer.from(GPT_SIGNATURE, 'latin1'),
    revision: GPT_REVISION,
    headerSize: GPT_HEADER_SIZE,
    headerCrc32: 0,
    myLba: BigInt(backup ? g.backupHeaderLba : 1),
    alternateLba: BigInt(backup ? 1 : g.backupHeaderLba),
    firstUsableLba: BigInt(g.firstUsableLba),
    lastUsableLba: BigInt(g.lastUsableLba),
    diskGuid: l.diskGuid,
    partitionEntryLba: BigInt(backup ? g.backupEntriesLba : 2),
    numberOfPartitionEntries: g.entryCount,
    sizeOfPartitionEntry: GPT_ENTRY_SIZE,
    partitionEntryArrayCrc32: entriesCrc,
  };
  GptHeader.encode(fields, sector);
  GptHeader.encode({ ...fields, headerCrc32: crc32(sector.subarray(0, GPT_HEADER_SIZE)) }, sector);
  return sector;
}

/** The protective MBR: one 0xEE record covering the disk (clamped to 2^32-1 sectors), UEFI §5.2.3. */
export function encodeProtectiveMbr(diskSectors: number, opts: { bootCode?: Uint8Array; bootable?: boolean } = {}): Uint8Array {
  return encodeMbrSector([{ type: PROTECTIVE_MBR_TYPE, startLba: 1, sectors: Math.min(diskSectors - 1, 0xffffffff), bootable: opts.bootable }], {
    bootCode: opts.bootCode,
  });
}

/** All sectors of a GPT disk's tables, as (byte offset, bytes) writes. */
export function encodeGpt(l: GptLayout): { offset: number; data: Uint8Array }[] {
  const g = gptGeometry(l.sectorSize, l.diskSectors, l.entryCount);
  if (g.lastUsableLba < g.firstUsableLba) throw new PartitionTableError('GPT_DISK_TOO_SMALL', `a ${l.diskSectors}-sector disk cannot hold a GPT`);
  const entries = encodeEntries(l, g);
  const entriesCrc = crc32(entries.subarray(0, g.entryCount * GPT_ENTRY_SIZE));
  const ss = l.sectorSize;
  const pmbr = new Uint8Array(ss);
  pmbr.set(encodeProtectiveMbr(l.diskSectors, { bootCode: l.bootCode, bootable: l.pmbrBootable }));
  return [
    { offset: 0, data: pmbr },
    { offset: ss, data: encodeHeader(l, g, entriesCrc, false) },
    { offset: 2 * ss, data: entries },
    { offset: g.backupEntriesLba * ss, data: entries },
    { offset: g.backupHeaderLba * ss, data: encodeHeader(l, g, entriesCrc, true) },
  ];
}

export interface GptReadResult {
  sectorSize: number;
  diskGuid: string;
  header: GptHeaderFields;
  /** Which header the partitions come from. */
  source: 'primary' | 'backup';
  partitions: GptPartition[];
  warnings: string[];
}

class HeaderProblem extends Error {
  constructor(message: string, readonly offset: number) { super(message); }
}

interface ValidHeader { header: GptHeaderFields; entries: Uint8Array }

async function readValidHeader(src: ByteSource, lba: number, ss: number, diskSectors: number): Promise<ValidHeader> {
  const at = lba * ss;
  if (lba < 1 || lba >= diskSectors) throw new HeaderProblem(`header LBA ${lba} is outside the ${diskSectors}-sector disk`, at);
  const sector = new Uint8Array(ss);
  await src.read(sector, at);
  const h = GptHeader.decode(sector, 0, { base: at });
  if (Buffer.from(h.signature).toString('latin1') !== GPT_SIGNATURE) throw new HeaderProblem('no "EFI PART" signature', at);
  if (h.headerSize < GPT_HEADER_SIZE || h.headerSize > ss) throw new HeaderProblem(`header size ${h.headerSize} outside ${GPT_HEADER_SIZE}..${ss}`, at + 12);
  const copy = sector.slice(0, h.headerSize);
  copy.fill(0, 16, 20);
  const crc = crc32(copy);
  if (crc !== h.headerCrc32) throw new HeaderProblem(`header CRC32 mismatch (stored 0x${h.headerCrc32.toString(16)}, computed 0x${crc.toString(16)})`, at + 16);
  if (h.myLba !== BigInt(lba)) throw new HeaderProblem(`header says it is at LBA ${h.myLba}, found at ${lba}`, at + 24);
  if (h.firstUsableLba > h.lastUsableLba || h.lastUsableLba >= BigInt(diskSectors)) {
    throw new HeaderProblem(`usable LBAs ${h.firstUsableLba}..${h.lastUsableLba} do not fit the ${diskSectors}-sector disk`, at + 40);
  }
  const esz = h.sizeOfPartitionEntry;
  if (esz < GPT_ENTRY_SIZE || esz % GPT_ENTRY_SIZE !== 0 || (esz & (esz - 1)) !== 0) throw new HeaderProblem(`partition entry size ${esz} is not 128·2^n`, at + 84);
  const bytes = h.numberOfPartitionEntries * esz;
  if (bytes > GPT_MAX_ENTRY_ARRAY_BYTES) throw new HeaderProblem(`entry array of ${bytes} bytes exceeds the ${GPT_MAX_ENTRY_ARRAY_BYTES}-byte limit`, at + 80);
  const entryLba = Number(h.partitionEntryLba);
  if (entryLba < 1 || entryLba * ss + bytes > diskSectors * ss) throw new HeaderProblem(`entry array at LBA ${entryLba} passes the end of the disk`, at + 72);
  const entries = new Uint8Array(bytes);
  await src.read(entries, entryLba * ss);
  const ecrc = crc32(entries);
  if (ecrc !== h.partitionEntryArrayCrc32) {
    throw new HeaderProblem(`partition entry array CRC32 mismatch (stored 0x${h.partitionEntryArrayCrc32.toString(16)}, computed 0x${ecrc.toString(16)})`, entryLba * ss);
  }
  return { header: h, entries };
}

/** Does LBA 1 at this sector size start with a GPT signature? (Used to detect 4096-byte-sector disks.) */
export async function hasGptSignatureAt(src: ByteSource, ss: number): Promise<boolean> {
  if (src.size < 2 * ss) return false;
  const sig = new Uint8Array(8);
  await src.read(sig, ss);
  return Buffer.from(sig).toString('latin1') === GPT_SIGNATURE;
}

/**
 * Read a GPT. The primary header is used when valid; otherwise the backup
 * (at the primary's alternate LBA if it can be trusted, else the last LBA),
 * with a warning. A damaged backup is reported while the primary is used.
 */
export async function readGpt(src: ByteSource, ss: number, file?: string): Promise<GptReadResult> {
  const diskSectors = Math.floor(src.size / ss);
  const warnings: string[] = [];
  let chosen: ValidHeader | undefined;
  let source: 'primary' | 'backup' = 'primary';
  let primaryProblem: HeaderProblem | undefined;
  try {
    chosen = await readValidHeader(src, 1, ss, diskSectors);
  } catch (e) {
    if (!(e instanceof HeaderProblem)) throw e;
    primaryProblem = e;
  }
  const lastLba = diskSectors - 1;
  if (chosen) {
    const alt = Number(chosen.header.alternateLba);
    if (alt !== lastLba) warnings.push(`backup GPT header location LBA ${alt} is not the last LBA ${lastLba}`);
    try {
      await readValidHeader(src, alt, ss, diskSectors);
    } catch (e) {
      if (!(e instanceof HeaderProblem)) throw e;
      warnings.push(`backup GPT is corrupt (${e.message} at offset ${e.offset}); the primary is used`);
    }
  } else {
    try {
      chosen = await readValidHeader(src, lastLba, ss, diskSectors);
      source = 'backup';
      warnings.push(`primary GPT is corrupt (${primaryProblem!.message} at offset ${primaryProblem!.offset}); the backup GPT is used`);
    } catch (e) {
      if (!(e instanceof HeaderProblem)) throw e;
      throw new PartitionTableError('GPT_CORRUPT', `both GPT headers are invalid: primary: ${primaryProblem!.message}; backup: ${e.message}`, {
        file, offset: primaryProblem!.offset,
      });
    }
  }
  const { header, entries } = chosen;
  const partitions: GptPartition[] = [];
  const esz = header.sizeOfPartitionEntry;
  for (let i = 0; i < header.numberOfPartitionEntries; i++) {
    const e = GptPartitionEntry.decode(entries, i * esz);
    if (e.partitionTypeGuid === UNUSED_ENTRY_GUID) continue;
    const p: GptPartition = {
      index: i + 1, typeGuid: e.partitionTypeGuid, uniqueGuid: e.uniquePartitionGuid,
      firstLba: Number(e.startingLba), lastLba: Number(e.endingLba), attributes: e.attributes, name: e.partitionName,
    };
    if (e.endingLba < e.startingLba || e.startingLba < header.firstUsableLba || e.endingLba > header.lastUsableLba) {
      warnings.push(`partition ${p.index} (LBA ${e.startingLba}..${e.endingLba}) lies outside the usable LBAs ${header.firstUsableLba}..${header.lastUsableLba}`);
    }
    partitions.push(p);
  }
  return { sectorSize: ss, diskGuid: header.diskGuid, header, source, partitions, warnings };
}
