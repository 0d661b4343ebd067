/**
 * What filesystem a partition holds, from its superblock signature, as blkid
 * reports it: ext2/3/4 (superblock at 1024, magic 0xEF53), vfat (boot sector
 * BPB, FAT16 and FAT32 extended BPB), Linux swap ("SWAPSPACE2").
 */
import { Struct } from '../binary/struct.js';
import type { ByteSource } from './target.js';

export interface ProbedFs { fs: 'ext2' | 'ext3' | 'ext4' | 'vfat' | 'swap'; label: string | null; uuid: string | null }

const EXT_SUPERBLOCK_OFFSET = 1024;
const EXT_MAGIC = 0xef53;
/** The superblock fields blkid reads (ext4 disk layout, "The Super Block"). */
const ExtSuperblockId = new Struct('ext4_super_block (identity)', 256, {
  magic: { offset: 0x38, type: 'u16le' },
  featureCompat: { offset: 0x5c, type: 'u32le' },
  featureIncompat: { offset: 0x60, type: 'u32le' },
  uuid: { offset: 0x68, type: { bytes: 16 } },
  volumeName: { offset: 0x78, type: { ascii: 16 } },
});
const COMPAT_HAS_JOURNAL = 0x4;
/** Incompat features only ext4 has: extents, 64bit, flex_bg, mmp, inline_data, … (anything beyond filetype/recover/journal_dev/meta_bg). */
const EXT3_INCOMPAT = 0x2 | 0x4 | 0x8 | 0x10;

/** FAT boot sector: the two extended BPB layouts (Microsoft FAT spec §3.2, §3.3). */
const FatBootSector = new Struct('fat_boot_sector', 512, {
  bytesPerSector: { offset: 11, type: 'u16le' },
  fat16Serial: { offset: 39, type: 'u32le' },
  fat16Label: { offset: 43, type: { ascii: 11 } },
  fat16Type: { offset: 54, type: { ascii: 8 } },
  fat32Serial: { offset: 67, type: 'u32le' },
  fat32Label: { offset: 71, type: { ascii: 11 } },
  fat32Type: { offset: 82, type: { ascii: 8 } },
  signature: { offset: 510, type: 'u16le' },
});

const SWAP_MAGIC = 'SWAPSPACE2';

function uuidText(b: Uint8Array): string | null {
  if (b.every((x) => x === 0)) return null;
  const h = Buffer.from(b).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function fatSerial(n: number): string {
  const h = n.toString(16).toUpperCase().padStart(8, '0');
  return `${h.slice(0, 4)}-${h.slice(4)}`;
}

const trimLabel = (s: string): string | null => {
  const t = s.replace(/[\s\0]+$/, '');
  return t === '' || t === 'NO NAME' ? null : t;
};

export async function probeFilesystem(src: ByteSource): Promise<ProbedFs | null> {
  if (src.size < 4096) return null;
  const head = new Uint8Array(4096);
  await src.read(head, 0);
  const ext = ExtSuperblockId.decode(head, EXT_SUPERBLOCK_OFFSET);
  if (ext.magic === EXT_MAGIC) {
    const fs = ext.featureIncompat & ~EXT3_INCOMPAT ? 'ext4' : ext.featureCompat & COMPAT_HAS_JOURNAL ? 'ext3' : 'ext2';
    return { fs, label: trimLabel(ext.volumeName), uuid: uuidText(ext.uuid) };
  }
  if (Buffer.from(head.subarray(4096 - SWAP_MAGIC.length)).toString('latin1') === SWAP_MAGIC) {
    const label = Buffer.from(head.subarray(1052, 1068)).toString('utf8').replace(/\0.*$/s, '');
    return { fs: 'swap', label: label || null, uuid: uuidText(head.subarray(1036, 1052)) };
  }
  const bs = FatBootSector.decode(head, 0);
  if (bs.signature === 0xaa55 && [512, 1024, 2048, 4096].includes(bs.bytesPerSector)) {
    if (bs.fat32Type.startsWith('FAT32')) return { fs: 'vfat', label: trimLabel(bs.fat32Label), uuid: fatSerial(bs.fat32Serial) };
    if (bs.fat16Type.startsWith('FAT')) return { fs: 'vfat', label: trimLabel(bs.fat16Label), uuid: fatSerial(bs.fat16Serial) };
  }
  return null;
}

