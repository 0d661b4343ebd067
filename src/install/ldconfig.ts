/**
 * /etc/ld.so.cache without running ldconfig: scan the library directories
 * (the target's trusted dirs plus /etc/ld.so.conf and its includes), read
 * each shared object's ELF header, PT_DYNAMIC and DT_SONAME, and write the
 * cache in glibc's "new" format (`glibc-ld.so.cache` version `1.1`, what
 * ldconfig writes by default since glibc 2.32): a 48-byte header, 24-byte
 * entries sorted as ld.so's binary search expects (descending by
 * `_dl_cache_libcmp`, which compares digit runs as numbers), the string
 * table, and an extension section naming the generator. Like ldconfig it
 * also creates missing soname symlinks.
 *
 * Facts from glibc's elf/cache.c, sysdeps/generic/dl-cache.h and the ELF
 * gABI; checked against Debian's `ldconfig -p -C`.
 */
import { posix } from 'node:path';
import { Struct } from '../binary/struct.js';
import { StagingTree, BufferContent, type FileContent, type Inode } from '../tree/tree.js';
import { IngotError } from '../errors.js';
import { readTreeText, listTreeDir } from './treetext.js';

export class LdCacheError extends IngotError {}

// ---- ELF (gABI "ELF Header", "Program Header", "Dynamic Section") ----------

const EI_CLASS = 4, EI_DATA = 5;
const ELFCLASS32 = 1, ELFCLASS64 = 2;
const ELFDATA2LSB = 1, ELFDATA2MSB = 2;
const ET_DYN = 3;
const PT_LOAD = 1, PT_DYNAMIC = 2;
const DT_NULL = 0, DT_NEEDED = 1, DT_STRTAB = 5, DT_STRSZ = 10, DT_SONAME = 14;
export const EM_386 = 3, EM_PPC64 = 21, EM_S390 = 22, EM_ARM = 40, EM_X86_64 = 62, EM_AARCH64 = 183, EM_RISCV = 243;

type Endian = 'le' | 'be';
const u16 = (e: Endian) => (e === 'le' ? 'u16le' : 'u16be') as 'u16le';
const u32 = (e: Endian) => (e === 'le' ? 'u32le' : 'u32be') as 'u32le';
const u64 = (e: Endian) => (e === 'le' ? 'u64le' : 'u64be') as 'u64le';

const elfStructCache = new Map<string, ReturnType<typeof makeElfStructs>>();
function elfStructs(cls: 32 | 64, e: Endian): ReturnType<typeof makeElfStructs> {
  const key = `${cls}${e}`;
  let s = elfStructCache.get(key);
  if (!s) { s = makeElfStructs(cls, e); elfStructCache.set(key, s); }
  return s;
}

function makeElfStructs(cls: 32 | 64, e: Endian) {
  if (cls === 64) {
    return {
      ehdr: new Struct('Elf64_Ehdr', 64, { e_type: { offset: 16, type: u16(e) }, e_machine: { offset: 18, type: u16(e) }, e_phoff: { offset: 32, type: u64(e) }, e_phentsize: { offset: 54, type: u16(e) }, e_phnum: { offset: 56, type: u16(e) } }),
      phdr: new Struct('Elf64_Phdr', 56, { p_type: { offset: 0, type: u32(e) }, p_offset: { offset: 8, type: u64(e) }, p_vaddr: { offset: 16, type: u64(e) }, p_filesz: { offset: 32, type: u64(e) } }),
      dyn: new Struct('Elf64_Dyn', 16, { d_tag: { offset: 0, type: u64(e) }, d_val: { offset: 8, type: u64(e) } }),
    };
  }
  return {
    ehdr: new Struct('Elf32_Ehdr', 52, { e_type: { offset: 16, type: u16(e) }, e_machine: { offset: 18, type: u16(e) }, e_phoff: { offset: 28, type: u32(e) }, e_phentsize: { offset: 42, type: u16(e) }, e_phnum: { offset: 44, type: u16(e) } }),
    phdr: new Struct('Elf32_Phdr', 32, { p_type: { offset: 0, type: u32(e) }, p_offset: { offset: 4, type: u32(e) }, p_vaddr: { offset: 8, type: u32(e) }, p_filesz: { offset: 16, type: u32(e) } }),
    dyn: new Struct('Elf32_Dyn', 8, { d_tag: { offset: 0, type: u32(e) }, d_val: { offset: 4, type: u32(e) } }),
  };
}

export interface ElfSharedObject {
  elfClass: 32 | 64;
  machine: number;
  soname?: string;
  needed: string[];
}

async function readAt(c: FileContent, pos: number, len: number): Promise<Uint8Array> {
  if (pos < 0 || len < 0 || pos + len > c.size) throw new LdCacheError('ELF_TRUNCATED', `ELF structure outside the file (${pos}+${len} > ${c.size})`);
  const buf = new Uint8Array(len);
  let off = 0;
  while (off < len) {
    const n = await c.read(buf.subarray(off), pos + off);
    if (n <= 0) throw new LdCacheError('ELF_TRUNCATED', 'short read');
    off += n;
  }
  return buf;
}

const toNum = (v: number | bigint): number => {
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw new LdCacheError('ELF_BAD_VALUE', 'ELF value out of range');
  return n;
};

/** Read the dynamic-linking facts of an ELF shared object; undefined when it is not one (linker scripts, archives, executables without PT_DYNAMIC). */
export async function readElfSharedObject(content: FileContent): Promise<ElfSharedObject | undefined> {
  if (content.size < 52) return undefined;
  const ident = await readAt(content, 0, 16);
  if (ident[0] !== 0x7f || ident[1] !== 0x45 || ident[2] !== 0x4c || ident[3] !== 0x46) return undefined;
  const cls = ident[EI_CLASS] === ELFCLASS64 ? 64 : ident[EI_CLASS] === ELFCLASS32 ? 32 : undefined;
  const endian: Endian | undefined = ident[EI_DATA] === ELFDATA2LSB ? 'le' : ident[EI_DATA] === ELFDATA2MSB ? 'be' : undefined;
  if (!cls || !endian) return undefined;
  const S = elfStructs(cls, endian);
  const eh = S.ehdr.decode(await readAt(content, 0, S.ehdr.size));
  if (eh.e_type !== ET_DYN || eh.e_phentsize < S.phdr.size || eh.e_phnum === 0 || eh.e_phnum > 4096) return undefined;
  const phoff = toNum(eh.e_phoff);
  const ph = await readAt(content, phoff, eh.e_phentsize * eh.e_phnum);
  const loads: { vaddr: number; offset: number; filesz: number }[] = [];
  let dynamic: { offset: number; size: number } | undefined;
  for (let i = 0; i < eh.e_phnum; i++) {
    const p = S.phdr.decode(ph, i * eh.e_phentsize);
    if (p.p_type === PT_LOAD) loads.push({ vaddr: toNum(p.p_vaddr), offset: toNum(p.p_offset), filesz: toNum(p.p_filesz) });
    else if (p.p_type === PT_DYNAMIC) dynamic = { offset: toNum(p.p_offset), size: toNum(p.p_filesz) };
  }
  if (!dynamic || dynamic.size === 0) return undefined;
  const dynBytes = await readAt(content, dynamic.offset, Math.min(dynamic.size, 1 << 20));
  let strtab: number | undefined;
  let strsz = 0;
  let soname: number | undefined;
  const needed: number[] = [];
  for (let at = 0; at + S.dyn.size <= dynBytes.length; at += S.dyn.size) {
    const d = S.dyn.decode(dynBytes, at);
    const tag = Number(d.d_tag);
    if (tag === DT_NULL) break;
    if (tag === DT_STRTAB) strtab = toNum(d.d_val);
    else if (tag === DT_STRSZ) strsz = toNum(d.d_val);
    else if (tag === DT_SONAME) soname = toNum(d.d_val);
    else if (tag === DT_NEEDED) needed.push(toNum(d.d_val));
  }
  const out: ElfSharedObject = { elfClass: cls, machine: eh.e_machine, needed: [] };
  if (strtab === undefined) return out;
  // DT_STRTAB is a virtual address: map it to a file offset through the PT_LOAD that contains it.
  const seg = loads.find((l) => strtab! >= l.vaddr && strtab! < l.vaddr + l.filesz);
  if (!seg) return out;
  const strOff = seg.offset + (strtab - seg.vaddr);
  // Only 32-bit objects need DT_NEEDED (for the libc6 flag); read the string table once, bounded.
  const wanted = [...(soname !== undefined ? [soname] : []), ...(cls === 32 ? needed : [])];
  if (!wanted.length) return out;
  const size = Math.min(strsz || 1 << 16, 1 << 20, content.size - strOff, Math.max(...wanted) + 4096);
  const table = await readAt(content, strOff, Math.max(0, size));
  const str = (rel: number): string => {
    const end = table.indexOf(0, rel);
    return Buffer.from(table.subarray(rel, end < 0 ? table.length : end)).toString('latin1');
  };
  if (soname !== undefined && soname < table.length) out.soname = str(soname);
  if (cls === 32) for (const n of needed) if (n < table.length) out.needed.push(str(n));
  return out;
}

// ---- cache format (sysdeps/generic/dl-cache.h) -------------------------------

export const CACHEMAGIC_NEW = 'glibc-ld.so.cache';
export const CACHE_VERSION = '1.1';
const FLAG_ELF = 0x0001, FLAG_ELF_LIBC6 = 0x0003;
const FLAG_X8664_LIB64 = 0x0300, FLAG_X8664_LIBX32 = 0x0800, FLAG_S390_LIB64 = 0x0400, FLAG_POWERPC_LIB64 = 0x0500;
const FLAG_ARM_LIBHF = 0x0900, FLAG_AARCH64_LIB64 = 0x0a00, FLAG_RISCV_FLOAT_ABI_DOUBLE = 0x1000;
const CACHE_FLAGS_LITTLE = 2, CACHE_FLAGS_BIG = 3;
const CACHE_EXTENSION_MAGIC = 0xeaa42174;
const CACHE_EXTENSION_TAG_GENERATOR = 0;

const CacheFileNew = (e: Endian) => new Struct('cache_file_new', 48, {
  magic: { offset: 0, type: { ascii: 17 } }, version: { offset: 17, type: { ascii: 3 } }, nlibs: { offset: 20, type: u32(e) },
  len_strings: { offset: 24, type: u32(e) }, flags: { offset: 28, type: 'u8' }, extension_offset: { offset: 32, type: u32(e) },
});
const FileEntryNew = (e: Endian) => new Struct('file_entry_new', 24, {
  flags: { offset: 0, type: u32(e) }, key: { offset: 4, type: u32(e) }, value: { offset: 8, type: u32(e) }, osversion: { offset: 12, type: u32(e) }, hwcap: { offset: 16, type: u64(e) },
});

/** The cache entry flags ldconfig gives an object (ELF class + machine, libc6 for 32-bit objects that need it). */
export function cacheFlags(so: ElfSharedObject): number {
  if (so.elfClass === 64) {
    switch (so.machine) {
      case EM_X86_64: return FLAG_ELF_LIBC6 | FLAG_X8664_LIB64;
      case EM_AARCH64: return FLAG_ELF_LIBC6 | FLAG_AARCH64_LIB64;
      case EM_PPC64: return FLAG_ELF_LIBC6 | FLAG_POWERPC_LIB64;
      case EM_S390: return FLAG_ELF_LIBC6 | FLAG_S390_LIB64;
      case EM_RISCV: return FLAG_ELF_LIBC6 | FLAG_RISCV_FLOAT_ABI_DOUBLE;
      default: return FLAG_ELF_LIBC6;
    }
  }
  if (so.machine === EM_X86_64) return FLAG_ELF_LIBC6 | FLAG_X8664_LIBX32;
  const libc6 = so.needed.includes('libc.so.6') || /^(libc\.so\.6|ld-linux.*\.so\.\d+)$/.test(so.soname ?? '');
  if (so.machine === EM_ARM) return (libc6 ? FLAG_ELF_LIBC6 : FLAG_ELF) | FLAG_ARM_LIBHF;
  return libc6 ? FLAG_ELF_LIBC6 : FLAG_ELF;
}

/** ld.so's library-name order: like strcmp, but runs of digits compare as numbers. */
export function dlCacheLibcmp(a: string, b: string): number {
  let i = 0, j = 0;
  const digit = (s: string, k: number): boolean => k < s.length && s.charCodeAt(k) >= 48 && s.charCodeAt(k) <= 57;
  while (i < a.length) {
    if (digit(a, i)) {
      if (!digit(b, j)) return 1;
      let va = 0, vb = 0;
      while (digit(a, i)) va = va * 10 + (a.charCodeAt(i++) - 48);
      while (digit(b, j)) vb = vb * 10 + (b.charCodeAt(j++) - 48);
      if (va !== vb) return va - vb;
    } else if (digit(b, j)) {
      return -1;
    } else if (j >= b.length || a[i] !== b[j]) {
      return a.charCodeAt(i) - (j < b.length ? b.charCodeAt(j) : 0);
    } else { i++; j++; }
  }
  return j < b.length ? -b.charCodeAt(j) : 0;
}

export interface LdCacheEntry { soname: string; path: string; flags: number }

/** Trusted directories ldconfig scans besides ld.so.conf (glibc's slibdir/libdir for the target). */
export function systemLibDirs(arch: string): string[] {
  return ['x86_64', 'aarch64', 'ppc64le', 'ppc64', 's390x', 'riscv64'].includes(arch) ? ['/lib64', '/usr/lib64'] : ['/lib', '/usr/lib'];
}

/** Directories from ld.so.conf: one per line, `include` globs relative to the file's directory, `#` comments. */
export async function readLdSoConf(tree: StagingTree, path = '/etc/ld.so.conf', depth = 0, seen = new Set<string>()): Promise<string[]> {
  if (depth > 8 || seen.has(path)) return [];
  seen.add(path);
  const text = await readTreeText(tree, path);
  if (text === undefined) return [];
  const dirs: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    if (!line) continue;
    const inc = /^include\s+(.+)$/.exec(line);
    if (inc) {
      for (const pat of inc[1]!.split(/\s+/)) {
        const full = pat.startsWith('/') ? pat : posix.join(posix.dirname(path), pat);
        for (const f of globTree(tree, full)) dirs.push(...(await readLdSoConf(tree, f, depth + 1, seen)));
      }
      continue;
    }
    if (/^hwcap\s/.test(line)) continue;
    // One directory per line (glibc's parse_conf); a legacy `=TYPE` suffix is ignored.
    dirs.push(line.replace(/=.*$/, ''));
  }
  return dirs;
}

/** glob(3) for one directory level pattern (`/etc/ld.so.conf.d/*.conf`), results sorted. */
function globTree(tree: StagingTree, pattern: string): string[] {
  const dir = posix.dirname(pattern);
  const base = posix.basename(pattern);
  if (!/[*?[]/.test(base)) return tree.lookup(pattern) ? [pattern] : [];
  const re = new RegExp('^' + base.replace(/[.+^${}()|\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]') + '$');
  return listTreeDir(tree, dir).filter((n) => !n.startsWith('.') && re.test(n)).map((n) => `${dir}/${n}`);
}

/** glibc's `_dl_is_dso`-style name filter: lib*.so* or ld-*.so*. */
function looksLikeDso(name: string): boolean {
  return (name.startsWith('lib') || name.startsWith('ld-')) && /\.so(\.|$)/.test(name);
}

export interface LdCacheOptions {
  arch?: string;
  /** Create missing soname symlinks, as ldconfig does (default true). */
  createLinks?: boolean;
  /** Generator text stored in the cache's extension section. */
  generator?: string;
}

/** Scan the tree and compute the cache entries (and create soname links). */
export async function scanLibraries(tree: StagingTree, opts: LdCacheOptions = {}): Promise<{ entries: LdCacheEntry[]; warnings: string[] }> {
  const warnings: string[] = [];
  const dirs = [...(await readLdSoConf(tree)), ...systemLibDirs(opts.arch ?? 'x86_64')];
  const seenDirs = new Set<number>();
  const entries: LdCacheEntry[] = [];
  for (const dir of dirs) {
    const dnode = tree.lookup(dir);
    if (!dnode || dnode.type !== 'dir' || seenDirs.has(dnode.id)) continue;
    seenDirs.add(dnode.id);
    // soname → chosen directory entry: a file is preferred to a link, else the
    // "newer" name by _dl_cache_libcmp (ldconfig's search_dir rule).
    const bySoname = new Map<string, { file: string; isLink: boolean; flags: number }>();
    for (const name of listTreeDir(tree, dir)) {
      if (!looksLikeDso(name)) continue;
      const node: Inode | undefined = tree.lookup(`${dir}/${name}`);
      if (!node || node.type !== 'file' || !node.content) continue;
      let so: ElfSharedObject | undefined;
      try { so = await readElfSharedObject(node.content); } catch (e) { warnings.push(`${dir}/${name}: ${(e as Error).message}`); continue; }
      if (!so) continue;
      // A symlink counts as a link (and is keyed by its own name) only when it is the
      // soname link or the linker's `.so` link (libfoo.so → libfoo.so.1…).
      let soname = so.soname ?? name;
      let isLink = tree.lookup(`${dir}/${name}`, { follow: false })!.type === 'symlink';
      if (isLink && name !== soname && !(name.endsWith('.so') && soname.startsWith(name))) isLink = false;
      if (isLink) soname = name;
      const prev = bySoname.get(soname);
      if (!prev || (!isLink && prev.isLink) || (isLink === prev.isLink && dlCacheLibcmp(prev.file, name) < 0)) {
        bySoname.set(soname, { file: name, isLink, flags: cacheFlags(so) });
      }
    }
    for (const [soname, { file, flags }] of bySoname) {
      const linkPath = `${dir}/${soname}`;
      if (opts.createLinks ?? true) {
        const existing = tree.lookup(linkPath, { follow: false });
        if (!existing && soname !== file) tree.symlink(linkPath, file);
      }
      entries.push({ soname, path: linkPath, flags });
    }
  }
  entries.sort((a, b) => dlCacheLibcmp(b.soname, a.soname) || b.flags - a.flags);
  return { entries, warnings };
}

/** Serialize entries in the new cache format (little-endian unless `endian` says otherwise). */
export function encodeLdCache(entries: LdCacheEntry[], opts: { endian?: Endian; generator?: string } = {}): Uint8Array {
  const e = opts.endian ?? 'le';
  const H = CacheFileNew(e);
  const E = FileEntryNew(e);
  const stringsStart = H.size + entries.length * E.size;
  // Each value path is stored once; its key (the soname) is the path's final component, so it shares the bytes.
  const strings: Buffer[] = [];
  const offsets: { key: number; value: number }[] = [];
  let pos = stringsStart;
  for (const en of entries) {
    const b = Buffer.from(`${en.path}\0`, 'utf8');
    offsets.push({ value: pos, key: pos + Buffer.byteLength(en.path) - Buffer.byteLength(en.soname) });
    strings.push(b);
    pos += b.length;
  }
  const lenStrings = pos - stringsStart;
  const extOffset = (pos + 3) & ~3;
  const generator = Buffer.from(opts.generator ?? 'ingot', 'utf8');
  const extHeader = 8 + 16;
  const total = extOffset + extHeader + generator.length;
  const out = new Uint8Array(total);
  H.encode({ magic: CACHEMAGIC_NEW, version: CACHE_VERSION, nlibs: entries.length, len_strings: lenStrings, flags: e === 'le' ? CACHE_FLAGS_LITTLE : CACHE_FLAGS_BIG, extension_offset: extOffset }, out, 0);
  entries.forEach((en, i) => E.encode({ flags: en.flags, key: offsets[i]!.key, value: offsets[i]!.value, osversion: 0, hwcap: 0n }, out, H.size + i * E.size));
  let p = stringsStart;
  for (const b of strings) { out.set(b, p); p += b.length; }
  const dv = new DataView(out.buffer);
  const le = e === 'le';
  dv.setUint32(extOffset, CACHE_EXTENSION_MAGIC, le);
  dv.setUint32(extOffset + 4, 1, le);
  dv.setUint32(extOffset + 8, CACHE_EXTENSION_TAG_GENERATOR, le);
  dv.setUint32(extOffset + 12, 0, le);
  dv.setUint32(extOffset + 16, extOffset + extHeader, le);
  dv.setUint32(extOffset + 20, generator.length, le);
  out.set(generator, extOffset + extHeader);
  return out;
}

/** `ldconfig -r ROOT`: write /etc/ld.so.cache (and soname links) into the tree. */
export async function writeLdSoCache(tree: StagingTree, opts: LdCacheOptions = {}): Promise<{ entries: LdCacheEntry[]; warnings: string[] }> {
  const res = await scanLibraries(tree, opts);
  const arch = opts.arch ?? 'x86_64';
  const endian: Endian = arch === 's390x' || arch === 'ppc64' ? 'be' : 'le';
  tree.mkdirp('/etc');
  tree.addFile('/etc/ld.so.cache', new BufferContent(encodeLdCache(res.entries, { endian, generator: opts.generator ?? 'ingot' })), { mode: 0o644 });
  return res;
}
