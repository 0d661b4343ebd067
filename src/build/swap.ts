/**
 * A Linux swap area header (mkswap's "SWAPSPACE2", version 1): the first page
 * holds `swap_header_v1_2` at byte 1024 and the magic in its last ten bytes
 * (linux/swap.h). Only that page is written; the rest stays a hole.
 */
import { Struct } from '../binary/struct.js';
import type { BlockTarget } from '../disk/target.js';

export const SWAP_PAGE_SIZE = 4096;
export const SWAP_MAGIC = 'SWAPSPACE2';

const SwapHeaderV1 = new Struct('swap_header_v1_2', 1024 + 4 * 3 + 16 + 16, {
  version: { offset: 1024, type: 'u32le' },
  lastPage: { offset: 1028, type: 'u32le' },
  nrBadPages: { offset: 1032, type: 'u32le' },
  uuid: { offset: 1036, type: { bytes: 16 } },
  volumeName: { offset: 1052, type: { bytes: 16 } },
});

export async function writeSwapHeader(target: BlockTarget, o: { uuid: string; label?: string }): Promise<void> {
  const page = new Uint8Array(SWAP_PAGE_SIZE);
  const pages = Math.floor(target.size / SWAP_PAGE_SIZE);
  if (pages < 10) throw new RangeError(`a swap area needs at least 10 pages, the partition has ${pages}`);
  const name = Buffer.alloc(16);
  if (o.label) Buffer.from(o.label, 'utf8').copy(name, 0, 0, 16);
  SwapHeaderV1.encode({ version: 1, lastPage: pages - 1, nrBadPages: 0, uuid: Buffer.from(o.uuid.replace(/-/g, ''), 'hex'), volumeName: name }, page);
  page.set(Buffer.from(SWAP_MAGIC, 'latin1'), SWAP_PAGE_SIZE - SWAP_MAGIC.length);
  await target.write(page, 0);
}
