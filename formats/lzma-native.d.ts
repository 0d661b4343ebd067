// Minimal typings for the parts of lzma-native that ingot uses (the package ships none).
declare module 'lzma-native' {
  import type { Transform } from 'node:stream';
  export interface LzmaOptions { preset?: number; threads?: number; check?: number; memlimit?: number; blockSize?: number; bufsize?: number }
  export function createCompressor(options?: LzmaOptions): Transform;
  export function createDecompressor(options?: LzmaOptions): Transform;
  export interface FileIndexInfo { uncompressedSize: number; streamPadding: number; memusage: number; checks: number }
  export function parseFileIndexFD(fd: number, cb: (err: Error | null, info: FileIndexInfo) => void): void;
  export const CHECK_CRC64: number;
  export const CHECK_CRC32: number;
  const lzma: {
    createCompressor: typeof createCompressor;
    createDecompressor: typeof createDecompressor;
    parseFileIndexFD: typeof parseFileIndexFD;
    CHECK_CRC64: number;
    CHECK_CRC32: number;
  };
  export default lzma;
}
