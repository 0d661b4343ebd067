import type { Command } from 'commander';
import { UsageError } from '../errors.js';
import type { ComposeProgressEvent } from '../compose/index.js';
import { progressView, type ProgressView } from './progress.js';

interface ComposeCliOptions {
  output?: string;
  jobs?: string;
  shard?: string;
  merge?: string[];
  keepGoing?: boolean;
  cacheDir?: string;
  json?: boolean;
  quiet?: boolean;
  verbose?: boolean;
}

/** One compose event onto the CLI's progress view (bars on a terminal, plain lines otherwise). */
export function showComposeProgress(view: ProgressView, e: ComposeProgressEvent): void {
  if (e.stage === 'queued') return;
  if (e.stage === 'finished' || e.stage === 'failed') {
    view.say(`[${e.images.done}/${e.images.total}] ${e.image} ${e.stage}${e.message ? ` ${e.message}` : ''}`);
    return;
  }
  view.event({ image: e.image, stage: e.stage, done: e.done, total: e.total, message: e.message });
}

export function registerCompose(program: Command): void {
  program
    .command('compose [compose-json]')
    .description('build a matrix of images (arches × image types × formats) from COMPOSE.json into a compose directory with CHECKSUM and images.json; or --merge shard outputs')
    .option('-o, --output <dir>', 'compose directory (must be absent or empty)')
    .option('-j, --jobs <n>', 'images built at once (default: from cores and free memory)')
    .option('--shard <I/N>', 'build only shard I of N (0-based; stable assignment by output identity)')
    .option('--merge <dirs...>', 'merge finished shard directories into --output instead of building')
    .option('--keep-going', 'keep building the other images when one fails (the compose still fails; the rest is indexed)')
    .option('--cache-dir <dir>', 'repository metadata and package cache shared by every image')
    .option('--json', 'print the result (images and sharing counts) as JSON')
    .option('-q, --quiet', 'print nothing but errors')
    .option('-v, --verbose', 'print every stage event')
    .action(async (file: string | undefined, o: ComposeCliOptions) => {
      if (!o.output) throw new UsageError('--output is required: the compose directory to create');
      if (o.merge) {
        if (file || o.shard || o.jobs) throw new UsageError('--merge takes only shard directories and --output');
        const { mergeComposes } = await import('../compose/merge.js');
        const r = await mergeComposes(o.merge, o.output);
        if (o.json) process.stdout.write(JSON.stringify(r, null, 2) + '\n');
        else if (!o.quiet) process.stdout.write(`merged ${o.merge.length} directories: ${r.images.length} images in ${r.outputDir}\n`);
        return;
      }
      if (!file) throw new UsageError('name the COMPOSE.json to build (or use --merge)');
      let jobs: number | undefined;
      if (o.jobs !== undefined) {
        jobs = Number(o.jobs);
        if (!Number.isInteger(jobs) || jobs < 1) throw new UsageError(`--jobs must be a whole number ≥ 1, not ${o.jobs}`);
      }
      const { compose, parseShard } = await import('../compose/index.js');
      let shard;
      try { shard = o.shard ? parseShard(o.shard) : undefined; } catch (e) { throw new UsageError((e as Error).message); }
      const view = await progressView({ quiet: o.quiet, verbose: o.verbose, json: o.json });
      let r;
      try {
        r = await compose({
          config: file, outputDir: o.output, jobs, shard, keepGoing: o.keepGoing, cacheDir: o.cacheDir,
          onProgress: (e) => showComposeProgress(view, e), logger: view.logger,
        });
      } finally {
        view.stop();
      }
      if (o.json) process.stdout.write(JSON.stringify(r, null, 2) + '\n');
      else if (!o.quiet) {
        for (const i of r.images) process.stdout.write(`${i.path}  ${i.format}  ${i.size} bytes  sha256 ${i.checksums.sha256}\n`);
        process.stdout.write(`compose ${r.id}${r.shard ? ` shard ${r.shard.index}/${r.shard.count}` : ''}: ${r.images.length} images in ${r.seconds.total.toFixed(1)} s (${r.jobs} at once) → ${r.outputDir}\n`);
      }
    });
}
