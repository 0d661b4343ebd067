import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';

/** sha256 of a file as hex, streamed in 1 MiB reads (images are never held in memory). */
export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(path, { highWaterMark: 1 << 20 })) h.update(c as Buffer);
  return h.digest('hex');
}
