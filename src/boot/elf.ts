/**
 * Just enough ELF to find a section's bytes (System V ABI, "ELF Header" and
 * "Sections"): kernel modules are relocatable ELF objects whose .modinfo
 * section holds the module's metadata.
 */
import { IngotError } from '../errors.js';
import { Struct } from '../binary/struct.js';

export class ElfError extends IngotError {
  constructor(message: string, file?: string, offset?: number) {
    super('ELF_FORMAT', message, { file, offset });
  }
}

const EI_CLASS = 4, EI_DATA = 5;
const ELFCLASS32 = 1, ELFCLASS64 = 2, ELFDATA2LSB = 1;

const Elf64Ehdr = new Struct('Elf64_Ehdr', 64, {
  e_machine: { offset: 18, type: 'u16le' },
  e_shoff: { offset: 40, type: 'u64le' },
  e_shentsize: { offset: 58, type: 'u16le' },
  e_shnum: { offset: 60, type: 'u16le' },
  e_shstrndx: { offset: 62, type: 'u16le' },
});
const Elf32Ehdr = new Struct('Elf32_Ehdr', 52, {
  e_machine: { offset: 18, type: 'u16le' },
  e_shoff: { offset: 32, type: 'u32le' },
  e_shentsize: { offset: 46, type: 'u16le' },
  e_shnum: { offset: 48, type: 'u16le' },
  e_shstrndx: { offset: 50, type: 'u16le' },
});
const Elf64Shdr = new Struct('Elf64_Shdr', 64, {
  sh_name: { offset: 0, type: 'u32le' },
  sh_type: { offset: 4, type: 'u32le' },
  sh_offset: { offset: 24, type: 'u64le' },
  sh_size: { offset: 32, type: 'u64le' },
});
const Elf32Shdr = new Struct('Elf32_Shdr', 40, {
  sh_name: { offset: 0, type: 'u32le' },
  sh_type: { offset: 4, type: 'u32le' },
  sh_offset: { offset: 16, type: 'u32le' },
  sh_size: { offset: 20, type: 'u32le' },
});
const SHT_NOBITS = 8;

export interface ElfSection { name: string; type: number; offset: number; size: number }

/** Section headers of a little-endian ELF32/ELF64 image held in memory. */
export function elfSections(elf: Uint8Array, file?: string): ElfSection[] {
  if (elf.length < 52 || elf[0] !== 0x7f || elf[1] !== 0x45 || elf[2] !== 0x4c || elf[3] !== 0x46) throw new ElfError('not an ELF file (bad magic)', file, 0);
  const cls = elf[EI_CLASS];
  if (elf[EI_DATA] !== ELFDATA2LSB) throw new ElfError('big-endian ELF is not supported', file, EI_DATA);
  if (cls !== ELFCLASS32 && cls !== ELFCLASS64) throw new ElfError(`bad ELF class ${cls}`, file, EI_CLASS);
  const is64 = cls === ELFCLASS64;
  const h = is64 ? Elf64Ehdr.decode(elf, 0, { file }) : Elf32Ehdr.decode(elf, 0, { file });
  const shoff = Number(h.e_shoff);
  const shdr = is64 ? Elf64Shdr : Elf32Shdr;
  if (h.e_shentsize < shdr.size) throw new ElfError(`section header entries of ${h.e_shentsize} bytes`, file, 0);
  if (shoff + h.e_shnum * h.e_shentsize > elf.length) throw new ElfError('section header table passes the end of the file', file, shoff);
  const raw = [];
  for (let i = 0; i < h.e_shnum; i++) {
    const s = shdr.decode(elf, shoff + i * h.e_shentsize, { file });
    const offset = Number(s.sh_offset), size = Number(s.sh_size);
    if (s.sh_type !== SHT_NOBITS && offset + size > elf.length) throw new ElfError(`section ${i} passes the end of the file`, file, shoff + i * h.e_shentsize);
    raw.push({ nameOff: s.sh_name, type: s.sh_type, offset, size });
  }
  const strtab = raw[h.e_shstrndx];
  if (!strtab) throw new ElfError('no section name table', file, 0);
  return raw.map((s) => {
    const at = strtab.offset + s.nameOff;
    let end = at;
    while (end < strtab.offset + strtab.size && elf[end] !== 0) end++;
    return { name: Buffer.from(elf.subarray(at, end)).toString('latin1'), type: s.type, offset: s.offset, size: s.size };
  });
}

/** Bytes of the named section, or undefined. */
export function elfSection(elf: Uint8Array, name: string, file?: string): Uint8Array | undefined {
  const s = elfSections(elf, file).find((x) => x.name === name);
  return s && s.type !== SHT_NOBITS ? elf.subarray(s.offset, s.offset + s.size) : undefined;
}
