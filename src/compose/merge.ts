/**
 * `ingot compose --merge DIR... -o OUTDIR`: join the outputs of shards (or
 * of disjoint composes of the same compose id) into one compose directory
 * with one images.json and CHECKSUM.
 *
 * Refused with a ComposeMergeError: a directory that is not a FINISHED
 * compose, differing compose ids, a shard given twice or missing, an image
 * path in two inputs, a file (image, log, metadata) whose size or sha256
 * differs from its record. The merged directory is assembled under a
 * temporary name beside OUTDIR (images hard-linked, copied across file
 * systems) and renamed into place whole: it appears complete or not at all.
 */
import { sha256File } from '../util/hash.js';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmdirSync, statSync } from 'node:fs';
import { copyFile, link, mkdir } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { AbortedError, IngotError } from '../errors.js';
import { atomicOutput } from '../util/atomic.js';
import { byPath, readImagesJson, writeComposeIndex, type ComposeImage, type ComposeInfo } from './metadata.js';
import { shardOf } from './matrix.js';

export class ComposeMergeError extends IngotError {}

export interface MergeOptions {
  signal?: AbortSignal;
  /** Re-hash every image against its recorded sha256 (default true). */
  verify?: boolean;
}

export interface MergeResult { outputDir: string; info: ComposeInfo; images: ComposeImage[] }

/** Every regular file under `dir`, as `/`-separated relative paths. */
function walkFiles(dir: string, base = dir): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const d of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, d.name);
    if (d.isDirectory()) out.push(...walkFiles(p, base));
    else if (d.isFile()) out.push(relative(base, p).split('\\').join('/'));
  }
  return out;
}

async function linkOrCopy(src: string, dest: string): Promise<void> {
  await mkdir(dirname(dest), { recursive: true });
  try {
    await link(src, dest);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EXDEV' && (e as NodeJS.ErrnoException).code !== 'EPERM') throw e;
    await copyFile(src, dest);
  }
}

function sameCompose(a: ComposeInfo, b: ComposeInfo): 'id' | 'name' | 'version' | 'label' | null {
  for (const k of ['id', 'name', 'version', 'label'] as const) if (a[k] !== b[k]) return k;
  return null;
}

export async function mergeComposes(dirs: string[], outputDir: string, opts: MergeOptions = {}): Promise<MergeResult> {
  if (dirs.length === 0) throw new ComposeMergeError('MERGE_NO_INPUT', 'nothing to merge: name the shard directories');
  const inputs = dirs.map((d) => {
    const dir = resolve(d);
    let status = '';
    try { status = readFileSync(join(dir, 'STATUS'), 'utf8').trim(); } catch { /* reported below */ }
    if (status !== 'FINISHED') {
      throw new ComposeMergeError('MERGE_NOT_FINISHED', `not a finished compose (STATUS ${status ? JSON.stringify(status) : 'missing'})`, { file: dir, field: 'STATUS', expected: 'FINISHED', actual: status || '(none)' });
    }
    return { dir, doc: readImagesJson(join(dir, 'images.json')) };
  });

  const first = inputs[0]!.doc.compose;
  const info: ComposeInfo = { id: first.id, name: first.name, version: first.version, ...(first.label ? { label: first.label } : {}) };
  const seenShards = new Map<number, string>();
  const count = first.shard?.count;
  for (const { dir, doc } of inputs) {
    const k = sameCompose(first, doc.compose);
    if (k) throw new ComposeMergeError('MERGE_CONFLICT', `compose ${k} differs between inputs`, { file: join(dir, 'images.json'), field: `compose.${k}`, expected: String(first[k]), actual: String(doc.compose[k]) });
    const s = doc.compose.shard;
    if ((s === undefined) !== (count === undefined) || (s && s.count !== count)) {
      throw new ComposeMergeError('MERGE_CONFLICT', 'inputs are shards of different splits (or a shard and a whole compose)', { file: join(dir, 'images.json'), field: 'compose.shard', expected: count ? `I/${count}` : '(none)', actual: s ? `${s.index}/${s.count}` : '(none)' });
    }
    if (s) {
      if (seenShards.has(s.index)) throw new ComposeMergeError('MERGE_DUPLICATE_SHARD', `shard ${s.index}/${s.count} given twice (also ${seenShards.get(s.index)})`, { file: dir, field: 'compose.shard' });
      seenShards.set(s.index, dir);
      // Every image must be one its shard owns: a mislabelled directory would double or drop outputs.
      for (const [n, i] of doc.images.entries()) {
        if (shardOf(`${i.arch}/${i.type}`, s.count) !== s.index) {
          throw new ComposeMergeError('MERGE_WRONG_SHARD', `${i.path} does not belong to shard ${s.index}/${s.count}`, { file: join(dir, 'images.json'), field: `images[${n}]` });
        }
      }
    }
  }
  if (count !== undefined && seenShards.size !== count) {
    const missing = Array.from({ length: count }, (_, i) => i).filter((i) => !seenShards.has(i));
    throw new ComposeMergeError('MERGE_MISSING_SHARD', `shards missing: ${missing.map((i) => `${i}/${count}`).join(', ')}`, { field: 'compose.shard', expected: `${count} shards`, actual: `${seenShards.size}` });
  }

  // Every file of every input, by its path in the merged compose: no path twice.
  const owner = new Map<string, string>();
  const images: ComposeImage[] = [];
  for (const { dir, doc } of inputs) {
    for (const i of doc.images) images.push(i);
    for (const rel of walkFiles(dir)) {
      if (rel === 'images.json' || rel === 'CHECKSUM' || rel === 'STATUS') continue;
      const prev = owner.get(rel);
      if (prev) throw new ComposeMergeError('MERGE_DUPLICATE', `${rel} is in two inputs`, { file: join(dir, rel), expected: 'one owner', actual: `also in ${prev}` });
      owner.set(rel, dir);
    }
  }
  for (const i of images) {
    const dir = owner.get(i.path);
    if (!dir) throw new ComposeMergeError('MERGE_MISSING_IMAGE', `${i.path} is listed in images.json but absent`, { file: i.path });
    const path = join(dir, i.path);
    const size = statSync(path).size;
    if (size !== i.size) throw new ComposeMergeError('MERGE_CHECKSUM_MISMATCH', `${i.path} size differs from images.json`, { file: path, expected: String(i.size), actual: String(size) });
    if (opts.verify !== false) {
      if (opts.signal?.aborted) throw new AbortedError('merge aborted');
      const sum = await sha256File(path);
      if (sum !== i.checksums.sha256) throw new ComposeMergeError('MERGE_CHECKSUM_MISMATCH', `${i.path} sha256 differs from images.json`, { file: path, expected: i.checksums.sha256, actual: sum });
    }
  }

  const out = resolve(outputDir);
  if (existsSync(out)) {
    if (readdirSync(out).length > 0) throw new ComposeMergeError('MERGE_OUTPUT_NOT_EMPTY', 'the output directory exists and is not empty', { file: out });
    rmdirSync(out);
  }
  mkdirSync(dirname(out), { recursive: true });
  await atomicOutput(out, async (tmp) => {
    mkdirSync(tmp);
    for (const [rel, dir] of owner) {
      if (opts.signal?.aborted) throw new AbortedError('merge aborted');
      await linkOrCopy(join(dir, rel), join(tmp, rel));
    }
    await writeComposeIndex(tmp, info, images, 'FINISHED');
  });
  return { outputDir: out, info, images: images.sort(byPath) };
}
