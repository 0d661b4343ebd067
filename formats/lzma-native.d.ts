// Minimal typings for the parts of lzma-native that ingot uses (the package ships none).
declare module 'lzma-native' {
  import type { Transform } from 'node:stream';
  export interface LzmaOptions { preset?: number; threads?: number; check?: number; memlimit?: number; blockSize?: number; bufsize?: number }
  export function createCompressor(options?: LzmaOptions): Transform;
  /** LZMA2 filter options (liblzma's lzma_options_lzma). */
  export interface Lzma2Options { dictSize: number; lc: number; lp: number; pb: number; mode: number; niceLen: number; mf: number; depth: number }
  export interface Filter { id: number; options: Lzma2Options }
  /** A single-threaded .xz stream encoder with explicit filters (lzma_stream_encoder). */
  export function createStream(coder: 'streamEncoder', options: { filters: Filter[]; check: number; bufsize?: number }): Transform;
  export function createDecompressor(options?: LzmaOptions): Transform;
  export interface FileIndexInfo { uncompressedSize: number; streamPadding: number; memusage: number; checks: number }
  export function parseFileIndexFD(fd: number, cb: (err: Error | null, info: FileIndexInfo) => void): void;
  export const CHECK_CRC64: number;
  export const CHECK_CRC32: number;
  export const FILTER_LZMA2: number;
  export const MODE_NORMAL: number;
  export const MODE_FAST: number;
  export const MF_BT4: number;
  export const MF_HC4: number;
  const lzma: {
    createStream: typeof createStream;
    FILTER_LZMA2: number;
    MODE_NORMAL: number;
    MODE_FAST: number;
    MF_BT4: number;
    MF_HC4: number;
    createCompressor: typeof createCompressor;
    createDecompressor: typeof createDecompressor;
    parseFileIndexFD: typeof parseFileIndexFD;
    CHECK_CRC64: number;
    CHECK_CRC32: number;
  };
  export default lzma;
}
