/**
 * Worker side of payload decompression: decodes a byte range of a package
 * file with compression.ts's decoders and posts the output in order, under
 * credit-based flow control (the reader grants credit as it consumes), so
 * decompression runs on another core while the main thread parses cpio and
 * writes files — as rpm2cpio and cpio overlap in a pipeline.
 */
import { parentPort } from 'node:worker_threads';
import { createReadStream } from 'node:fs';
import { decompress, type Compression } from './compression.js';

export type ToWorker =
  | { type: 'start'; id: number; file: string; start: number; compression: Compression }
  | { type: 'credit'; id: number; n: number }
  | { type: 'cancel'; id: number };

export type FromWorker =
  | { type: 'data'; id: number; buf: ArrayBuffer }
  | { type: 'end'; id: number }
  | { type: 'error'; id: number; message: string };

interface Job { credit: number; cancelled: boolean; wake: (() => void) | null }
const jobs = new Map<number, Job>();

async function run(port: NonNullable<typeof parentPort>, m: Extract<ToWorker, { type: 'start' }>): Promise<void> {
  const job: Job = { credit: 0, cancelled: false, wake: null };
  jobs.set(m.id, job);
  const raw = createReadStream(m.file, { start: m.start, highWaterMark: m.compression === 'gzip' ? 64 * 1024 : 1 << 20 });
  try {
    for await (const chunk of decompress(m.compression, raw)) {
      while (job.credit <= 0 && !job.cancelled) await new Promise<void>((r) => { job.wake = r; });
      if (job.cancelled) break;
      job.credit--;
      // A copy the worker owns outright, so it can be transferred (decoder buffers may share memory).
      const copy = new Uint8Array(chunk.length);
      copy.set(chunk);
      port.postMessage({ type: 'data', id: m.id, buf: copy.buffer } satisfies FromWorker, [copy.buffer]);
    }
    port.postMessage({ type: 'end', id: m.id } satisfies FromWorker);
  } catch (e) {
    port.postMessage({ type: 'error', id: m.id, message: e instanceof Error ? e.message : String(e) } satisfies FromWorker);
  } finally {
    raw.destroy();
    jobs.delete(m.id);
  }
}

if (parentPort) {
  const port = parentPort;
  port.on('message', (m: ToWorker) => {
    if (m.type === 'start') { void run(port, m); return; }
    const job = jobs.get(m.id);
    if (!job) return;
    if (m.type === 'credit') job.credit += m.n;
    else job.cancelled = true;
    const w = job.wake; job.wake = null; w?.();
  });
}
