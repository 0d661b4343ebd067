/**
 * Main-thread side of worker decompression: a small pool of reusable
 * workers (idle ones are unref'd, so they never keep the process alive).
 * `decodeInWorker` yields the decoded payload like `decompress` does.
 * Under tsx (sources run as .ts) the worker registers tsx first; built
 * JavaScript loads decode-worker.js directly.
 */
import { Worker } from 'node:worker_threads';
import { createRequire } from 'node:module';
import type { Compression } from './compression.js';
import type { FromWorker, ToWorker } from './decode-worker.js';

const BOOT = `const { workerData } = require('node:worker_threads');
(async () => { if (workerData.tsx) (await import(workerData.tsx)).register(); await import(workerData.entry); })()
  .catch((e) => { process.nextTick(() => { throw e; }); });`;

const CREDIT = 4;
const idle: Worker[] = [];
let nextId = 1;

function workerData(): { entry: string; tsx: string | null } {
  const ts = import.meta.url.endsWith('.ts');
  const entry = new URL(ts ? './decode-worker.ts' : './decode-worker.js', import.meta.url).href;
  if (!ts) return { entry, tsx: null };
  const cjs = createRequire(import.meta.url).resolve('tsx/esm/api');
  return { entry, tsx: new URL(`file://${cjs.replace(/index\.cjs$/, 'index.mjs')}`).href };
}

function acquire(): Worker {
  const w = idle.pop() ?? new Worker(BOOT, { eval: true, workerData: workerData() });
  w.ref();
  return w;
}

function release(w: Worker): void {
  w.removeAllListeners('message');
  w.removeAllListeners('error');
  w.unref();
  idle.push(w);
}

/** Decode `file` from byte `start` with `c` in a worker; chunks arrive in order, a few ahead of the reader. */
export async function* decodeInWorker(c: Compression, file: string, start: number): AsyncGenerator<Buffer> {
  const w = acquire();
  const id = nextId++;
  const q: Buffer[] = [];
  let done = false;
  let failure: Error | null = null;
  let wake: (() => void) | null = null;
  const poke = () => { const f = wake; wake = null; f?.(); };
  w.on('message', (m: FromWorker) => {
    if (m.id !== id) return;
    if (m.type === 'data') q.push(Buffer.from(m.buf));
    else if (m.type === 'end') done = true;
    else { failure = new Error(m.message); done = true; }
    poke();
  });
  let dead = false;
  w.on('error', (e) => { failure = e; done = true; dead = true; poke(); });
  const post = (m: ToWorker) => w.postMessage(m);
  post({ type: 'start', id, file, start, compression: c });
  post({ type: 'credit', id, n: CREDIT });
  try {
    for (;;) {
      const b = q.shift();
      if (b) { post({ type: 'credit', id, n: 1 }); yield b; continue; }
      if (failure) throw failure;
      if (done) return;
      await new Promise<void>((r) => { wake = r; });
    }
  } finally {
    if (dead) void w.terminate();
    else if (done) release(w);
    else {
      // Stopped early (cpio trailer reached, or the consumer gave up): cancel; reuse the worker once it has closed the job.
      w.removeAllListeners('message');
      w.on('message', (m: FromWorker) => { if (m.id === id && m.type !== 'data') release(w); });
      post({ type: 'cancel', id });
    }
  }
}
