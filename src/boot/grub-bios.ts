/**
 * GRUB 2 for BIOS (i386-pc), assembled from the image's own grub-pc modules
 * the way `grub-mkimage -O i386-pc` and `grub-bios-setup` do (facts from
 * GRUB's util/mkimage.c, util/grub-mkimagexx.c, util/setup.c,
 * include/grub/offsets.h, include/grub/kernel.h, include/grub/i386/pc/boot.h):
 *
 *  core.img = diskboot.img (1 sector, ends with the sector blocklist)
 *           + lzma_decompress.img (compressed/uncompressed sizes at 0x08/0x0c)
 *           + raw LZMA1 (lc 3, lp 0, pb 2, 64 KiB dictionary) of
 *             kernel.img's loaded sections (linked at 0x9000)
 *             + grub_module_info32 {"gmim", 12, total} + modules
 *               ({type, size} header each, 4-byte aligned): ELF modules in
 *               dependency order, the embedded config, the prefix.
 *  boot.img goes to the MBR (keeping the disk signature and partition
 *  table) with the first core.img sector at 0x5c; core.img goes to the MBR
 *  gap (MBR disks) or the BIOS boot partition (GPT disks), followed by its
 *  Reed-Solomon redundancy (src/boot/reed-solomon.ts) as grub-bios-setup adds.
 */
import { createRequire } from 'node:module';
import { IngotError } from '../errors.js';
import { Struct } from '../binary/struct.js';
import type { BlockTarget } from '../disk/target.js';
import type { StagingTree } from '../tree/tree.js';
import { readAll } from './depmod.js';
import { elfSections } from './elf.js';
import { withRedundancy } from './reed-solomon.js';

export class GrubError extends IngotError {
  constructor(message: string, file?: string) {
    super('GRUB', message, { file });
  }
}

export const SECTOR = 512;
export const GRUB_KERNEL_I386_PC_LINK_ADDR = 0x9000;
export const GRUB_DECOMPRESSOR_I386_PC_COMPRESSED_SIZE = 0x08;
export const GRUB_DECOMPRESSOR_I386_PC_UNCOMPRESSED_SIZE = 0x0c;
export const GRUB_MODULE_MAGIC = 0x676d696d; // "gmim"
export const OBJ_TYPE_ELF = 0, OBJ_TYPE_CONFIG = 2, OBJ_TYPE_PREFIX = 3;
/** boot.img fields (include/grub/i386/pc/boot.h). */
export const GRUB_BOOT_MACHINE_BPB_START = 0x3, GRUB_BOOT_MACHINE_BPB_END = 0x5a;
export const GRUB_BOOT_MACHINE_KERNEL_SECTOR = 0x5c, GRUB_BOOT_MACHINE_BOOT_DRIVE = 0x64, GRUB_BOOT_MACHINE_DRIVE_CHECK = 0x66;
export const GRUB_BOOT_MACHINE_WINDOWS_NT_MAGIC = 0x1b8, GRUB_BOOT_MACHINE_PART_END = 0x1fe;
/** Where diskboot.img loads the rest of core.img: segment 0x800 + one sector. */
const FIRST_SEGMENT = 0x800 + (SECTOR >> 4);
/** core.img must fit below 0x78000 when loaded at 0x8000 (mkimage's limit). */
const MAX_CORE = 0x78000 - GRUB_KERNEL_I386_PC_LINK_ADDR;

/** struct grub_pc_bios_boot_blocklist, the last 12 bytes of diskboot.img (entries grow downwards). */
export const BootBlocklist = new Struct('grub_pc_bios_boot_blocklist', 12, {
  start: { offset: 0, type: 'u64le' },
  len: { offset: 8, type: 'u16le' },
  segment: { offset: 10, type: 'u16le' },
});

const SHF_ALLOC = 0x2, SHF_EXECINSTR = 0x4, SHT_PROGBITS = 1;

/**
 * kernel.img (an ELF executable linked at 0x9000) as loaded: its PROGBITS
 * allocated sections copied to their addresses minus the link address.
 * The loaded size ends at the end of the last section placed (bss is not
 * part of the image: the kernel clears it itself).
 */
export function loadKernelImage(elf: Uint8Array, file = 'kernel.img'): Uint8Array {
  const secs = elfSections(elf, file);
  // Section flags are not in ElfSection; read them from the section headers (ELF32: sh_flags at +8, sh_addr at +12).
  const dv = new DataView(elf.buffer, elf.byteOffset, elf.length);
  const shoff = dv.getUint32(32, true), shentsize = dv.getUint16(46, true);
  const placed: Array<{ addr: number; offset: number; size: number }> = [];
  let size = 0;
  const take = (exec: boolean) => secs.forEach((s, i) => {
    const flags = dv.getUint32(shoff + i * shentsize + 8, true);
    const addr = dv.getUint32(shoff + i * shentsize + 12, true);
    if (s.type !== SHT_PROGBITS || !(flags & SHF_ALLOC) || Boolean(flags & SHF_EXECINSTR) !== exec) return;
    if (addr < GRUB_KERNEL_I386_PC_LINK_ADDR) throw new GrubError(`section ${s.name} at 0x${addr.toString(16)} below the link address`, file);
    placed.push({ addr: addr - GRUB_KERNEL_I386_PC_LINK_ADDR, offset: s.offset, size: s.size });
    size = addr - GRUB_KERNEL_I386_PC_LINK_ADDR + s.size;
  });
  take(true); // .text first, then .data (grub-mkimagexx.c locate_sections)
  take(false);
  if (!placed.length) throw new GrubError('kernel.img has no loadable sections', file);
  const out = new Uint8Array(size);
  for (const p of placed) out.set(elf.subarray(p.offset, p.offset + p.size), p.addr);
  return out;
}

/** moddep.lst: "mod: dep dep". */
export function parseModdep(text: string): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const i = line.indexOf(':');
    if (i > 0) m.set(line.slice(0, i).trim(), line.slice(i + 1).trim().split(/\s+/).filter(Boolean));
  }
  return m;
}

/** Modules with their dependencies, each after the modules it needs, in grub-mkimage's order. */
export function moduleOrder(deps: Map<string, string[]>, wanted: string[]): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  const visit = (m: string, chain: string[]) => {
    if (seen.has(m)) return;
    if (!deps.has(m)) throw new GrubError(`GRUB module ${[...chain, m].join(' → ')} is not in moddep.lst`);
    seen.add(m);
    // grub-mkimage visits each module's dependencies last-listed first (util/resolve.c keeps them in a prepended list).
    for (const d of [...deps.get(m)!].reverse()) visit(d, [...chain, m]);
    out.push(m);
  };
  for (const w of wanted) visit(w, []);
  return out;
}

const align4 = (n: number) => (n + 3) & ~3;

export interface CoreImageInput {
  kernelImg: Uint8Array;
  lzmaDecompressImg: Uint8Array;
  diskbootImg: Uint8Array;
  /** Module name → .mod bytes, in load order. */
  modules: Array<[string, Uint8Array]>;
  /** Embedded early config (grub-install's load.cfg). */
  config?: string;
  prefix: string;
}

/** The uncompressed part: loaded kernel + module info + modules, config, prefix. */
export function coreImagePayload(input: CoreImageInput): Uint8Array {
  const kernel = loadKernelImage(input.kernelImg);
  const objs: Array<{ type: number; data: Uint8Array; padded: number }> = input.modules.map(([, d]) => ({ type: OBJ_TYPE_ELF, data: d, padded: align4(d.length) }));
  if (input.config !== undefined) {
    const c = Buffer.from(`${input.config}\0`);
    objs.push({ type: OBJ_TYPE_CONFIG, data: c, padded: align4(c.length) });
  }
  const p = Buffer.from(`${input.prefix}\0`);
  objs.push({ type: OBJ_TYPE_PREFIX, data: p, padded: align4(p.length) });
  const total = 12 + objs.reduce((a, o) => a + 8 + o.padded, 0);
  const out = new Uint8Array(kernel.length + total);
  out.set(kernel);
  const dv = new DataView(out.buffer);
  let at = kernel.length;
  dv.setUint32(at, GRUB_MODULE_MAGIC, true);
  dv.setUint32(at + 4, 12, true);
  dv.setUint32(at + 8, total, true);
  at += 12;
  for (const o of objs) {
    dv.setUint32(at, o.type, true);
    // ELF modules count their padding in the size, config and prefix too (mkimage uses the aligned size for all three).
    dv.setUint32(at + 4, o.padded + 8, true);
    out.set(o.data, at + 8);
    at += 8 + o.padded;
  }
  return out;
}

const lzma = createRequire(import.meta.url)('lzma-native') as {
  createStream(kind: 'rawEncoder', opts: object): NodeJS.ReadWriteStream;
  FILTER_LZMA1: string;
};

/** Raw LZMA1 with GRUB's properties (mkimage.c compress_kernel_lzma). */
export function lzmaRaw(data: Uint8Array): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const s = lzma.createStream('rawEncoder', { filters: [{ id: lzma.FILTER_LZMA1, options: { dictSize: 1 << 16, lc: 3, lp: 0, pb: 2 } }] });
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', reject);
    s.on('end', () => resolve(Buffer.concat(chunks)));
    s.end(Buffer.from(data.buffer, data.byteOffset, data.length));
  });
}

/** core.img as grub-mkimage -O i386-pc writes it (blocklist not yet set). */
export async function buildCoreImage(input: CoreImageInput): Promise<Uint8Array> {
  const payload = coreImagePayload(input);
  const compressed = await lzmaRaw(payload);
  const dec = new Uint8Array(input.lzmaDecompressImg);
  const ddv = new DataView(dec.buffer);
  ddv.setUint32(GRUB_DECOMPRESSOR_I386_PC_COMPRESSED_SIZE, compressed.length, true);
  ddv.setUint32(GRUB_DECOMPRESSOR_I386_PC_UNCOMPRESSED_SIZE, payload.length, true);
  const rest = dec.length + compressed.length;
  if (rest > MAX_CORE) throw new GrubError(`core image is too big (${rest} bytes, at most ${MAX_CORE})`);
  if (input.diskbootImg.length !== SECTOR) throw new GrubError(`diskboot.img is ${input.diskbootImg.length} bytes, not ${SECTOR}`);
  const core = new Uint8Array(SECTOR + rest);
  core.set(input.diskbootImg);
  core.set(dec, SECTOR);
  core.set(compressed, SECTOR + dec.length);
  const bl = BootBlocklist.decode(core, SECTOR - 12);
  BootBlocklist.encode({ ...bl, len: Math.ceil(rest / SECTOR) }, core, SECTOR - 12);
  return core;
}

/** The modules an image's core.img embeds so grub.cfg can find and boot the kernel without /boot/grub/i386-pc. */
export const CORE_MODULES = ['biosdisk', 'part_msdos', 'part_gpt', 'ext2', 'fat', 'search', 'search_fs_uuid', 'search_label', 'normal', 'linux', 'serial', 'terminal', 'configfile', 'echo', 'test', 'boot'];

export const GRUB_PC_DIRS = ['/usr/lib/grub/i386-pc', '/usr/share/grub/i386-pc'];

export interface GrubPcFiles { dir: string; read(name: string): Promise<Uint8Array> }

export function grubPcFromTree(tree: StagingTree): GrubPcFiles {
  const dir = GRUB_PC_DIRS.find((d) => tree.lookup(`${d}/kernel.img`)?.type === 'file');
  if (!dir) throw new GrubError(`the image has no GRUB i386-pc modules (${GRUB_PC_DIRS.join(', ')}): add grub-pc-bin (Fedora: grub2-pc-modules)`);
  return {
    dir,
    async read(name: string) {
      const p = `${dir}/${name}`;
      const n = tree.lookup(p);
      if (n?.type !== 'file') throw new GrubError(`${p} is not in the image`);
      return readAll(n, p);
    },
  };
}

/** core.img for an image: embedded config finds the /boot file system by UUID and sets the prefix there. */
export async function coreImageFor(files: GrubPcFiles, o: { bootFsUuid: string; grubDir?: string; modules?: string[] }): Promise<Uint8Array> {
  const deps = parseModdep(Buffer.from(await files.read('moddep.lst')).toString());
  const order = moduleOrder(deps, o.modules ?? CORE_MODULES);
  const mods: Array<[string, Uint8Array]> = [];
  for (const m of order) mods.push([m, await files.read(`${m}.mod`)]);
  const grubDir = o.grubDir ?? '/boot/grub';
  return buildCoreImage({
    kernelImg: await files.read('kernel.img'),
    lzmaDecompressImg: await files.read('lzma_decompress.img'),
    diskbootImg: await files.read('diskboot.img'),
    modules: mods,
    config: `search.fs_uuid ${o.bootFsUuid} root\nset prefix=($root)'${grubDir}'\n`,
    prefix: grubDir,
  });
}

/**
 * grub-bios-setup's embedding: core.img written to consecutive sectors from
 * `coreSector` (the MBR gap at 1, or a BIOS boot partition's start), its
 * blocklist pointing at them, and boot.img in the MBR pointing at core.img.
 * `gapSectors` is the room available (sectors).
 */
export async function installGrubBios(disk: BlockTarget, bootImg: Uint8Array, core: Uint8Array, o: { coreSector: number; gapSectors: number; rsCodes?: boolean }): Promise<void> {
  if (bootImg.length !== SECTOR) throw new GrubError(`boot.img is ${bootImg.length} bytes, not ${SECTOR}`);
  const coreSectors = Math.ceil(core.length / SECTOR);
  if (coreSectors > o.gapSectors) throw new GrubError(`core.img needs ${coreSectors} sectors but only ${o.gapSectors} are free for it (MBR gap or BIOS boot partition too small)`);
  // setup.c: with Reed-Solomon codes the embedding takes up to twice core.img, as far as the gap and
  // the real-mode load limit allow; the blocklist then covers the whole embedded area.
  const nsec = o.rsCodes === false ? coreSectors : Math.min(o.gapSectors, 2 * coreSectors, MAX_CORE >> 9);
  const img = o.rsCodes === false ? new Uint8Array(nsec * SECTOR) : withRedundancy(core, nsec);
  if (o.rsCodes === false) img.set(core);
  // Clear diskboot's blocklist area, then one entry for the rest of core.img and a zero terminator.
  for (let at = SECTOR - 12; at >= SECTOR - 12 * 4; at -= 12) {
    const b = BootBlocklist.decode(img, at);
    if (!b.len && at !== SECTOR - 12) break;
    BootBlocklist.encode({ start: 0n, len: 0, segment: 0 }, img, at);
  }
  if (nsec > 1) BootBlocklist.encode({ start: BigInt(o.coreSector + 1), len: nsec - 1, segment: FIRST_SEGMENT }, img, SECTOR - 12);
  await disk.write(img, o.coreSector * SECTOR);

  const mbr = new Uint8Array(SECTOR);
  await disk.read(mbr, 0);
  if (mbr[510] !== 0x55 || mbr[511] !== 0xaa) throw new GrubError('the disk has no MBR (or protective MBR) to install boot.img into');
  const boot = new Uint8Array(bootImg);
  boot.set(mbr.subarray(GRUB_BOOT_MACHINE_BPB_START, GRUB_BOOT_MACHINE_BPB_END), GRUB_BOOT_MACHINE_BPB_START);
  boot.set(mbr.subarray(GRUB_BOOT_MACHINE_WINDOWS_NT_MAGIC, GRUB_BOOT_MACHINE_PART_END), GRUB_BOOT_MACHINE_WINDOWS_NT_MAGIC);
  const bdv = new DataView(boot.buffer);
  bdv.setBigUint64(GRUB_BOOT_MACHINE_KERNEL_SECTOR, BigInt(o.coreSector), true);
  boot[GRUB_BOOT_MACHINE_BOOT_DRIVE] = 0xff;
  // A hard disk: skip the boot-drive check for BIOSes that pass a wrong DL (setup.c).
  boot[GRUB_BOOT_MACHINE_DRIVE_CHECK] = 0x90;
  boot[GRUB_BOOT_MACHINE_DRIVE_CHECK + 1] = 0x90;
  await disk.write(boot, 0);
}
