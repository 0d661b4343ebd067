/** A read-only ByteSource over a host file (an image given to `ingot ls`/`cat`). */
import { open } from 'node:fs/promises';
import type { ByteSource, Range } from '../../disk/target.js';

export async function openFileSource(path: string, window?: { offset: number; size?: number }): Promise<ByteSource> {
  const fh = await open(path, 'r');
  const st = await fh.stat();
  const base = window?.offset ?? 0;
  const size = Math.max(0, Math.min(window?.size ?? st.size - base, st.size - base));
  return {
    size,
    async read(buf: Uint8Array, position: number): Promise<number> {
      const n = Math.max(0, Math.min(buf.length, size - position));
      let done = 0;
      while (done < n) {
        const { bytesRead } = await fh.read(buf, done, n - done, base + position + done);
        if (bytesRead === 0) { buf.fill(0, done, n); break; }
        done += bytesRead;
      }
      return n;
    },
    async *allocated(): AsyncIterable<Range> { yield { offset: 0, length: size }; },
    async close() { await fh.close(); },
  };
}
