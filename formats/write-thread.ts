/**
 * A worker thread that performs an output file's positioned writes, so the
 * thread producing the data (reading the source, building tables) never
 * waits for a write and the file is written back to back.
 *
 * Why a thread and not libuv's pool: each asynchronous write is a hand-off
 * to the pool and a completion back through the event loop, 0.15–0.3 ms on
 * the benchmark machine, and the writer idles for it between writes — a
 * 1.5 GiB qcow2 conversion spent ≈0.50 s writing inside a 0.75 s write
 * stream (docs/performance.md). Here the producer posts a write and goes on;
 * the thread issues the next write as soon as the previous returns.
 *
 * Data is shared, not copied: pieces must be views on SharedArrayBuffers
 * (BufferPool allocates its buffers there). The thread only writes what it
 * is given, in order; splitting and ordering stay with OutputFile.
 */
import { Worker } from 'node:worker_threads';
import type { PooledBuffer } from './io.js';

/** One system call's worth: `bufs` written contiguously at `pos`. */
export interface WriteSegment { pos: number; bufs: Uint8Array[] }

interface Done { seq: number; error?: { message: string; code?: string; errno?: number; syscall?: string } }

/**
 * The thread's code, evaluated as a CommonJS script: a string rather than a
 * module file so it runs the same from dist/, under tsx (whose hooks do not
 * reach worker entry points) and inside an embedder's bundle. After the first
 * failed write it writes nothing more and reports that failure for every
 * later message, so nothing lands after an error.
 */
const SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { writevSync } = require('node:fs');
let failure = null;
function writeSegment(fd, bufs, pos) {
  let left = bufs.map((b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength));
  let total = 0;
  for (const b of left) total += b.length;
  while (total > 0) {
    const n = writevSync(fd, left, pos);
    if (n <= 0) throw Object.assign(new Error('write returned ' + n), { code: 'EIO', syscall: 'writev' });
    pos += n; total -= n;
    const rest = [];
    let skip = n;
    for (const b of left) {
      if (skip >= b.length) { skip -= b.length; continue; }
      rest.push(skip > 0 ? b.subarray(skip) : b);
      skip = 0;
    }
    left = rest;
  }
}
parentPort.on('message', (m) => {
  if (!failure) {
    try { for (const s of m.segs) writeSegment(workerData.fd, s.bufs, s.pos); }
    catch (e) { failure = { message: e.message, code: e.code, errno: e.errno, syscall: e.syscall }; }
  }
  parentPort.postMessage(failure ? { seq: m.seq, error: failure } : { seq: m.seq });
});
`;

/** Writes queued ahead of the thread (each at most about a MiB): enough to never starve it. */
const MAX_QUEUED = 8;

export class WriteThread {
  private readonly worker: Worker;
  private seq = 0;
  private readonly queued = new Map<number, PooledBuffer[]>();
  private failure: Error | null = null;
  private wake: (() => void) | null = null;
  private exited = false;
  /** True once the thread runs; until then OutputFile keeps writing through the pool. */
  ready = false;
  /** Settles when the thread runs (true) or failed to start (false). */
  readonly online: Promise<boolean>;
  private settleOnline: (ok: boolean) => void = () => undefined;

  constructor(fd: number, private readonly path: string) {
    this.online = new Promise((r) => { this.settleOnline = r; });
    this.worker = new Worker(SOURCE, { eval: true, workerData: { fd }, stdout: false, stderr: false });
    this.worker.on('online', () => { this.ready = true; this.settleOnline(true); });
    this.worker.on('message', (m: Done) => {
      for (const o of this.queued.get(m.seq) ?? []) o.release();
      this.queued.delete(m.seq);
      if (m.error && !this.failure) {
        this.failure = Object.assign(new Error(`${m.error.message}`), { code: m.error.code, errno: m.error.errno, syscall: m.error.syscall, path: this.path });
      }
      this.signal();
    });
    this.worker.on('error', (e) => { this.failure ??= e; this.signal(); });
    this.worker.on('exit', () => {
      this.exited = true;
      this.failure ??= new Error(`write thread for ${this.path} exited`);
      this.signal();
    });
  }

  private signal(): void {
    if (!this.ready) this.settleOnline(false);
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  private next(): Promise<void> {
    return new Promise((r) => { this.wake = r; });
  }

  private check(): void {
    if (this.failure) throw this.failure;
  }

  /** Queue `segs`; `owners` are released once they are written. Waits while the queue is full. */
  async write(segs: WriteSegment[], owners: PooledBuffer[]): Promise<void> {
    this.check();
    while (this.queued.size >= MAX_QUEUED) {
      await this.next();
      this.check();
    }
    const seq = ++this.seq;
    this.queued.set(seq, owners);
    this.worker.postMessage({ seq, segs });
  }

  /** Wait until everything queued is written; throws the first write error. */
  async drain(): Promise<void> {
    while (this.queued.size > 0 && !this.exited) await this.next();
    this.check();
  }

  /**
   * Stop the thread. Resolves only after it has exited, so no write of it can
   * land after the caller closes the descriptor (whose number could be reused).
   */
  async stop(): Promise<void> {
    if (!this.exited) await this.worker.terminate();
    this.exited = true;
    for (const owners of this.queued.values()) for (const o of owners) o.release();
    this.queued.clear();
  }
}
