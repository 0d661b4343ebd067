/**
 * On-disk structures of FAT12/16/32, from Microsoft's "FAT: General Overview
 * of On-Disk Format" (fatgen103): boot sector + BPB (§3.1–3.3), FSInfo (§5),
 * directory entries (§6) and long-name entries (VFAT, §7).
 */
import { Struct } from '../../binary/struct.js';

export const BOOT_SIGNATURE = 0xaa55;
export const FSINFO_LEAD_SIG = 0x41615252;
export const FSINFO_STRUC_SIG = 0x61417272;
export const FSINFO_TRAIL_SIG = 0xaa550000;
export const FSINFO_UNKNOWN = 0xffffffff;
export const EXT_BOOT_SIGNATURE = 0x29;
export const MEDIA_FIXED = 0xf8;
export const DIR_ENTRY_SIZE = 32;
/** A directory holds at most 65,536 entries (fatgen103 §6: 16-bit entry index). */
export const MAX_DIR_ENTRIES = 65536;
export const MAX_FILE_SIZE = 0xffffffff;

export const ATTR_READ_ONLY = 0x01;
export const ATTR_HIDDEN = 0x02;
export const ATTR_SYSTEM = 0x04;
export const ATTR_VOLUME_ID = 0x08;
export const ATTR_DIRECTORY = 0x10;
export const ATTR_ARCHIVE = 0x20;
export const ATTR_LONG_NAME = 0x0f;
export const LAST_LONG_ENTRY = 0x40;
export const DELETED_ENTRY = 0xe5;
/** A short name whose first byte is really 0xE5 stores 0x05 (fatgen103 §6). */
export const KANJI_E5 = 0x05;
/** NTRes bits Windows NT and Linux use for all-lower-case 8.3 names. */
export const NTRES_LOWER_BASE = 0x08;
export const NTRES_LOWER_EXT = 0x10;

/** BPB fields common to all FAT types (offsets 0–35). */
const common = {
  jmpBoot: { offset: 0, type: { bytes: 3 } },
  oemName: { offset: 3, type: { bytes: 8 } },
  bytsPerSec: { offset: 11, type: 'u16le' },
  secPerClus: { offset: 13, type: 'u8' },
  rsvdSecCnt: { offset: 14, type: 'u16le' },
  numFats: { offset: 16, type: 'u8' },
  rootEntCnt: { offset: 17, type: 'u16le' },
  totSec16: { offset: 19, type: 'u16le' },
  media: { offset: 21, type: 'u8' },
  fatSz16: { offset: 22, type: 'u16le' },
  secPerTrk: { offset: 24, type: 'u16le' },
  numHeads: { offset: 26, type: 'u16le' },
  hiddSec: { offset: 28, type: 'u32le' },
  totSec32: { offset: 32, type: 'u32le' },
  signature: { offset: 510, type: 'u16le' },
} as const;

export const BootSector16 = new Struct('FatBootSector16', 512, {
  ...common,
  drvNum: { offset: 36, type: 'u8' },
  reserved1: { offset: 37, type: 'u8' },
  bootSig: { offset: 38, type: 'u8' },
  volId: { offset: 39, type: 'u32le' },
  volLab: { offset: 43, type: { bytes: 11 } },
  filSysType: { offset: 54, type: { bytes: 8 } },
  bootCode: { offset: 62, type: { bytes: 448 } },
});

export const BootSector32 = new Struct('FatBootSector32', 512, {
  ...common,
  fatSz32: { offset: 36, type: 'u32le' },
  extFlags: { offset: 40, type: 'u16le' },
  fsVer: { offset: 42, type: 'u16le' },
  rootClus: { offset: 44, type: 'u32le' },
  fsInfo: { offset: 48, type: 'u16le' },
  bkBootSec: { offset: 50, type: 'u16le' },
  reserved: { offset: 52, type: { bytes: 12 } },
  drvNum: { offset: 64, type: 'u8' },
  reserved1: { offset: 65, type: 'u8' },
  bootSig: { offset: 66, type: 'u8' },
  volId: { offset: 67, type: 'u32le' },
  volLab: { offset: 71, type: { bytes: 11 } },
  filSysType: { offset: 82, type: { bytes: 8 } },
  bootCode: { offset: 90, type: { bytes: 420 } },
});

export const FsInfo = new Struct('FatFsInfo', 512, {
  leadSig: { offset: 0, type: 'u32le' },
  strucSig: { offset: 484, type: 'u32le' },
  freeCount: { offset: 488, type: 'u32le' },
  nxtFree: { offset: 492, type: 'u32le' },
  trailSig: { offset: 508, type: 'u32le' },
});

export const DirEntry = new Struct('FatDirEntry', DIR_ENTRY_SIZE, {
  name: { offset: 0, type: { bytes: 11 } },
  attr: { offset: 11, type: 'u8' },
  ntRes: { offset: 12, type: 'u8' },
  crtTimeTenth: { offset: 13, type: 'u8' },
  crtTime: { offset: 14, type: 'u16le' },
  crtDate: { offset: 16, type: 'u16le' },
  lstAccDate: { offset: 18, type: 'u16le' },
  fstClusHi: { offset: 20, type: 'u16le' },
  wrtTime: { offset: 22, type: 'u16le' },
  wrtDate: { offset: 24, type: 'u16le' },
  fstClusLo: { offset: 26, type: 'u16le' },
  fileSize: { offset: 28, type: 'u32le' },
});

export const LongNameEntry = new Struct('FatLongNameEntry', DIR_ENTRY_SIZE, {
  ord: { offset: 0, type: 'u8' },
  name1: { offset: 1, type: { bytes: 10 } },
  attr: { offset: 11, type: 'u8' },
  type: { offset: 12, type: 'u8' },
  chksum: { offset: 13, type: 'u8' },
  name2: { offset: 14, type: { bytes: 12 } },
  fstClusLo: { offset: 26, type: 'u16le' },
  name3: { offset: 28, type: { bytes: 4 } },
});

/** UTF-16 code units per long-name entry (5 + 6 + 2). */
export const LFN_CHARS_PER_ENTRY = 13;
export const LFN_MAX_CHARS = 255;
