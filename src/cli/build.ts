import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { UsageError } from '../errors.js';
import { buildImage } from '../build/pipeline.js';
import { progressView } from './progress.js';

interface BuildCliOptions {
  output: string;
  format?: string;
  repo: string[];
  arch?: string;
  bootTest?: boolean;
  expect?: string;
  timeout?: string;
  seed?: string;
  lenient?: boolean;
  lenientOwners?: boolean;
  cacheDir?: string;
  json?: boolean;
  quiet?: boolean;
  verbose?: boolean;
}

function hasProgram(name: string): boolean {
  return (process.env.PATH ?? '').split(':').some((d) => d && existsSync(join(d, name)));
}

const collect = (v: string, acc: string[]) => [...acc, v];

export function registerBuild(program: Command): void {
  program
    .command('build [spec]')
    .description('build an image from a kickstart (.ks), TDL (.tdl/.xml) or JSON spec; with no SPEC, the embedded default image (boot-tested when qemu is installed)')
    .option('-o, --output <dir>', 'output directory', 'out')
    .option('--format <list>', 'output formats, comma-separated: raw, qcow2, vhd, vmdk, ova, raw.xz, raw.gz, raw.zst, tar.gz, tar.xz, appliance')
    .option('--repo <url|dir>', 'add a repository (repeatable)', collect, [])
    .option('--arch <arch>', 'target architecture (x86_64, i686, …)')
    .option('--boot-test', 'boot the image in qemu after the build and wait for the marker')
    .option('--no-boot-test', 'never boot-test (the default image is boot-tested when qemu is installed)')
    .option('--expect <regex>', 'console text that means the boot succeeded', 'INGOT-BOOT-OK')
    .option('--timeout <seconds>', 'boot-test timeout', '180')
    .option('--seed <text>', 'seed for UUIDs and serials (default: derived from the spec and packages)')
    .option('--lenient', 'ignore unknown kickstart commands (reported as warnings)')
    .option('--lenient-owners', 'files owned by users/groups the image does not define become root with a warning (what rpm does) instead of failing')
    .option('--cache-dir <dir>', 'repository metadata and package cache')
    .option('--json', 'print the build report as JSON')
    .option('-q, --quiet', 'print nothing but errors')
    .option('-v, --verbose', 'print every stage event')
    .action(async (specPath: string | undefined, o: BuildCliOptions, cmd: Command) => {
      const explicitBoot = cmd.getOptionValueSource('bootTest') === 'cli';
      let defaultRepo: string | undefined;
      let bootTest = o.bootTest === true && explicitBoot;
      if (!specPath) {
        const { fixtureRepo } = await import('../../fixtures/repo.js');
        if (!o.quiet) process.stderr.write('making the fixture repository (first run only)…\n');
        defaultRepo = fixtureRepo();
        if (!explicitBoot) {
          bootTest = hasProgram('qemu-system-x86_64');
          if (!bootTest && !o.quiet) process.stderr.write('qemu is not installed: skipping the boot test (apt-get install qemu-system-x86 ovmf)\n');
        }
      }
      const timeout = Number(o.timeout);
      if (!Number.isFinite(timeout) || timeout <= 0) throw new UsageError(`--timeout must be a positive number of seconds, not ${o.timeout}`);
      let expect: RegExp;
      try { expect = new RegExp(o.expect ?? 'INGOT-BOOT-OK'); } catch { throw new UsageError(`--expect is not a valid regular expression: ${o.expect}`); }
      const view = await progressView(o);
      let r: Awaited<ReturnType<typeof buildImage>>;
      try {
        r = await buildImage({
          spec: specPath, outputDir: o.output, formats: o.format?.split(',').map((s) => s.trim()).filter(Boolean),
          repos: o.repo, arch: o.arch, lenient: o.lenient, lenientOwners: o.lenientOwners, seed: o.seed, cacheDir: o.cacheDir, defaultRepo,
          bootTest: bootTest ? { expect, timeout } : undefined, onProgress: (e) => view.event(e), logger: view.logger,
        });
      } finally {
        view.stop();
      }
      if (o.json) process.stdout.write(JSON.stringify(r.report, null, 2) + '\n');
      else if (!o.quiet) {
        for (const out of r.outputs) process.stdout.write(`${out.path}  ${out.format}  ${out.size} bytes  sha256 ${out.sha256}\n`);
        for (const b of r.report.bootTests) process.stdout.write(`boot test ${b.firmware} (${b.format}): ${b.ok ? 'ok' : 'FAILED'} in ${b.seconds.toFixed(1)} s\n`);
        process.stdout.write(`report: ${r.reportPath}\n`);
        if (r.report.warnings.length) process.stderr.write(`${r.report.warnings.length} warning(s), listed in the report${o.verbose ? `:\n${r.report.warnings.map((w) => `  ${w}`).join('\n')}` : ' (-v prints them)'}\n`);
      }
    });
}
