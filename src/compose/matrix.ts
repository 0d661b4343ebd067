/**
 * The compose matrix: arches × image types × formats, one output each, and
 * the build jobs that produce them (one disk build per arch × image type,
 * serialized into the formats assigned to it).
 *
 * Shards take images by a hash of their identity `arch/image`, never by list
 * position: adding an image type, an arch or a format moves no existing
 * output to another shard. The unit is the image, not the output: an image's
 * formats are serializations of one disk, and splitting them over workers
 * would resolve, unpack and write that disk once per worker.
 */
import { createHash } from 'node:crypto';
import { IngotError } from '../errors.js';
import type { FormatName } from '../../formats/index.js';
import type { Arch } from '../spec/model.js';
import type { ComposeConfig, ComposeImageType } from './config.js';

export class ShardError extends IngotError {}

export interface Shard { index: number; count: number }

export interface MatrixOutput { arch: Arch; image: string; format: FormatName; id: string }

export interface ComposeJob {
  /** `arch/image`: names the log and progress events. */
  id: string;
  arch: Arch;
  type: ComposeImageType;
  formats: FormatName[];
  /** File name without extension: `<name>-<image>-<version>[-<label>].<arch>`. */
  baseName: string;
}

/** Largest shard count accepted (a Kubernetes Indexed Job's completions are bounded far below). */
export const MAX_SHARDS = 100_000;

/** Parse `I/N` (0 ≤ I < N). */
export function parseShard(text: string): Shard {
  const m = /^(\d{1,6})\/(\d{1,6})$/.exec(text.trim());
  const index = m ? Number(m[1]) : NaN, count = m ? Number(m[2]) : NaN;
  if (!m || count < 1 || count > MAX_SHARDS || index >= count) {
    throw new ShardError('BAD_SHARD', `--shard must be I/N with 0 ≤ I < N ≤ ${MAX_SHARDS}, not ${JSON.stringify(text)}`, { field: 'shard', actual: text });
  }
  return { index, count };
}

/** The shard (0…count-1) an image (`arch/image`) belongs to: the first 8 bytes of sha256(identity) modulo count. */
export function shardOf(id: string, count: number): number {
  const h = createHash('sha256').update(id).digest();
  return Number(h.readBigUInt64BE(0) % BigInt(count));
}

export function composeId(c: Pick<ComposeConfig, 'name' | 'version' | 'label'>): string {
  return `${c.name}-${c.version}${c.label ? `-${c.label}` : ''}`;
}

export function imageBaseName(c: Pick<ComposeConfig, 'name' | 'version' | 'label'>, image: string, arch: string): string {
  return `${c.name}-${image}-${c.version}${c.label ? `-${c.label}` : ''}.${arch}`;
}

/** Every output of the matrix, in a stable order (arch, then image type, then format as listed). */
export function matrixOutputs(c: ComposeConfig): MatrixOutput[] {
  const out: MatrixOutput[] = [];
  for (const arch of c.arches) {
    for (const t of c.images) {
      if (t.arches && !t.arches.includes(arch)) continue;
      for (const format of t.formats) out.push({ arch, image: t.name, format, id: `${arch}/${t.name}/${format}` });
    }
  }
  return out;
}

/** The build jobs (one per arch × image type) of a shard, or all of them without one. */
export function composeJobs(c: ComposeConfig, shard?: Shard): ComposeJob[] {
  const jobs = new Map<string, ComposeJob>();
  for (const o of matrixOutputs(c)) {
    const id = `${o.arch}/${o.image}`;
    if (shard && shardOf(id, shard.count) !== shard.index) continue;
    let j = jobs.get(id);
    if (!j) {
      j = { id, arch: o.arch, type: c.images.find((t) => t.name === o.image)!, formats: [], baseName: imageBaseName(c, o.image, o.arch) };
      jobs.set(id, j);
    }
    j.formats.push(o.format);
  }
  return [...jobs.values()];
}
