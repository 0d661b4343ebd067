/**
 * Kernel module metadata: the .modinfo section is a sequence of NUL-ended
 * "key=value" strings (include/linux/moduleparam.h, MODULE_INFO); modpost
 * adds depends= (comma-separated module names), alias=, softdep=, vermagic=.
 * Modules may be stored plain (.ko), xz- (.ko.xz) or zstd-compressed (.ko.zst).
 */
import { gunzipSync } from 'node:zlib';
import { createRequire } from 'node:module';
import { decompress as zstdDecompress } from 'fzstd';
import { IngotError } from '../errors.js';
import { elfSection } from './elf.js';

/** The one lzma-native call used here (the package has no type declarations). */
const lzma = createRequire(import.meta.url)('lzma-native') as {
  decompress(input: Buffer, opts: object, cb: (out: Buffer | undefined, err?: Error) => void): void;
};

export class ModuleError extends IngotError {
  constructor(message: string, file?: string) {
    super('KMOD', message, { file });
  }
}

export interface ModInfo {
  /** Module name as the kernel knows it ('-' → '_'). */
  name: string;
  /** Every key=value in section order (keys repeat: alias, parm, firmware…). */
  fields: Array<[string, string]>;
  depends: string[];
  aliases: string[];
  /** softdep= "pre: a b post: c" as given. */
  softdeps: string[];
}

export const MODULE_SUFFIXES = ['.ko', '.ko.xz', '.ko.zst', '.ko.gz'] as const;

/** The module name of a path: basename without the .ko* suffix, dashes as underscores (kmod's modname_normalize). */
export function moduleNameOf(path: string): string {
  const base = path.slice(path.lastIndexOf('/') + 1);
  const m = /^(.*)\.ko(\.xz|\.zst|\.gz)?$/.exec(base);
  if (!m) throw new ModuleError('not a kernel module file name', path);
  return m[1]!.replace(/-/g, '_');
}

export function isModulePath(path: string): boolean {
  return /\.ko(\.xz|\.zst|\.gz)?$/.test(path);
}

/** Decompressed ELF bytes of a module file's contents (by its name's suffix). */
export async function moduleElf(bytes: Uint8Array, path: string): Promise<Uint8Array> {
  try {
    if (path.endsWith('.ko')) return bytes;
    if (path.endsWith('.ko.xz')) {
      return await new Promise<Uint8Array>((resolve, reject) => {
        lzma.decompress(Buffer.from(bytes), {}, (out: Buffer | undefined, err?: Error) => (err || !out ? reject(err ?? new Error('xz failed')) : resolve(out)));
      });
    }
    if (path.endsWith('.ko.zst')) return zstdDecompress(bytes);
    if (path.endsWith('.ko.gz')) return gunzipSync(bytes);
  } catch (e) {
    throw new ModuleError(`cannot decompress: ${(e as Error).message}`, path);
  }
  throw new ModuleError('not a kernel module file name', path);
}

/** Parse the .modinfo section of a module's ELF image. */
export function parseModinfo(elf: Uint8Array, path: string): ModInfo {
  const sec = elfSection(elf, '.modinfo', path);
  if (!sec) throw new ModuleError('no .modinfo section', path);
  const fields: Array<[string, string]> = [];
  let start = 0;
  for (let i = 0; i <= sec.length; i++) {
    if (i === sec.length || sec[i] === 0) {
      if (i > start) {
        const s = Buffer.from(sec.subarray(start, i)).toString('utf8');
        const eq = s.indexOf('=');
        if (eq > 0) fields.push([s.slice(0, eq), s.slice(eq + 1)]);
      }
      start = i + 1;
    }
  }
  const all = (k: string) => fields.filter(([key]) => key === k).map(([, v]) => v);
  const nameField = all('name')[0];
  return {
    name: (nameField ?? moduleNameOf(path)).replace(/-/g, '_'),
    fields,
    depends: all('depends').flatMap((d) => d.split(',')).filter(Boolean).map((d) => d.replace(/-/g, '_')),
    aliases: all('alias'),
    softdeps: all('softdep'),
  };
}
