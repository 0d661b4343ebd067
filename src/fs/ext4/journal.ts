/**
 * The internal jbd2 journal (Documentation/filesystems/ext4/journal.rst):
 * an empty, clean journal is inode 8 with contiguous blocks whose first
 * block is a v2 journal superblock with s_start = 0. The rest may read as
 * zeros (holes), since a clean journal is never replayed.
 */
import { JBD2_MAGIC_NUMBER, JBD2_SUPERBLOCK_V2, JournalSuperblock } from './structs.js';

/** Journal size in blocks for a filesystem of `blocks` blocks, as mke2fs chooses it (0: too small for one). */
export function defaultJournalBlocks(blocks: number): number {
  // The thresholds are block counts whatever the block size (e2fsprogs mkjournal.c behaviour).
  if (blocks < 2048) return 0;
  if (blocks < 32768) return 1024;
  if (blocks < 256 * 1024) return 4096;
  if (blocks < 512 * 1024) return 8192;
  if (blocks < 4096 * 1024) return 16384;
  if (blocks < 8192 * 1024) return 32768;
  if (blocks < 16384 * 1024) return 65536;
  if (blocks < 32768 * 1024) return 131072;
  return 262144;
}

export function journalSuperblock(blockSize: number, maxlen: number, uuid: Uint8Array): Uint8Array {
  const blk = new Uint8Array(blockSize);
  JournalSuperblock.encode({
    h_magic: JBD2_MAGIC_NUMBER, h_blocktype: JBD2_SUPERBLOCK_V2, h_sequence: 0,
    s_blocksize: blockSize, s_maxlen: maxlen, s_first: 1, s_sequence: 1, s_start: 0, s_errno: 0,
    s_feature_compat: 0, s_feature_incompat: 0, s_feature_ro_compat: 0,
    s_uuid: uuid, s_nr_users: 1,
  }, blk, 0);
  return blk;
}
