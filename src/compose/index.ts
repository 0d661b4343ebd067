/**
 * `compose()`: build a matrix of images (arches × image types × formats)
 * into a Fedora-style compose directory (docs/compose.md):
 *
 *   OUTDIR/<arch>/images/<name>-<image>-<version>[-<label>].<arch>.<ext>
 *   OUTDIR/metadata/<arch>/…report.json, …manifest.json (per image)
 *   OUTDIR/logs/<arch>/<image>.log
 *   OUTDIR/images.json, OUTDIR/CHECKSUM, OUTDIR/STATUS
 *
 * Images build concurrently in this process (`jobs` at a time), sharing
 * repository metadata, downloads and unpacked payloads (ComposeSharing).
 * Every file appears by rename; an image's files are moved into place only
 * once all of its formats are written. A failure (or an abort) stops the
 * others unless `keepGoing`, keeps every log, marks STATUS DOOMED and writes
 * no index: images.json and CHECKSUM exist only for a finished compose.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { rename, writeFile } from 'node:fs/promises';
import { availableParallelism, freemem } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { AbortedError, IngotError } from '../errors.js';
import { buildImage, type Logger, type ProgressEvent, type Stage, type BuildResult } from '../build/pipeline.js';
import { loadSpec } from '../spec/index.js';
import { normalizeSpec, type ImageSpec } from '../spec/model.js';
import { atomicOutput, removeOnSignal, tempPathFor } from '../util/atomic.js';
import { loadComposeConfig, type ComposeConfig } from './config.js';
import { composeId, composeJobs, parseShard, type ComposeJob, type Shard } from './matrix.js';
import { writeComposeIndex, writeStatus, type ComposeImage, type ComposeInfo, type ComposeStatus } from './metadata.js';
import { ComposeSharing, type SharingStats } from './share.js';

export class ComposeError extends IngotError {
  /** The images that failed, with the message and the kept log of each. */
  failures: ImageFailure[] = [];
}

export interface ImageFailure { image: string; code: string; message: string; log: string }

export interface ComposeProgressEvent {
  /** `arch/image`. */
  image: string;
  stage: Stage | 'queued' | 'finished' | 'failed';
  /** Items or bytes of the stage done/total, when known. */
  done?: number;
  total?: number;
  message?: string;
  /** Images of this compose (or shard) finished / to build. */
  images: { done: number; total: number };
}

export interface ComposeOptions {
  /** Path of COMPOSE.json, or a parsed config (loadComposeConfig). */
  config: string | ComposeConfig;
  /** The compose directory: created; must be absent or empty. */
  outputDir: string;
  /** Images built at once (default: from cores and free memory). */
  jobs?: number;
  /** Build only this shard's outputs (`"I/N"` or {index, count}). */
  shard?: Shard | string;
  /** Keep building the other images after one fails (the compose still fails). */
  keepGoing?: boolean;
  /** Repository metadata and package cache (default: the build default, shared by every image). */
  cacheDir?: string;
  /** Overrides the config's and the environment's SOURCE_DATE_EPOCH. */
  sourceDateEpoch?: number;
  signal?: AbortSignal;
  onProgress?: (e: ComposeProgressEvent) => void;
  logger?: Logger;
}

export interface ComposeResult {
  id: string;
  outputDir: string;
  status: ComposeStatus;
  images: ComposeImage[];
  shard?: Shard;
  jobs: number;
  sharing: SharingStats;
  /** Wall seconds per image and for the whole compose (logs only: never in the index files). */
  seconds: { total: number; images: Record<string, number> };
}

/** Memory one concurrent image build is allowed (staging tree metadata, buffers, compressors). */
const MEMORY_PER_IMAGE = 1.5 * 2 ** 30;

export function defaultJobs(images: number): number {
  return Math.max(1, Math.min(availableParallelism(), Math.floor(freemem() / MEMORY_PER_IMAGE), images));
}

function ensureEmptyDir(dir: string): void {
  if (existsSync(dir) && readdirSync(dir).length > 0) {
    throw new ComposeError('COMPOSE_OUTPUT_NOT_EMPTY', 'the compose directory exists and is not empty (a compose never overwrites one)', { file: dir });
  }
  mkdirSync(dir, { recursive: true });
}

/** An image's own seed from the compose seed: same compose seed → same UUIDs, different per arch and type. */
function jobSeed(seed: string | undefined, job: ComposeJob): string | undefined {
  return seed === undefined ? undefined : createHash('sha256').update(`${seed}\0${job.arch}\0${job.type.name}`).digest('hex').slice(0, 32);
}

function loadJobSpec(cfg: ComposeConfig, job: ComposeJob): ImageSpec {
  const t = job.type;
  const base = typeof t.spec === 'string' ? loadSpec(t.spec, { lenient: t.lenient }) : normalizeSpec(t.spec, `${cfg.file}#images/${t.name}/spec`);
  return { ...base, name: job.baseName, arch: job.arch, repositories: [...base.repositories, ...cfg.repos] };
}

/** A per-image log kept in memory and written (atomically) when the image is done or failed. */
class ImageLog implements Logger {
  private readonly lines: string[] = [];
  private readonly t0 = Date.now();
  constructor(private readonly id: string, private readonly parent?: Logger) {}
  line(level: string, msg: string): void {
    this.lines.push(`${new Date().toISOString()} +${((Date.now() - this.t0) / 1000).toFixed(1)}s ${level} ${msg}`);
  }
  info(msg: string): void { this.line('INFO', msg); this.parent?.info(`${this.id}: ${msg}`); }
  warn(msg: string): void { this.line('WARN', msg); this.parent?.warn(`${this.id}: ${msg}`); }
  debug(msg: string): void { this.line('DEBUG', msg); this.parent?.debug?.(`${this.id}: ${msg}`); }
  progress(e: ProgressEvent): void {
    if (e.done === undefined || e.done === e.total) this.line('STAGE', `${e.stage}${e.total !== undefined ? ` ${e.done}/${e.total}` : ''}${e.message ? ` ${e.message}` : ''}`);
  }
  write(path: string): Promise<void> {
    mkdirSync(join(path, '..'), { recursive: true });
    return atomicOutput(path, (tmp) => writeFile(tmp, this.lines.join('\n') + '\n'));
  }
}

/** Build the compose (or one shard of it). Throws ComposeError naming the failed images, AbortedError on abort. */
export async function compose(opts: ComposeOptions): Promise<ComposeResult> {
  const started = Date.now();
  const cfg = typeof opts.config === 'string' ? loadComposeConfig(opts.config) : opts.config;
  const shard = typeof opts.shard === 'string' ? parseShard(opts.shard) : opts.shard;
  const jobs = composeJobs(cfg, shard);
  const parallel = opts.jobs ?? defaultJobs(jobs.length);
  if (!Number.isInteger(parallel) || parallel < 1) throw new ComposeError('COMPOSE_BAD_JOBS', `jobs must be a whole number ≥ 1, not ${parallel}`, { field: 'jobs' });
  const out = resolve(opts.outputDir);
  ensureEmptyDir(out);
  const info: ComposeInfo = { id: composeId(cfg), name: cfg.name, version: cfg.version, ...(cfg.label ? { label: cfg.label } : {}), ...(shard ? { shard } : {}) };
  const epoch = opts.sourceDateEpoch ?? cfg.sourceDateEpoch;

  // Scratch for every image and the shared payload store: removed at the end, on failure and on a signal.
  const work = tempPathFor(join(out, 'work'));
  mkdirSync(work);
  const guard = removeOnSignal(work);
  const sharing = ComposeSharing.create(work);
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  if (opts.signal?.aborted) stop.abort();
  const images: ComposeImage[] = [];
  const failures: ImageFailure[] = [];
  const seconds: Record<string, number> = {};
  let finished = 0;
  const progress = (image: string, e: Omit<ComposeProgressEvent, 'image' | 'images'>) =>
    opts.onProgress?.({ image, ...e, images: { done: finished, total: jobs.length } });

  const runJob = async (job: ComposeJob): Promise<void> => {
    const t0 = Date.now();
    const log = new ImageLog(job.id, opts.logger);
    const logPath = join(out, 'logs', job.arch, `${job.type.name}.log`);
    const jobDir = join(work, job.id.replace('/', '-'));
    log.info(`compose ${info.id}${shard ? ` shard ${shard.index}/${shard.count}` : ''}: ${job.id} as ${job.formats.join(', ')}`);
    try {
      if (stop.signal.aborted) throw new AbortedError('compose aborted');
      const spec = loadJobSpec(cfg, job);
      const r: BuildResult = await buildImage({
        spec, specDir: typeof job.type.spec === 'string' ? join(job.type.spec, '..') : cfg.baseDir,
        outputDir: jobDir, workDir: jobDir, formats: job.formats, cacheDir: opts.cacheDir,
        sourceDateEpoch: epoch, seed: jobSeed(cfg.seed, job), signal: stop.signal, logger: log, sharing, lenientOwners: job.type.lenientOwners,
        // Output messages name scratch paths: the file name is what a reader recognises.
        onProgress: (e) => { log.progress(e); progress(job.id, e.stage === 'output' && e.message ? { ...e, message: basename(e.message) } : e); },
      });
      for (const w of r.report.warnings) log.warn(w);
      await place(r, job, out, images, log);
      seconds[job.id] = (Date.now() - t0) / 1000;
      log.info(`finished in ${seconds[job.id]!.toFixed(1)} s`);
      finished++;
      progress(job.id, { stage: 'finished' });
    } catch (e) {
      const err = e instanceof Error ? e : new Error(String(e));
      const code = e instanceof IngotError ? e.code : 'INTERNAL';
      log.line('ERROR', `${code}: ${err.message}`);
      if (!(e instanceof IngotError)) log.line('ERROR', err.stack ?? '');
      failures.push({ image: job.id, code, message: err.message.split('\n')[0]!, log: logPath });
      progress(job.id, { stage: 'failed', message: err.message.split('\n')[0] });
      if (!opts.keepGoing) stop.abort();
    } finally {
      rmSync(jobDir, { recursive: true, force: true });
      await log.write(logPath);
    }
  };

  try {
    for (const j of jobs) progress(j.id, { stage: 'queued' });
    const queue = [...jobs];
    await Promise.all(Array.from({ length: Math.min(parallel, jobs.length) }, async () => {
      for (let j = queue.shift(); j; j = queue.shift()) {
        if (stop.signal.aborted) break;
        await runJob(j);
      }
    }));
    if (opts.signal?.aborted) {
      await writeStatus(out, 'DOOMED');
      throw new AbortedError('compose aborted');
    }
    // Images stopped because another failed are not failures of their own.
    const causes = failures.filter((f) => f.code !== 'ABORTED');
    const realFailures = causes.length ? causes : failures;
    if (realFailures.length) {
      // With keepGoing the finished images are indexed, so they can be used; the compose still fails.
      if (opts.keepGoing) await writeComposeIndex(out, info, images, 'FINISHED_INCOMPLETE');
      else await writeStatus(out, 'DOOMED');
      const err = new ComposeError('COMPOSE_FAILED', `${realFailures.length} of ${jobs.length} images failed: ${realFailures.map((f) => `${f.image}: ${f.message} (log: ${f.log})`).join('; ')}`);
      err.failures = realFailures;
      throw err;
    }
    await writeComposeIndex(out, info, images, 'FINISHED');
    return {
      id: info.id, outputDir: out, status: 'FINISHED', images: [...images].sort((a, b) => (a.path < b.path ? -1 : 1)),
      ...(shard ? { shard } : {}), jobs: parallel, sharing: sharing.stats, seconds: { total: (Date.now() - started) / 1000, images: seconds },
    };
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
    await sharing.dispose();
    rmSync(work, { recursive: true, force: true });
    guard.release();
  }
}

/**
 * Move a built image's outputs into `<arch>/images/` and its report files into
 * `metadata/<arch>/` (renames within the compose directory's file system).
 */
async function place(r: BuildResult, job: ComposeJob, out: string, images: ComposeImage[], log: ImageLog): Promise<void> {
  const imgDir = join(out, job.arch, 'images');
  const metaDir = join(out, 'metadata', job.arch);
  mkdirSync(imgDir, { recursive: true });
  mkdirSync(metaDir, { recursive: true });
  const jobDir = join(r.reportPath, '..');
  const outputs = new Set(r.outputs.map((o) => basename(o.path)));
  for (const d of readdirSync(jobDir, { withFileTypes: true })) {
    // The per-build CHECKSUM is superseded by the compose's; scratch (dot files, store directories) stays behind.
    const f = d.name;
    if (!d.isFile() || f === 'CHECKSUM' || f.startsWith('.') || outputs.has(f)) continue;
    await rename(join(jobDir, f), join(metaDir, f));
  }
  for (const o of r.outputs) {
    const name = basename(o.path);
    await rename(o.path, join(imgDir, name));
    const sde = r.report.sourceDateEpoch;
    images.push({
      name, arch: job.arch, type: job.type.name, format: o.format, path: `${job.arch}/images/${name}`, size: o.size,
      checksums: { sha256: o.sha256 }, sourceDateEpoch: sde, buildTime: new Date(sde * 1000).toISOString(),
    });
    log.info(`${job.arch}/images/${name}: ${o.format}, ${o.size} bytes, sha256 ${o.sha256}`);
  }
}

export { loadComposeConfig, parseComposeConfig, ComposeConfigError, type ComposeConfig, type ComposeImageType } from './config.js';
export { parseShard, shardOf, composeJobs, matrixOutputs, ShardError, type Shard, type ComposeJob, type MatrixOutput } from './matrix.js';
export type { ComposeImage, ComposeInfo, ImagesJson, ComposeStatus } from './metadata.js';
export type { SharingStats } from './share.js';
