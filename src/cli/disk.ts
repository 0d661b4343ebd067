import type { Command } from 'commander';
import { UsageError } from '../errors.js';
import { formatFromName, openImage, parseFormatName, writeImage, type FormatName } from '../../formats/index.js';
import type { ClusterCodec } from '../../formats/codec.js';

/** "64K", "2M", "65536" → bytes. */
function parseSize(v: string, what: string): number {
  const m = /^(\d+)([KMG]?)i?B?$/i.exec(v.trim());
  if (!m) throw new UsageError(`${what}: not a size: ${JSON.stringify(v)}`);
  const mult = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 }[m[2]!.toUpperCase() as '' | 'K' | 'M' | 'G'];
  return Number(m[1]) * mult;
}

function fmtOpt(v: string | undefined): FormatName | undefined {
  if (v === undefined) return undefined;
  try { return parseFormatName(v); } catch (e) { throw new UsageError((e as Error).message); }
}

interface ConvertOpts {
  O?: string; f?: string; compress?: boolean; compressionType?: string; backing?: string; clusterSize?: string;
  subformat?: string; azure?: boolean; seed?: string; threads?: string; name?: string;
}

/** Commands of this group: `convert` and `info` (issue 4); partition commands are added by the disk work. */
export function registerDisk(program: Command): void {
  program
    .command('convert')
    .description('convert a disk image between formats (raw, qcow2, vhd, vmdk, ova, tar.gz, tar.xz, raw.xz, raw.gz, raw.zst; zip input)')
    .argument('<in>', 'input image (format detected from content)')
    .argument('<out>', 'output image (written to a temp file and renamed on success)')
    .option('-O, --output-format <format>', 'output format (default: from OUT\'s extension, else the input\'s format)')
    .option('-f, --format <format>', 'input format (default: detected)')
    .option('-c, --compress', 'compressed output (qcow2 compressed clusters, vmdk streamOptimized)')
    .option('--compression-type <type>', 'qcow2 compression: zlib (default) or zstd')
    .option('-B, --backing <file>', 'qcow2 overlay over this backing file (path as recorded, relative to OUT\'s directory)')
    .option('--cluster-size <n>', 'qcow2 cluster size (512..2M, default 64K)')
    .option('--subformat <name>', 'vhd: fixed|dynamic; vmdk: monolithicSparse|streamOptimized')
    .option('--azure', 'vhd for Azure: fixed, size must be a whole number of MiB')
    .option('--seed <text>', 'seed for disk UUIDs/CIDs (output is deterministic either way)')
    .option('--threads <n>', 'encoder threads for xz/zstd')
    .option('--name <name>', 'ova: appliance name')
    .action(async (input: string, output: string, o: ConvertOpts & { outputFormat?: string; format?: string }) => {
      const outFmt = fmtOpt(o.outputFormat) ?? formatFromName(output);
      const src = await openImage(input, { format: fmtOpt(o.format) });
      try {
        const format = outFmt ?? (src.format === 'zip' ? 'raw' : src.format);
        let compressionType: ClusterCodec | undefined;
        if (o.compressionType !== undefined) {
          if (o.compressionType === 'zlib' || o.compressionType === 'deflate') compressionType = 'deflate';
          else if (o.compressionType === 'zstd') compressionType = 'zstd';
          else throw new UsageError(`--compression-type must be zlib or zstd, not ${JSON.stringify(o.compressionType)}`);
        }
        if (o.backing && format !== 'qcow2') throw new UsageError('--backing needs qcow2 output');
        await writeImage(src, output, {
          format, compress: o.compress, compressionType,
          clusterSize: o.clusterSize ? parseSize(o.clusterSize, '--cluster-size') : undefined,
          backing: o.backing, subformat: o.subformat, azure: o.azure, seed: o.seed, name: o.name,
          threads: o.threads ? Number(o.threads) : undefined,
        });
      } finally {
        await src.close();
      }
    });

  program
    .command('info')
    .description('describe a disk image: format, virtual size, allocation, backing file, partitions')
    .argument('<image>')
    .option('-f, --format <format>', 'image format (default: detected)')
    .option('--json', 'machine-readable JSON')
    .action(async (image: string, o: { json?: boolean; format?: string }) => {
      const { inspect } = await import('../inspect.js');
      const info = await inspect(image, { format: fmtOpt(o.format) });
      if (o.json) { process.stdout.write(JSON.stringify(info, null, 2) + '\n'); return; }
      const lines = [
        `image: ${image}`, `format: ${info.format}${info.subformat ? ` (${info.subformat})` : ''}`,
        `virtual size: ${info.virtualSize} bytes`, `allocated: ${info.allocatedBytes} bytes`,
      ];
      if (info.clusterSize) lines.push(`cluster size: ${info.clusterSize}`);
      if (info.backingFile) lines.push(`backing file: ${info.backingFile}${info.backingFormat ? ` (${info.backingFormat})` : ''}`);
      if (info.member) lines.push(`member: ${info.member}`);
      for (const s of info.snapshots ?? []) lines.push(`snapshot ${s.id}: ${s.name}`);
      lines.push(`partition table: ${info.table ?? 'none'}`);
      for (const p of info.partitions) lines.push(`  ${p.index}: start ${p.start} size ${p.size} type ${p.typeName ?? p.type}${p.name ? ` "${p.name}"` : ''}`);
      process.stdout.write(lines.join('\n') + '\n');
    });
}
