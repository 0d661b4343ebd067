/**
 * Decompression of repository metadata: gzip (zlib), xz (liblzma through
 * lzma-native), zstd (fzstd, pure JS, streaming) and bzip2 (seek-bzip, pure
 * JS, whole buffer: bzip2 only appears for the sqlite files dnf ignores and
 * rare small XML). The kind is taken from the file name and checked against
 * the magic bytes.
 */
import { createReadStream } from 'node:fs';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { createRequire } from 'node:module';
import { Decompress as ZstdDecompress } from 'fzstd';
import { CompressionError, type RepoErrorContext } from './errors.js';

// lzma-native and seek-bzip ship no type declarations; only these entry points are used.
const require = createRequire(import.meta.url);
const lzma = require('lzma-native') as { createDecompressor(): Transform };
const Bunzip = require('seek-bzip') as { decode(input: Uint8Array, expectedSize?: number, multistream?: boolean): Buffer };

export type Compression = 'none' | 'gz' | 'xz' | 'zst' | 'bz2';

const MAGIC: [Compression, number[]][] = [
  ['gz', [0x1f, 0x8b]],
  ['xz', [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]],
  ['zst', [0x28, 0xb5, 0x2f, 0xfd]],
  ['bz2', [0x42, 0x5a, 0x68]],
];

/** Compression named by a file name's extension; throws for unknown compressed-looking extensions. */
export function compressionOf(path: string, ctx: RepoErrorContext = {}): Compression {
  const m = /\.([A-Za-z0-9]+)$/.exec(path);
  const ext = m ? m[1].toLowerCase() : '';
  switch (ext) {
    case 'gz': case 'gzip': return 'gz';
    case 'xz': return 'xz';
    case 'zst': case 'zstd': return 'zst';
    case 'bz2': return 'bz2';
    case 'xml': case 'yaml': case '': return 'none';
    default:
      if (/^(lz|lzma|lz4|z|7z|zip|br)$/.test(ext)) throw new CompressionError(`unsupported compression .${ext}`, { ...ctx, file: ctx.file ?? path });
      return 'none';
  }
}

/** The compression the first bytes announce ('none' when none matches). */
export function sniffCompression(head: Uint8Array): Compression {
  for (const [kind, magic] of MAGIC) {
    if (head.length >= magic.length && magic.every((b, i) => head[i] === b)) return kind;
  }
  return 'none';
}

class ZstdTransform extends Transform {
  private readonly z = new ZstdDecompress((chunk) => { this.push(Buffer.from(chunk)); });
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    try { this.z.push(chunk); cb(); } catch (e) { cb(e as Error); }
  }
  override _flush(cb: TransformCallback): void {
    try { this.z.push(new Uint8Array(0), true); cb(); } catch (e) { cb(e as Error); }
  }
}

class Bzip2Transform extends Transform {
  private readonly parts: Buffer[] = [];
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void { this.parts.push(chunk); cb(); }
  override _flush(cb: TransformCallback): void {
    try { this.push(Bunzip.decode(Buffer.concat(this.parts), undefined, true)); cb(); } catch (e) { cb(e as Error); }
  }
}

/** A decompressing transform for `kind`. */
export function decompressor(kind: Compression): Transform {
  switch (kind) {
    case 'gz': return createGunzip({ chunkSize: 1 << 20 });
    case 'xz': return lzma.createDecompressor();
    case 'zst': return new ZstdTransform();
    case 'bz2': return new Bzip2Transform();
    case 'none': return new Transform({ transform(c, _e, cb) { cb(null, c); } });
  }
}

/**
 * Open `path` decompressed. The extension picks the decoder; the magic bytes
 * must agree (a mislabelled file is an error naming both).
 */
export async function openDecompressed(path: string, ctx: RepoErrorContext = {}): Promise<Readable> {
  const byName = compressionOf(path, ctx);
  const fh = await import('node:fs/promises').then((m) => m.open(path, 'r'));
  const head = Buffer.alloc(8);
  const { bytesRead } = await fh.read(head, 0, 8, 0);
  await fh.close();
  const byMagic = sniffCompression(head.subarray(0, bytesRead));
  if (byName !== byMagic && !(byName === 'none' && byMagic === 'none')) {
    if (byName === 'none') throw new CompressionError(`file is ${byMagic}-compressed but its name has no matching extension`, { ...ctx, file: ctx.file ?? path });
    throw new CompressionError(`file named .${byName} does not start with ${byName} magic`, { ...ctx, file: ctx.file ?? path, expected: byName, actual: byMagic });
  }
  const src = createReadStream(path, { highWaterMark: 1 << 20 });
  if (byName === 'none') return src;
  const d = decompressor(byName);
  src.on('error', (e) => d.destroy(e));
  return src.pipe(d);
}
