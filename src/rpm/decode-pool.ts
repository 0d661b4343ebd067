/**
 * Main-thread side of worker decompression: a small pool of reusable
 * workers (idle ones are unref'd, so they never keep the process alive),
 * each with its slot buffer shared with this thread. `decodeInWorker` yields
 * the decoded payload like `decompress` does. Under tsx (sources run as .ts)
 * the worker registers tsx first; built JavaScript loads decode-worker.js directly.
 */
import { Worker } from 'node:worker_threads';
import { createRequire } from 'node:module';
import type { Compression } from './compression.js';
import { SLOTS, SLOT_SIZE, type DecodeWorkerData, type FromWorker, type ToWorker } from './decode-worker.js';

// Evaluated as CommonJS or, when the process runs with --input-type=module, as ESM: only dynamic import() works in both.
const BOOT = `(async () => {
  const { workerData } = await import('node:worker_threads');
  if (workerData.tsx) (await import(workerData.tsx)).register();
  await import(workerData.entry);
})().catch((e) => { process.nextTick(() => { throw e; }); });`;

interface PoolWorker { worker: Worker; shared: SharedArrayBuffer }
const idle: PoolWorker[] = [];
let nextId = 1;

function workerData(): DecodeWorkerData {
  const ts = import.meta.url.endsWith('.ts');
  const entry = new URL(ts ? './decode-worker.ts' : './decode-worker.js', import.meta.url).href;
  const shared = new SharedArrayBuffer(SLOTS * SLOT_SIZE);
  if (!ts) return { entry, tsx: null, shared };
  const cjs = createRequire(import.meta.url).resolve('tsx/esm/api');
  return { entry, tsx: new URL(`file://${cjs.replace(/index\.cjs$/, 'index.mjs')}`).href, shared };
}

function acquire(): PoolWorker {
  let p = idle.pop();
  if (!p) {
    const data = workerData();
    p = { worker: new Worker(BOOT, { eval: true, workerData: data }), shared: data.shared };
  }
  p.worker.ref();
  return p;
}

function release(p: PoolWorker): void {
  p.worker.removeAllListeners('message');
  p.worker.removeAllListeners('error');
  p.worker.unref();
  idle.push(p);
}

/**
 * Decode `file` from byte `start` with `c` in a worker; chunks arrive in order, a few ahead of the reader.
 * `transient`: each chunk is a view of the shared slot, valid only until the next chunk is requested
 * (no copy); otherwise each chunk is a copy the caller owns.
 */
export async function* decodeInWorker(c: Compression, file: string, start: number, transient = false): AsyncGenerator<Buffer> {
  const p = acquire();
  const w = p.worker;
  const id = nextId++;
  const q: { slot: number; length: number }[] = [];
  let done = false;
  let failure: Error | null = null;
  let wake: (() => void) | null = null;
  const poke = () => { const f = wake; wake = null; f?.(); };
  w.on('message', (m: FromWorker) => {
    if (m.id !== id) return;
    if (m.type === 'data') q.push({ slot: m.slot, length: m.length });
    else if (m.type === 'end') done = true;
    else { failure = new Error(m.message); done = true; }
    poke();
  });
  let dead = false;
  w.on('error', (e) => { failure = e; done = true; dead = true; poke(); });
  const post = (m: ToWorker) => w.postMessage(m);
  post({ type: 'start', id, file, start, compression: c });
  let held = -1;
  try {
    for (;;) {
      // The reader asked for more: the slot it held is free again.
      if (held >= 0) { post({ type: 'free', id, slot: held }); held = -1; }
      const m = q.shift();
      if (m) {
        const view = Buffer.from(p.shared, m.slot * SLOT_SIZE, m.length);
        if (transient) { held = m.slot; yield view; continue; }
        const copy = Buffer.allocUnsafe(m.length);
        view.copy(copy);
        post({ type: 'free', id, slot: m.slot });
        yield copy;
        continue;
      }
      if (failure) throw failure;
      if (done) return;
      await new Promise<void>((r) => { wake = r; });
    }
  } finally {
    if (dead) void w.terminate();
    else if (done) release(p);
    else {
      // Stopped early (cpio trailer reached, or the consumer gave up): cancel; reuse the worker once it has closed the job.
      w.removeAllListeners('message');
      w.on('message', (m: FromWorker) => { if (m.id === id && m.type !== 'data') release(p); });
      post({ type: 'cancel', id });
    }
  }
}
