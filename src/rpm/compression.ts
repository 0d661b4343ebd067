/**
 * Payload decompression, streamed. The compressor is recognised by the
 * payload's magic bytes first (rpm 3 packages have no PAYLOADCOMPRESSOR tag yet
 * gzip payloads, and rpm -bb with w.ufdio omits the tag for uncompressed ones),
 * falling back to the tag. gzip/zlib and bzip2/xz/lzma/zstd decoders are
 * Node streams, so memory stays bounded by their windows.
 */
import { createInflateRaw } from 'node:zlib';
import type { Duplex, Readable } from 'node:stream';
import { createRequire } from 'node:module';
import { RpmFormatError } from './errors.js';

const require = createRequire(import.meta.url);

export type Compression = 'none' | 'gzip' | 'bzip2' | 'xz' | 'lzma' | 'zstd';

const TAG_NAMES: Record<string, Compression> = {
  gzip: 'gzip', bzip2: 'bzip2', xz: 'xz', lzma: 'lzma', zstd: 'zstd', 'zstd+dict': 'zstd',
};

/** Recognise the payload compression from its first bytes (≥ 6), else from the PAYLOADCOMPRESSOR tag. */
export function detectCompression(magic: Uint8Array, tag: string | null): Compression | null {
  const m = (...b: number[]) => b.every((x, i) => magic[i] === x);
  if (m(0x1f, 0x8b)) return 'gzip';
  if (m(0x42, 0x5a, 0x68)) return 'bzip2'; // "BZh"
  if (m(0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00)) return 'xz';
  if (m(0x28, 0xb5, 0x2f, 0xfd)) return 'zstd';
  if (m(0x30, 0x37, 0x30, 0x37, 0x30)) return 'none'; // "07070" cpio
  // .lzma ("alone") has no magic: properties byte (lc/lp/pb ≤ 224), then a little-endian dictionary size.
  if (tag === 'lzma' && magic.length >= 5 && magic[0]! < 225) return 'lzma';
  if (magic.length >= 13 && magic[0] === 0x5d && magic[1] === 0 && magic[2] === 0) return 'lzma';
  return tag !== null ? (TAG_NAMES[tag] ?? null) : null;
}

interface LzmaNative { createStream(kind: 'autoDecoder', opts: { synchronous?: boolean; memlimit?: number }): Duplex }
interface ZstdDCtx { decompressStream(dst: Uint8Array, src: Uint8Array): [number, number, number]; reset(directive: number): void }
interface ZstdBinding { DCtx: new () => ZstdDCtx }
interface Unbzip2 { (): Duplex }

export interface DecompressOptions {
  /**
   * Decode zstd into one reused output buffer instead of a fresh one per chunk:
   * each chunk is then valid only until the next is requested (the consumer
   * writes it out first). Saves an allocation, and its garbage, per MiB.
   */
  reuse?: boolean;
}

/** The decompressed bytes of `raw` (the compressed payload stream). */
export function decompress(c: Compression, raw: Readable, opts: DecompressOptions = {}): AsyncIterable<Buffer> {
  if (c === 'none') return chunksOf(raw);
  if (c === 'gzip') return gunzip(raw);
  if (c === 'zstd') {
    let reused: Buffer | undefined;
    const output = opts.reuse ? () => (reused ??= Buffer.allocUnsafe(ZSTD_OUT)) : () => Buffer.allocUnsafe(ZSTD_OUT);
    return (async function* () { try { yield* unzstd(raw, output); } finally { raw.destroy(); } })();
  }
  let dec: Duplex;
  switch (c) {
    case 'xz': case 'lzma': dec = (require('lzma-native') as LzmaNative).createStream('autoDecoder', { synchronous: false, memlimit: 1 << 28 }); break;
    case 'bzip2': dec = (require('unbzip2-stream') as Unbzip2)(); break;
  }
  raw.on('error', (e) => dec.destroy(e));
  raw.pipe(dec);
  return {
    [Symbol.asyncIterator]: async function* () {
      try { yield* chunksOf(dec); } finally { raw.destroy(); dec.destroy(); }
    },
  };
}

export const ZSTD_OUT = 1 << 20;
/** ZSTD_ResetDirective ZSTD_reset_session_only (zstd.h). */
const ZSTD_RESET_SESSION_ONLY = 1;
const idleDCtx: ZstdDCtx[] = [];

/**
 * zstd through zstd-napi's ZSTD_decompressStream binding, driven directly:
 * 1 MiB output chunks (the stream wrapper's 128 KiB ones cost a garbage
 * collection every few megabytes) and no Transform machinery in between.
 * `output()` supplies each output buffer (fresh, reused, or a slot of a
 * buffer shared with another thread); the yielded chunks are views of it.
 * Each input chunk is fully consumed before the next is pulled, so the
 * source may reuse its read buffer.
 */
export async function* unzstd(raw: AsyncIterable<Uint8Array>, output: () => Buffer | Promise<Buffer>): AsyncGenerator<Buffer> {
  const dctx = idleDCtx.pop() ?? new (require('zstd-napi/binding.js') as ZstdBinding).DCtx();
  let inFrame = false;
  try {
    let dst = await output();
    let used = 0;
    for await (const chunk of raw) {
      let src = chunk;
      while (src.length > 0) {
        const [ret, produced, consumed] = dctx.decompressStream(dst.subarray(used), src);
        used += produced;
        src = src.subarray(consumed);
        inFrame = ret !== 0;
        if (used === dst.length) { yield dst; dst = await output(); used = 0; }
        if (consumed === 0 && produced === 0) break;
      }
      // A partly filled buffer waits for the next input chunk (fewer, fuller chunks downstream).
    }
    if (used > 0) { yield dst.subarray(0, used); dst = await output(); used = 0; }
    // Drain what the decoder still holds for a complete input.
    for (;;) {
      const [ret, produced] = dctx.decompressStream(dst.subarray(used), Buffer.alloc(0));
      // With no input and nothing produced, the hint describes the *next* frame's header: not a truncation.
      if (produced === 0) break;
      used += produced;
      inFrame = ret !== 0;
      if (used > 0) { yield dst.subarray(0, used); dst = await output(); used = 0; }
    }
  } finally {
    // Contexts are reused: each holds a window (MiBs of native memory) that is otherwise freed only when GC runs.
    dctx.reset(ZSTD_RESET_SESSION_ONLY);
    if (idleDCtx.length < 4) idleDCtx.push(dctx);
  }
  if (inFrame) throw new RpmFormatError('DECOMPRESS', 'zstd payload ends inside a frame');
}

/** Parse a gzip member header (RFC 1952 §2.3); returns its length, or 0 when more bytes are needed. */
export function gzipHeaderLength(b: Buffer): number {
  if (b.length < 10) return 0;
  if (b[0] !== 0x1f || b[1] !== 0x8b || b[2] !== 8) throw new RpmFormatError('DECOMPRESS', 'bad gzip header', { actual: b.subarray(0, 3).toString('hex') });
  const flg = b[3]!;
  let p = 10;
  if (flg & 4) { if (b.length < p + 2) return 0; p += 2 + b.readUInt16LE(p); }
  for (const bit of [8, 16]) {
    if (flg & bit) { const z = b.indexOf(0, p); if (z < 0) return 0; p = z + 1; }
  }
  if (flg & 2) p += 2;
  return b.length >= p ? p : 0;
}

/**
 * gzip, one member, as rpm's gzdio reads it: bytes after the end of the deflate
 * stream are ignored (zlib's gunzip would fail on them; rpm_trailing.rpm has some).
 * Integrity is covered by the package digests, not the gzip CRC.
 */
async function* gunzip(raw: Readable): AsyncGenerator<Buffer> {
  const inf = createInflateRaw({ chunkSize: 256 * 1024 });
  let ended = false;
  inf.once('end', () => { ended = true; });
  const pump = async () => {
    let head: Buffer | null = Buffer.alloc(0);
    for await (const chunk of raw) {
      let c = chunk as Buffer;
      if (head) {
        head = Buffer.concat([head, c]);
        if (head.length > 1 << 20) throw new RpmFormatError('DECOMPRESS', 'gzip header too long');
        const n = gzipHeaderLength(head);
        if (n === 0) continue;
        c = head.subarray(n);
        head = null;
      }
      if (ended || inf.destroyed) break;
      if (!inf.write(c)) {
        await new Promise<void>((r) => {
          // Whichever fires first; the others are removed so waits do not pile up listeners.
          const done = () => { inf.off('drain', done); inf.off('end', done); inf.off('close', done); r(); };
          inf.once('drain', done); inf.once('end', done); inf.once('close', done);
        });
      }
    }
    if (head) throw new RpmFormatError('DECOMPRESS', 'truncated gzip header');
    if (!ended) inf.end();
  };
  pump().catch((e: unknown) => inf.destroy(e instanceof Error ? e : new Error(String(e))));
  try { yield* chunksOf(inf); } finally { raw.destroy(); inf.destroy(); }
}

/**
 * The chunks a stream emits, in order, with its error (if any) after them, so
 * data produced before a decoder fails still reaches the reader. Works with
 * old-style ('data'/'end' event) streams too. At most a few chunks are queued
 * (the stream is paused meanwhile), so memory stays bounded.
 */
export async function* chunksOf(s: NodeJS.ReadableStream): AsyncGenerator<Buffer> {
  const q: Buffer[] = [];
  let err: unknown = null;
  let ended = false;
  let paused = false;
  let wake: (() => void) | null = null;
  const poke = () => { const w = wake; wake = null; w?.(); };
  s.on('data', (c: Buffer) => { q.push(c); if (q.length >= 8 && !paused) { paused = true; s.pause(); } poke(); });
  s.on('end', () => { ended = true; poke(); });
  s.on('close', () => { ended = true; poke(); });
  s.on('error', (e: unknown) => { err ??= e; poke(); });
  s.resume();
  for (;;) {
    const c = q.shift();
    if (c) {
      if (q.length < 2 && paused) { paused = false; s.resume(); }
      yield c;
      continue;
    }
    if (err) throw err;
    if (ended) return;
    await new Promise<void>((r) => { wake = r; });
  }
}

export function decompressError(c: Compression, e: unknown, file?: string, offset?: number): RpmFormatError {
  const msg = e instanceof Error ? e.message : String(e);
  return new RpmFormatError('DECOMPRESS', `${c} payload decompression failed: ${msg.split('\n')[0]}`, { file, offset }, { cause: e });
}
