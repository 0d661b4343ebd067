/**
 * ingot's public API: everything the CLI does, for tools that embed it.
 *
 *   import { build, convert, inspect, boot } from 'ingot';
 *
 * Every function writes its outputs atomically (temp file + rename) and
 * throws an `IngotError` subclass carrying file/offset/field context.
 */
import { buildImage, type BuildOptions, type BuildResult } from './build/pipeline.js';
import { openImage, writeImage, type WriteOptions, type OpenOptions } from '../formats/index.js';
import { inspect as inspectImage } from './inspect.js';
import type { ImageInfo } from '../formats/info.js';
import { bootImage, type BootOptions, type BootResult } from './qemu/runner.js';

export type { BuildOptions, BuildResult, BuildReport, ProgressEvent, Logger, Stage, OutputFile } from './build/pipeline.js';
export type { ImageInfo, PartitionInfo } from '../formats/info.js';
export type { BootOptions, BootResult } from './qemu/runner.js';
export type { WriteOptions, OpenOptions, FormatName } from '../formats/index.js';
export type { ImageSpec, ImageSpecInput } from './spec/model.js';
export { IngotError, UsageError, AbortedError, PathEscapeError, MissingToolError } from './errors.js';
export { loadSpec } from './spec/index.js';
export { normalizeSpec } from './spec/model.js';

/** Build an image from a spec file, an ImageSpec, or (with `defaultRepo`) the default image. */
export function build(opts: BuildOptions): Promise<BuildResult> {
  return buildImage(opts);
}

/** Convert a disk image between formats (format of `input` detected unless given). */
export async function convert(input: string, output: string, opts: WriteOptions & { inputFormat?: OpenOptions['format'] }): Promise<void> {
  const src = await openImage(input, { format: opts.inputFormat });
  try {
    await writeImage(src, output, opts);
  } finally {
    await src.close();
  }
}

/** Describe a disk image: format, sizes, backing file, partitions and their filesystems. */
export function inspect(path: string, opts: OpenOptions = {}): Promise<ImageInfo> {
  return inspectImage(path, opts);
}

/** Boot a disk image in qemu through its own firmware and boot loader; resolves with the outcome. */
export function boot(opts: BootOptions): Promise<BootResult> {
  return bootImage(opts);
}

/** The embedded default image's repository (real Debian binaries rebuilt as RPMs; made on first use, cached). */
export { fixtureRepo, BOOT_MARKER } from '../fixtures/repo.js';
