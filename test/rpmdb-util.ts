/**
 * Test-side reader for the two headers of a .rpm file (lead, signature header
 * padded to 8 bytes, main header), independent of the project's RPM reader.
 */
import { readFileSync } from 'node:fs';

export function readRpmHeaders(path: string): { signature: Buffer; main: Buffer } {
  const d = readFileSync(path);
  const headerAt = (off: number): Buffer => {
    if (d.readUInt32BE(off) !== 0x8eade801) throw new Error(`${path}: no header magic at ${off}`);
    const il = d.readUInt32BE(off + 8), dl = d.readUInt32BE(off + 12);
    return d.subarray(off, off + 16 + 16 * il + dl);
  };
  const signature = headerAt(96);
  const mainAt = 96 + Math.ceil(signature.length / 8) * 8;
  return { signature, main: headerAt(mainAt) };
}
