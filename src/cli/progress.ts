/**
 * How the CLI shows progress: bars on a terminal (cli-progress, one bar per
 * image, so a compose shows its parallel builds side by side), plain lines
 * when stderr is not a terminal (CI logs, pipes), nothing with --quiet or
 * --json (stdout is then reserved for the machine output).
 */
import type { Logger, ProgressEvent } from '../build/pipeline.js';

export interface ProgressOptions {
  quiet?: boolean;
  verbose?: boolean;
  json?: boolean;
  /** Defaults to process.stderr. */
  stream?: NodeJS.WriteStream;
}

/** A progress event, optionally from one image of several (compose). */
export type ImageProgressEvent = ProgressEvent & { image?: string };

export interface ProgressView {
  event(e: ImageProgressEvent): void;
  /** The build's logger: warnings always shown (unless quiet), info only when verbose. */
  logger: Logger;
  /** Say one line without breaking the bars. */
  say(line: string): void;
  stop(): void;
}

interface BarHandle {
  update(value: number, payload: object): void;
  setTotal(total: number): void;
}
interface MultiBarHandle {
  create(total: number, start: number, payload: object): BarHandle;
  log(text: string): void;
  stop(): void;
}

function describe(e: ImageProgressEvent): string {
  const count = e.total !== undefined ? ` ${e.done ?? 0}/${e.total}` : '';
  return `${e.image ? `${e.image} ` : ''}[${e.stage}]${count}${e.message ? ` ${e.message}` : ''}`;
}

/**
 * Whether bars may be drawn: a real terminal, and not a CI runner (whose
 * "TTY" logs keep every redraw). `INGOT_PROGRESS=plain|bars` overrides.
 */
export function wantsBars(stream: NodeJS.WriteStream, env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.INGOT_PROGRESS === 'plain') return false;
  if (env.INGOT_PROGRESS === 'bars') return true;
  return stream.isTTY === true && !env.CI && env.TERM !== 'dumb';
}

/** Warnings always, informational lines only when verbose. */
function viewLogger(say: (line: string) => void, verbose?: boolean): Logger {
  return {
    info: (m) => { if (verbose) say(m); },
    warn: (m) => say(`warning: ${m}`),
    debug: (m) => { if (verbose) say(m); },
  };
}

class LineView implements ProgressView {
  readonly logger: Logger;
  constructor(private readonly stream: NodeJS.WriteStream, private readonly o: ProgressOptions) {
    this.logger = viewLogger((m) => this.say(m), o.verbose);
  }
  event(e: ImageProgressEvent): void {
    // Counted stages print when they finish unless verbose: a 300-package unpack is one line, not 300.
    if (this.o.verbose || e.done === undefined || e.done === e.total) this.say(describe(e));
  }
  say(line: string): void { this.stream.write(`${line}\n`); }
  stop(): void {}
}

class BarView implements ProgressView {
  readonly logger: Logger;
  private readonly bars = new Map<string, BarHandle>();
  constructor(private readonly multi: MultiBarHandle, private readonly o: ProgressOptions) {
    this.logger = viewLogger((m) => this.say(m), o.verbose);
  }
  event(e: ImageProgressEvent): void {
    const key = e.image ?? '';
    let bar = this.bars.get(key);
    const total = e.total ?? 1;
    const value = e.total !== undefined ? e.done ?? 0 : 0;
    const payload = { image: key ? `${key} ` : '', stage: e.stage.padEnd(10), message: (e.message ?? '').slice(-48) };
    if (!bar) {
      bar = this.multi.create(total, value, payload);
      this.bars.set(key, bar);
      return;
    }
    bar.setTotal(total);
    bar.update(value, payload);
  }
  say(line: string): void { this.multi.log(`${line}\n`); }
  stop(): void { this.multi.stop(); }
}

export async function progressView(o: ProgressOptions): Promise<ProgressView> {
  const stream = o.stream ?? process.stderr;
  const silent: ProgressView = {
    event: () => {}, say: () => {}, stop: () => {},
    logger: { info: () => {}, warn: (m) => { if (!o.quiet) stream.write(`warning: ${m}\n`); } },
  };
  if (o.quiet) return silent;
  if (o.json) return { ...silent, logger: { info: () => {}, warn: (m) => stream.write(`warning: ${m}\n`) } };
  if (!wantsBars(stream)) return new LineView(stream, o);
  const { default: cliProgress } = await import('cli-progress');
  const multi = new cliProgress.MultiBar({
    stream,
    format: '{image}{stage} {bar} {value}/{total} {message}',
    hideCursor: true,
    clearOnComplete: false,
    barsize: 24,
    fps: 8,
  }, cliProgress.Presets.shades_classic);
  return new BarView(multi as unknown as MultiBarHandle, o);
}
