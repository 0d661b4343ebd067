/**
 * Worker side of payload decompression: decodes a byte range of a package
 * file with compression.ts's decoders into the slots of a buffer shared with
 * the main thread, and posts each filled slot in order; the main thread hands
 * a slot back once its reader is done with it. Decompression thus runs on
 * another core while the main thread parses cpio and writes files — as
 * rpm2cpio and cpio overlap in a pipeline — with no per-chunk allocation or
 * copy on the zstd path (decoded straight into the slots).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { closeSync, createReadStream, openSync, readSync } from 'node:fs';
import { decompress, unzstd, type Compression } from './compression.js';

/** The shared buffer's layout: SLOTS slots of SLOT_SIZE bytes. */
export const SLOTS = 4;
export const SLOT_SIZE = 1 << 20;

export interface DecodeWorkerData { entry: string; tsx: string | null; shared: SharedArrayBuffer }

export type ToWorker =
  | { type: 'start'; id: number; file: string; start: number; compression: Compression }
  | { type: 'free'; id: number; slot: number }
  | { type: 'cancel'; id: number };

export type FromWorker =
  | { type: 'data'; id: number; slot: number; length: number }
  | { type: 'end'; id: number }
  | { type: 'error'; id: number; message: string };

interface Job { free: number[]; cancelled: boolean; wake: (() => void) | null }
const jobs = new Map<number, Job>();
class Cancelled extends Error {}

/** The file from `start` in 1 MiB reads into one reused buffer (unzstd consumes each chunk before the next). */
async function* fileChunks(file: string, start: number): AsyncGenerator<Buffer> {
  const fd = openSync(file, 'r');
  const buf = Buffer.allocUnsafe(1 << 20);
  try {
    for (let pos = start; ;) {
      const n = readSync(fd, buf, 0, buf.length, pos);
      if (n === 0) return;
      pos += n;
      yield buf.subarray(0, n);
    }
  } finally {
    closeSync(fd);
  }
}

async function run(port: NonNullable<typeof parentPort>, shared: SharedArrayBuffer, m: Extract<ToWorker, { type: 'start' }>): Promise<void> {
  const job: Job = { free: Array.from({ length: SLOTS }, (_, i) => i), cancelled: false, wake: null };
  jobs.set(m.id, job);
  const slot = async (): Promise<number> => {
    while (job.free.length === 0 && !job.cancelled) await new Promise<void>((r) => { job.wake = r; });
    if (job.cancelled) throw new Cancelled();
    return job.free.shift()!;
  };
  const post = (msg: FromWorker) => port.postMessage(msg);
  try {
    if (m.compression === 'zstd') {
      let current = -1;
      const output = async () => { current = await slot(); return Buffer.from(shared, current * SLOT_SIZE, SLOT_SIZE); };
      for await (const chunk of unzstd(fileChunks(m.file, m.start), output)) post({ type: 'data', id: m.id, slot: current, length: chunk.length });
    } else {
      const raw = createReadStream(m.file, { start: m.start, highWaterMark: m.compression === 'gzip' ? 64 * 1024 : 1 << 20 });
      for await (const chunk of decompress(m.compression, raw)) {
        for (let off = 0; off < chunk.length;) {
          const s = await slot();
          const n = chunk.copy(Buffer.from(shared, s * SLOT_SIZE, SLOT_SIZE), 0, off, off + SLOT_SIZE);
          post({ type: 'data', id: m.id, slot: s, length: n });
          off += n;
        }
      }
    }
    post({ type: 'end', id: m.id });
  } catch (e) {
    if (e instanceof Cancelled) post({ type: 'end', id: m.id });
    else post({ type: 'error', id: m.id, message: e instanceof Error ? e.message : String(e) });
  } finally {
    jobs.delete(m.id);
  }
}

if (parentPort) {
  const port = parentPort;
  const shared = (workerData as DecodeWorkerData).shared;
  port.on('message', (m: ToWorker) => {
    if (m.type === 'start') { void run(port, shared, m); return; }
    const job = jobs.get(m.id);
    if (!job) return;
    if (m.type === 'free') job.free.push(m.slot);
    else job.cancelled = true;
    const w = job.wake; job.wake = null; w?.();
  });
}
