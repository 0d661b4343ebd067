/**
 * Block codecs used inside image formats: raw deflate (qcow2 compression
 * type 0: window of 2^12 bytes, no zlib header — qcow2.rst "Compressed
 * Clusters"), zlib/RFC 1950 (VMDK grains) and zstd (qcow2 compression type 1,
 * one zstd frame per cluster). Compression runs on the libuv thread pool
 * (deflate) so several clusters compress in parallel.
 */
import { createRequire } from 'node:module';
import { promisify } from 'node:util';
import zlib from 'node:zlib';

const require = createRequire(import.meta.url);

interface ZstdBinding {
  compress(dst: Uint8Array, src: Uint8Array, level: number): number;
  decompress(dst: Uint8Array, src: Uint8Array): number;
  findFrameCompressedSize(frame: Uint8Array): number;
  compressBound(n: number): number;
}
let zstdBinding: ZstdBinding | undefined;
function zstd(): ZstdBinding {
  // zstd-napi builds libzstd from its bundled source (node-gyp); loaded lazily so
  // formats without zstd never need it.
  zstdBinding ??= require('zstd-napi/binding.js') as ZstdBinding;
  return zstdBinding;
}

const deflateRawP = promisify(zlib.deflateRaw);
const deflateP = promisify(zlib.deflate);

export type ClusterCodec = 'deflate' | 'zstd';

/** Compress one cluster for qcow2 (`deflate`: raw, window bits 12, as qemu's reader expects). */
export async function compressCluster(codec: ClusterCodec, data: Uint8Array): Promise<Buffer> {
  if (codec === 'deflate') return deflateRawP(data, { windowBits: 12, memLevel: 9, level: zlib.constants.Z_DEFAULT_COMPRESSION });
  const z = zstd();
  const out = Buffer.allocUnsafe(z.compressBound(data.length));
  const n = z.compress(out, data, 3);
  return out.subarray(0, n);
}

/**
 * Decompress one qcow2 cluster into `out` (exactly `out.length` bytes).
 * `data` may carry trailing bytes up to the sector boundary. Returns false when
 * the stream is corrupt or does not fill the cluster.
 */
export function decompressCluster(codec: ClusterCodec, data: Uint8Array, out: Buffer): boolean {
  try {
    if (codec === 'deflate') {
      const r = zlib.inflateRawSync(data, { maxOutputLength: out.length, finishFlush: zlib.constants.Z_SYNC_FLUSH });
      if (r.length !== out.length) return false;
      r.copy(out);
      return true;
    }
    const z = zstd();
    const frame = z.findFrameCompressedSize(data);
    return z.decompress(out, data.subarray(0, frame)) === out.length;
  } catch {
    return false;
  }
}

/** zlib (RFC 1950) stream, as VMDK compressed grains store (vmdk spec, "Compressed grains"). */
export function deflateZlib(data: Uint8Array): Promise<Buffer> {
  return deflateP(data);
}

export function inflateZlib(data: Uint8Array, max: number): Buffer | null {
  try {
    return zlib.inflateSync(data, { maxOutputLength: max, finishFlush: zlib.constants.Z_SYNC_FLUSH });
  } catch {
    return null;
  }
}
