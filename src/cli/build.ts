import type { Command } from 'commander';

export function registerBuild(program: Command): void {
  program
    .command('build [spec]')
    .description('build an image from a kickstart (.ks), TDL (.tdl/.xml) or JSON spec; with no SPEC, the embedded default image')
    .option('-o, --output <dir>', 'output directory', 'out')
    .option('--format <list>', 'output formats, comma-separated (raw,qcow2,vhd,vmdk,ova,raw.xz,...)')
    .action(async () => {
      process.stderr.write('ingot build: not yet — the build pipeline has not landed\n');
      process.exitCode = 1;
    });
}
