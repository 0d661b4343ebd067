/** ext4: write a StagingTree as an ext4 filesystem, and read ext2/3/4 images. */
export { writeExt4, planExt4Size, type Ext4Options, type Ext4Result, type Ext4SizePlan, type FilePlacement } from './writer.js';
export { openExt4, Ext4Reader, type Ext4Stat, type Ext4DirEntry, type Ext4FileType } from './reader.js';
export { readExt4Tree, Ext4FileContent } from './to-tree.js';
export { Ext4Error } from './errors.js';
