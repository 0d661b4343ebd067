/** Which disk format an image file is in, told to qemu explicitly (never left to qemu's probing). */
import { open } from 'node:fs/promises';
import { IngotError } from '../errors.js';

export type QemuDiskFormat = 'raw' | 'qcow2' | 'vmdk' | 'vpc';

/** The format names `ingot boot --format` accepts (vhd is qemu's vpc). */
export function parseDiskFormat(name: string): QemuDiskFormat {
  const n = name.toLowerCase();
  if (n === 'vhd') return 'vpc';
  if (n === 'raw' || n === 'qcow2' || n === 'vmdk' || n === 'vpc') return n;
  throw new IngotError('BAD_FORMAT', `unknown disk format ${JSON.stringify(name)}`, { expected: 'raw, qcow2, vmdk, vhd', actual: name });
}

/**
 * From the magic numbers: qcow2 "QFI\xfb" at 0 (QCOW2 spec, header), VMDK
 * sparse extent "KDMV" at 0 or a text descriptor "# Disk DescriptorFile",
 * VHD "conectix" cookie in the footer (last 512 bytes; dynamic disks also
 * copy it to offset 0). Anything else is raw.
 */
export async function detectImageFormat(path: string): Promise<QemuDiskFormat> {
  const fh = await open(path, 'r');
  try {
    const { size } = await fh.stat();
    const head = Buffer.alloc(512);
    await fh.read(head, 0, 512, 0);
    if (head.subarray(0, 4).equals(Buffer.from([0x51, 0x46, 0x49, 0xfb]))) return 'qcow2';
    if (head.subarray(0, 4).toString('latin1') === 'KDMV' || head.subarray(0, 21).toString('latin1') === '# Disk DescriptorFile') return 'vmdk';
    if (head.subarray(0, 8).toString('latin1') === 'conectix') return 'vpc';
    if (size >= 512) {
      const foot = Buffer.alloc(512);
      await fh.read(foot, 0, 512, size - 512);
      if (foot.subarray(0, 8).toString('latin1') === 'conectix') return 'vpc';
    }
    return 'raw';
  } finally {
    await fh.close();
  }
}
