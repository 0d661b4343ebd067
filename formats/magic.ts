/**
 * The magic numbers format detection looks for, apart from the readers that
 * check them, so detecting a format loads no reader.
 */
/** qcow2.rst "Header": magic "QFI\xfb", big-endian. */
export const QCOW_MAGIC = 0x514649fb;
/** VMDK 1.1 "Hosted Sparse Extent Header": magicNumber "KDMV", little-endian. */
export const SPARSE_MAGIC = 0x564d444b;
