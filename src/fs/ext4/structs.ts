/**
 * ext4 on-disk structures as field tables, with the constants named as in
 * the kernel's Documentation/filesystems/ext4 (ondisk/*.rst) and e2fsprogs'
 * ext2_fs.h. Everything is little-endian except the jbd2 journal (big-endian).
 */
import { Struct } from '../../binary/struct.js';

export const EXT4_SUPER_MAGIC = 0xef53;
export const SUPERBLOCK_OFFSET = 1024;
export const SUPERBLOCK_SIZE = 1024;

// s_feature_compat
export const COMPAT_DIR_PREALLOC = 0x1;
export const COMPAT_IMAGIC_INODES = 0x2;
export const COMPAT_HAS_JOURNAL = 0x4;
export const COMPAT_EXT_ATTR = 0x8;
export const COMPAT_RESIZE_INODE = 0x10;
export const COMPAT_DIR_INDEX = 0x20;
export const COMPAT_SPARSE_SUPER2 = 0x200;
// s_feature_incompat
export const INCOMPAT_COMPRESSION = 0x1;
export const INCOMPAT_FILETYPE = 0x2;
export const INCOMPAT_RECOVER = 0x4;
export const INCOMPAT_JOURNAL_DEV = 0x8;
export const INCOMPAT_META_BG = 0x10;
export const INCOMPAT_EXTENTS = 0x40;
export const INCOMPAT_64BIT = 0x80;
export const INCOMPAT_MMP = 0x100;
export const INCOMPAT_FLEX_BG = 0x200;
export const INCOMPAT_EA_INODE = 0x400;
export const INCOMPAT_DIRDATA = 0x1000;
export const INCOMPAT_CSUM_SEED = 0x2000;
export const INCOMPAT_LARGEDIR = 0x4000;
export const INCOMPAT_INLINE_DATA = 0x8000;
export const INCOMPAT_ENCRYPT = 0x10000;
export const INCOMPAT_CASEFOLD = 0x20000;
// s_feature_ro_compat
export const RO_COMPAT_SPARSE_SUPER = 0x1;
export const RO_COMPAT_LARGE_FILE = 0x2;
export const RO_COMPAT_BTREE_DIR = 0x4;
export const RO_COMPAT_HUGE_FILE = 0x8;
export const RO_COMPAT_GDT_CSUM = 0x10;
export const RO_COMPAT_DIR_NLINK = 0x20;
export const RO_COMPAT_EXTRA_ISIZE = 0x40;
export const RO_COMPAT_QUOTA = 0x100;
export const RO_COMPAT_BIGALLOC = 0x200;
export const RO_COMPAT_METADATA_CSUM = 0x400;

// s_flags
export const EXT2_FLAGS_SIGNED_HASH = 0x1;
export const EXT2_FLAGS_UNSIGNED_HASH = 0x2;

// s_def_hash_version / dx_root_info.hash_version
export const DX_HASH_LEGACY = 0;
export const DX_HASH_HALF_MD4 = 1;
export const DX_HASH_TEA = 2;
export const DX_HASH_LEGACY_UNSIGNED = 3;
export const DX_HASH_HALF_MD4_UNSIGNED = 4;
export const DX_HASH_TEA_UNSIGNED = 5;

// bg_flags
export const EXT4_BG_INODE_UNINIT = 0x1;
export const EXT4_BG_BLOCK_UNINIT = 0x2;
export const EXT4_BG_INODE_ZEROED = 0x4;

// Special inode numbers
export const EXT4_BAD_INO = 1;
export const EXT4_ROOT_INO = 2;
export const EXT4_RESIZE_INO = 7;
export const EXT4_JOURNAL_INO = 8;
export const EXT4_GOOD_OLD_FIRST_INO = 11;
export const EXT4_GOOD_OLD_INODE_SIZE = 128;

// i_mode file types (S_IF*)
export const S_IFIFO = 0x1000;
export const S_IFCHR = 0x2000;
export const S_IFDIR = 0x4000;
export const S_IFBLK = 0x6000;
export const S_IFREG = 0x8000;
export const S_IFLNK = 0xa000;
export const S_IFSOCK = 0xc000;
export const S_IFMT = 0xf000;

// i_flags
export const EXT4_SECRM_FL = 0x1;
export const EXT4_INDEX_FL = 0x1000;
export const EXT4_HUGE_FILE_FL = 0x40000;
export const EXT4_EXTENTS_FL = 0x80000;
export const EXT4_EA_INODE_FL = 0x200000;
export const EXT4_INLINE_DATA_FL = 0x10000000;

// Directory entry file_type
export const FT_UNKNOWN = 0;
export const FT_REG_FILE = 1;
export const FT_DIR = 2;
export const FT_CHRDEV = 3;
export const FT_BLKDEV = 4;
export const FT_FIFO = 5;
export const FT_SOCK = 6;
export const FT_SYMLINK = 7;
/** file_type of the metadata_csum dirent tail ("fake" entry at the end of each leaf block). */
export const FT_DIR_CSUM = 0xde;

export const EXT4_NAME_LEN = 255;
export const EXT4_EXT_MAGIC = 0xf30a;
/** An extent longer than this is "unwritten" (preallocated); the length is then len - 32768. */
export const EXT_INIT_MAX_LEN = 32768;
export const EXT4_XATTR_MAGIC = 0xea020000;
export const JBD2_MAGIC_NUMBER = 0xc03b3998;
export const JBD2_SUPERBLOCK_V2 = 4;

export const Superblock = new Struct('Superblock', 1024, {
  s_inodes_count: { offset: 0x0, type: 'u32le' },
  s_blocks_count_lo: { offset: 0x4, type: 'u32le' },
  s_r_blocks_count_lo: { offset: 0x8, type: 'u32le' },
  s_free_blocks_count_lo: { offset: 0xc, type: 'u32le' },
  s_free_inodes_count: { offset: 0x10, type: 'u32le' },
  s_first_data_block: { offset: 0x14, type: 'u32le' },
  s_log_block_size: { offset: 0x18, type: 'u32le' },
  s_log_cluster_size: { offset: 0x1c, type: 'u32le' },
  s_blocks_per_group: { offset: 0x20, type: 'u32le' },
  s_clusters_per_group: { offset: 0x24, type: 'u32le' },
  s_inodes_per_group: { offset: 0x28, type: 'u32le' },
  s_mtime: { offset: 0x2c, type: 'u32le' },
  s_wtime: { offset: 0x30, type: 'u32le' },
  s_mnt_count: { offset: 0x34, type: 'u16le' },
  s_max_mnt_count: { offset: 0x36, type: 'u16le' },
  s_magic: { offset: 0x38, type: 'u16le' },
  s_state: { offset: 0x3a, type: 'u16le' },
  s_errors: { offset: 0x3c, type: 'u16le' },
  s_minor_rev_level: { offset: 0x3e, type: 'u16le' },
  s_lastcheck: { offset: 0x40, type: 'u32le' },
  s_checkinterval: { offset: 0x44, type: 'u32le' },
  s_creator_os: { offset: 0x48, type: 'u32le' },
  s_rev_level: { offset: 0x4c, type: 'u32le' },
  s_def_resuid: { offset: 0x50, type: 'u16le' },
  s_def_resgid: { offset: 0x52, type: 'u16le' },
  s_first_ino: { offset: 0x54, type: 'u32le' },
  s_inode_size: { offset: 0x58, type: 'u16le' },
  s_block_group_nr: { offset: 0x5a, type: 'u16le' },
  s_feature_compat: { offset: 0x5c, type: 'u32le' },
  s_feature_incompat: { offset: 0x60, type: 'u32le' },
  s_feature_ro_compat: { offset: 0x64, type: 'u32le' },
  s_uuid: { offset: 0x68, type: { bytes: 16 } },
  s_volume_name: { offset: 0x78, type: { bytes: 16 } },
  s_last_mounted: { offset: 0x88, type: { bytes: 64 } },
  s_algorithm_usage_bitmap: { offset: 0xc8, type: 'u32le' },
  s_prealloc_blocks: { offset: 0xcc, type: 'u8' },
  s_prealloc_dir_blocks: { offset: 0xcd, type: 'u8' },
  s_reserved_gdt_blocks: { offset: 0xce, type: 'u16le' },
  s_journal_uuid: { offset: 0xd0, type: { bytes: 16 } },
  s_journal_inum: { offset: 0xe0, type: 'u32le' },
  s_journal_dev: { offset: 0xe4, type: 'u32le' },
  s_last_orphan: { offset: 0xe8, type: 'u32le' },
  s_hash_seed: { offset: 0xec, type: { bytes: 16 } },
  s_def_hash_version: { offset: 0xfc, type: 'u8' },
  s_jnl_backup_type: { offset: 0xfd, type: 'u8' },
  s_desc_size: { offset: 0xfe, type: 'u16le' },
  s_default_mount_opts: { offset: 0x100, type: 'u32le' },
  s_first_meta_bg: { offset: 0x104, type: 'u32le' },
  s_mkfs_time: { offset: 0x108, type: 'u32le' },
  s_jnl_blocks: { offset: 0x10c, type: { bytes: 68 } },
  s_blocks_count_hi: { offset: 0x150, type: 'u32le' },
  s_r_blocks_count_hi: { offset: 0x154, type: 'u32le' },
  s_free_blocks_count_hi: { offset: 0x158, type: 'u32le' },
  s_min_extra_isize: { offset: 0x15c, type: 'u16le' },
  s_want_extra_isize: { offset: 0x15e, type: 'u16le' },
  s_flags: { offset: 0x160, type: 'u32le' },
  s_raid_stride: { offset: 0x164, type: 'u16le' },
  s_mmp_interval: { offset: 0x166, type: 'u16le' },
  s_mmp_block: { offset: 0x168, type: 'u64le' },
  s_raid_stripe_width: { offset: 0x170, type: 'u32le' },
  s_log_groups_per_flex: { offset: 0x174, type: 'u8' },
  s_checksum_type: { offset: 0x175, type: 'u8' },
  s_kbytes_written: { offset: 0x178, type: 'u64le' },
  s_error_count: { offset: 0x194, type: 'u32le' },
  s_overhead_clusters: { offset: 0x248, type: 'u32le' },
  s_lpf_ino: { offset: 0x268, type: 'u32le' },
  s_checksum_seed: { offset: 0x270, type: 'u32le' },
  s_wtime_hi: { offset: 0x274, type: 'u8' },
  s_mtime_hi: { offset: 0x275, type: 'u8' },
  s_mkfs_time_hi: { offset: 0x276, type: 'u8' },
  s_lastcheck_hi: { offset: 0x277, type: 'u8' },
  s_encoding: { offset: 0x27c, type: 'u16le' },
  s_checksum: { offset: 0x3fc, type: 'u32le' },
});
export type SuperblockFields = ReturnType<typeof Superblock.decode>;

/** ext4_group_desc; the first 32 bytes are the whole descriptor without 64bit. */
export const GroupDescriptor32 = new Struct('GroupDescriptor', 32, {
  bg_block_bitmap_lo: { offset: 0x0, type: 'u32le' },
  bg_inode_bitmap_lo: { offset: 0x4, type: 'u32le' },
  bg_inode_table_lo: { offset: 0x8, type: 'u32le' },
  bg_free_blocks_count_lo: { offset: 0xc, type: 'u16le' },
  bg_free_inodes_count_lo: { offset: 0xe, type: 'u16le' },
  bg_used_dirs_count_lo: { offset: 0x10, type: 'u16le' },
  bg_flags: { offset: 0x12, type: 'u16le' },
  bg_exclude_bitmap_lo: { offset: 0x14, type: 'u32le' },
  bg_block_bitmap_csum_lo: { offset: 0x18, type: 'u16le' },
  bg_inode_bitmap_csum_lo: { offset: 0x1a, type: 'u16le' },
  bg_itable_unused_lo: { offset: 0x1c, type: 'u16le' },
  bg_checksum: { offset: 0x1e, type: 'u16le' },
});
export const GroupDescriptor64 = new Struct('GroupDescriptor64', 64, {
  ...GroupDescriptor32.fields,
  bg_block_bitmap_hi: { offset: 0x20, type: 'u32le' },
  bg_inode_bitmap_hi: { offset: 0x24, type: 'u32le' },
  bg_inode_table_hi: { offset: 0x28, type: 'u32le' },
  bg_free_blocks_count_hi: { offset: 0x2c, type: 'u16le' },
  bg_free_inodes_count_hi: { offset: 0x2e, type: 'u16le' },
  bg_used_dirs_count_hi: { offset: 0x30, type: 'u16le' },
  bg_itable_unused_hi: { offset: 0x32, type: 'u16le' },
  bg_exclude_bitmap_hi: { offset: 0x34, type: 'u32le' },
  bg_block_bitmap_csum_hi: { offset: 0x38, type: 'u16le' },
  bg_inode_bitmap_csum_hi: { offset: 0x3a, type: 'u16le' },
});
export const BG_CHECKSUM_OFFSET = 0x1e;

/** ext4_inode: the 128-byte base plus the extra fields covered by i_extra_isize (32 bytes). */
export const Inode = new Struct('Inode', 160, {
  i_mode: { offset: 0x0, type: 'u16le' },
  i_uid: { offset: 0x2, type: 'u16le' },
  i_size_lo: { offset: 0x4, type: 'u32le' },
  i_atime: { offset: 0x8, type: 'u32le' },
  i_ctime: { offset: 0xc, type: 'u32le' },
  i_mtime: { offset: 0x10, type: 'u32le' },
  i_dtime: { offset: 0x14, type: 'u32le' },
  i_gid: { offset: 0x18, type: 'u16le' },
  i_links_count: { offset: 0x1a, type: 'u16le' },
  i_blocks_lo: { offset: 0x1c, type: 'u32le' },
  i_flags: { offset: 0x20, type: 'u32le' },
  i_version: { offset: 0x24, type: 'u32le' },
  i_block: { offset: 0x28, type: { bytes: 60 } },
  i_generation: { offset: 0x64, type: 'u32le' },
  i_file_acl_lo: { offset: 0x68, type: 'u32le' },
  i_size_high: { offset: 0x6c, type: 'u32le' },
  i_blocks_high: { offset: 0x74, type: 'u16le' },
  i_file_acl_high: { offset: 0x76, type: 'u16le' },
  i_uid_high: { offset: 0x78, type: 'u16le' },
  i_gid_high: { offset: 0x7a, type: 'u16le' },
  i_checksum_lo: { offset: 0x7c, type: 'u16le' },
  i_extra_isize: { offset: 0x80, type: 'u16le' },
  i_checksum_hi: { offset: 0x82, type: 'u16le' },
  i_ctime_extra: { offset: 0x84, type: 'u32le' },
  i_mtime_extra: { offset: 0x88, type: 'u32le' },
  i_atime_extra: { offset: 0x8c, type: 'u32le' },
  i_crtime: { offset: 0x90, type: 'u32le' },
  i_crtime_extra: { offset: 0x94, type: 'u32le' },
  i_version_hi: { offset: 0x98, type: 'u32le' },
  i_projid: { offset: 0x9c, type: 'u32le' },
});
export type InodeFields = ReturnType<typeof Inode.decode>;
export const INODE_I_BLOCK = 0x28;
export const INODE_CHECKSUM_LO = 0x7c;
export const INODE_CHECKSUM_HI = 0x82;
/** i_extra_isize ingot writes: everything up to and including i_projid. */
export const EXTRA_ISIZE = 32;

export const ExtentHeader = new Struct('ExtentHeader', 12, {
  eh_magic: { offset: 0, type: 'u16le' },
  eh_entries: { offset: 2, type: 'u16le' },
  eh_max: { offset: 4, type: 'u16le' },
  eh_depth: { offset: 6, type: 'u16le' },
  eh_generation: { offset: 8, type: 'u32le' },
});
export const Extent = new Struct('Extent', 12, {
  ee_block: { offset: 0, type: 'u32le' },
  ee_len: { offset: 4, type: 'u16le' },
  ee_start_hi: { offset: 6, type: 'u16le' },
  ee_start_lo: { offset: 8, type: 'u32le' },
});
export const ExtentIndex = new Struct('ExtentIndex', 12, {
  ei_block: { offset: 0, type: 'u32le' },
  ei_leaf_lo: { offset: 4, type: 'u32le' },
  ei_leaf_hi: { offset: 8, type: 'u16le' },
  ei_unused: { offset: 10, type: 'u16le' },
});
/** ext4_extent_tail: a crc32c after eh_max entries of a tree block (not in the inode). */
export const ExtentTail = new Struct('ExtentTail', 4, { et_checksum: { offset: 0, type: 'u32le' } });

/** ext4_dir_entry_2 header; the name follows (name_len bytes), rec_len is a multiple of 4. */
export const DirEntry2 = new Struct('DirEntry2', 8, {
  inode: { offset: 0, type: 'u32le' },
  rec_len: { offset: 4, type: 'u16le' },
  name_len: { offset: 6, type: 'u8' },
  file_type: { offset: 7, type: 'u8' },
});
/** ext4_dir_entry_tail: the 12-byte fake entry ending each leaf block under metadata_csum. */
export const DirEntryTail = new Struct('DirEntryTail', 12, {
  det_reserved_zero1: { offset: 0, type: 'u32le' },
  det_rec_len: { offset: 4, type: 'u16le' },
  det_reserved_zero2: { offset: 6, type: 'u8' },
  det_reserved_ft: { offset: 7, type: 'u8' },
  det_checksum: { offset: 8, type: 'u32le' },
});
export const DIR_TAIL_SIZE = 12;

/** dx_root_info, at byte 0x18 of an htree root block (after the fake "." and ".." entries). */
export const DxRootInfo = new Struct('DxRootInfo', 8, {
  reserved_zero: { offset: 0, type: 'u32le' },
  hash_version: { offset: 4, type: 'u8' },
  info_length: { offset: 5, type: 'u8' },
  indirect_levels: { offset: 6, type: 'u8' },
  unused_flags: { offset: 7, type: 'u8' },
});
export const DX_ROOT_INFO_OFFSET = 0x18;
export const DX_ROOT_ENTRIES_OFFSET = 0x20;
/** dx_node: a fake empty dirent spanning the block, then the count/limit and entries at byte 8. */
export const DX_NODE_ENTRIES_OFFSET = 0x8;
/** dx_countlimit overlays the hash of entry 0. */
export const DxCountLimit = new Struct('DxCountLimit', 8, {
  limit: { offset: 0, type: 'u16le' },
  count: { offset: 2, type: 'u16le' },
  block: { offset: 4, type: 'u32le' },
});
export const DxEntry = new Struct('DxEntry', 8, {
  hash: { offset: 0, type: 'u32le' },
  block: { offset: 4, type: 'u32le' },
});
export const DxTail = new Struct('DxTail', 8, {
  dt_reserved: { offset: 0, type: 'u32le' },
  dt_checksum: { offset: 4, type: 'u32le' },
});

/** ext4_xattr_header of an external xattr block. */
export const XattrHeader = new Struct('XattrHeader', 32, {
  h_magic: { offset: 0, type: 'u32le' },
  h_refcount: { offset: 4, type: 'u32le' },
  h_blocks: { offset: 8, type: 'u32le' },
  h_hash: { offset: 12, type: 'u32le' },
  h_checksum: { offset: 16, type: 'u32le' },
});
/** ext4_xattr_ibody_header: the magic that starts in-inode xattrs after i_extra_isize. */
export const XattrIbodyHeader = new Struct('XattrIbodyHeader', 4, {
  h_magic: { offset: 0, type: 'u32le' },
});
/** ext4_xattr_entry; the name (e_name_len bytes) follows, padded to 4. */
export const XattrEntry = new Struct('XattrEntry', 16, {
  e_name_len: { offset: 0, type: 'u8' },
  e_name_index: { offset: 1, type: 'u8' },
  e_value_offs: { offset: 2, type: 'u16le' },
  e_value_inum: { offset: 4, type: 'u32le' },
  e_value_size: { offset: 8, type: 'u32le' },
  e_hash: { offset: 12, type: 'u32le' },
});

/** jbd2 journal_superblock_t (big-endian), block 0 of the journal. */
export const JournalSuperblock = new Struct('JournalSuperblock', 1024, {
  h_magic: { offset: 0x0, type: 'u32be' },
  h_blocktype: { offset: 0x4, type: 'u32be' },
  h_sequence: { offset: 0x8, type: 'u32be' },
  s_blocksize: { offset: 0xc, type: 'u32be' },
  s_maxlen: { offset: 0x10, type: 'u32be' },
  s_first: { offset: 0x14, type: 'u32be' },
  s_sequence: { offset: 0x18, type: 'u32be' },
  s_start: { offset: 0x1c, type: 'u32be' },
  s_errno: { offset: 0x20, type: 'i32be' },
  s_feature_compat: { offset: 0x24, type: 'u32be' },
  s_feature_incompat: { offset: 0x28, type: 'u32be' },
  s_feature_ro_compat: { offset: 0x2c, type: 'u32be' },
  s_uuid: { offset: 0x30, type: { bytes: 16 } },
  s_nr_users: { offset: 0x40, type: 'u32be' },
  s_dynsuper: { offset: 0x44, type: 'u32be' },
  s_max_transaction: { offset: 0x48, type: 'u32be' },
  s_max_trans_data: { offset: 0x4c, type: 'u32be' },
  s_checksum_type: { offset: 0x50, type: 'u8' },
  s_checksum: { offset: 0xfc, type: 'u32be' },
  s_users: { offset: 0x100, type: { bytes: 768 } },
});

/** Name prefixes by e_name_index (fs/ext4/xattr.c ext4_xattr_handler_map). */
export const XATTR_PREFIXES: ReadonlyArray<readonly [number, string]> = [
  [2, 'system.posix_acl_access'],
  [3, 'system.posix_acl_default'],
  [1, 'user.'],
  [4, 'trusted.'],
  [6, 'security.'],
  [7, 'system.'],
  [8, 'system.richacl'],
];
