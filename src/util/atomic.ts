/**
 * Atomic outputs: everything ingot writes goes to a temporary name beside the
 * target and is renamed into place only on success, so a failure, a signal or
 * an abort never leaves a partial file or directory behind.
 */
import { rmSync } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';

const live = new Set<string>();
let hooked = false;

function removeLive(): void {
  for (const p of live) {
    try { rmSync(p, { recursive: true, force: true }); } catch { /* best effort */ }
  }
}

function hookSignals(): void {
  if (hooked) return;
  hooked = true;
  const cleanup = (sig: NodeJS.Signals) => {
    removeLive();
    // A file open() already on the thread pool can still create its path: sweep again shortly after.
    setTimeout(() => process.exit(sig === 'SIGINT' ? 130 : 143), 100);
  };
  process.once('SIGINT', cleanup);
  process.once('SIGTERM', cleanup);
  // Another handler (a loader, an embedding tool) may exit first: 'exit' still runs.
  process.once('exit', removeLive);
}

/** Remove `path` (file or directory) if the process is interrupted before `release` is called. */
export function removeOnSignal(path: string): { release(): void } {
  hookSignals();
  live.add(path);
  return { release: () => { live.delete(path); } };
}

/** A temporary path beside `target` (same directory, so rename is atomic). */
export function tempPathFor(target: string): string {
  return join(dirname(target), `.${basename(target)}.ingot-${randomBytes(4).toString('hex')}.tmp`);
}

/**
 * Run `produce` with a temporary path beside `target`; rename it to `target`
 * when `produce` resolves, remove it when it throws (or the process is signalled).
 */
export async function atomicOutput<T>(target: string, produce: (tmp: string) => Promise<T>): Promise<T> {
  hookSignals();
  const tmp = tempPathFor(target);
  live.add(tmp);
  try {
    const result = await produce(tmp);
    await rename(tmp, target);
    return result;
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  } finally {
    live.delete(tmp);
  }
}
