/**
 * An initramfs for images without a dracut-made one: the kernel modules
 * needed to reach the root file system (with their dependency closure from
 * .modinfo), the image's own busybox, and an /init that loads them, finds
 * root= (UUID=, LABEL=, a device path) from the kernel command line, mounts it
 * and switch_roots. Compressed modules are stored decompressed, because
 * busybox's insmod hands the bytes to init_module(2) as they are.
 */
import { gzipSync } from 'node:zlib';
import { createRequire } from 'node:module';
import type { StagingTree } from '../tree/tree.js';
import { BufferContent } from '../tree/tree.js';
import { IngotError } from '../errors.js';
import { NewcWriter, S_IFCHR, S_IFDIR, S_IFLNK, S_IFREG } from './cpio.js';
import { dependencyClosure, indexModules, installedKernels, modulesDir, readAll, type KernelModule, type ModuleIndex } from './depmod.js';
import { moduleElf } from './modinfo.js';
import { elfSection } from './elf.js';

export class InitramfsError extends IngotError {
  constructor(message: string, file?: string) {
    super('INITRAMFS', message, { file });
  }
}

/** Block device drivers for the disks qemu, clouds and hypervisors present. */
export const BLOCK_DRIVERS = ['virtio_pci', 'virtio_blk', 'virtio_scsi', 'sd_mod', 'nvme', 'ata_piix', 'ahci', 'xen_blkfront'];
/** File system modules by root fs type (with the crc32c ext4's metadata checksums ask the crypto API for). */
export const FS_MODULES: Record<string, string[]> = {
  ext4: ['crc32c_generic', 'crc32c_intel', 'ext4'],
  ext3: ['crc32c_generic', 'ext4'],
  ext2: ['ext4'],
  vfat: ['nls_cp437', 'nls_ascii', 'vfat'],
  xfs: ['crc32c_generic', 'xfs'],
};

export type InitramfsCompression = 'gzip' | 'xz' | 'none';

export interface InitramfsOptions {
  /** Kernel version (directory under /lib/modules); required when several are installed. */
  kernelVersion?: string;
  /** Root file system type (default ext4): its module is required unless built in. */
  rootFsType?: string;
  /** Further modules to include (missing ones are an error). */
  extraModules?: string[];
  compression?: InitramfsCompression;
  /** mtime of every member (SOURCE_DATE_EPOCH; default the tree's default time). */
  mtime?: number;
}

export interface Initramfs {
  kernelVersion: string;
  /** Compressed archive bytes. */
  image: Uint8Array;
  /** Module paths (relative to /lib/modules/KVER) in load order. */
  loadOrder: string[];
  /** Wanted modules that are built into the kernel. */
  builtin: string[];
  /** Optional drivers the kernel has neither as module nor built in. */
  absent: string[];
}

const BUSYBOX_PATHS = ['/usr/bin/busybox', '/bin/busybox', '/usr/sbin/busybox', '/sbin/busybox', '/usr/lib/busybox/busybox'];

/** The module set and load order: each module after the ones it needs, in the order asked. */
export function planModules(index: ModuleIndex, rootFsType: string, extra: string[] = []): { load: KernelModule[]; builtin: string[]; absent: string[] } {
  const load: KernelModule[] = [];
  const seen = new Set<string>();
  const builtin: string[] = [];
  const absent: string[] = [];
  const aliasOwner = (name: string) => [...index.modules.values()].find((m) => m.info.aliases.includes(name))?.name;
  const add = (name: string, required: boolean) => {
    const n = name.replace(/-/g, '_');
    if (index.builtin.has(n)) { builtin.push(n); return; }
    const m = index.modules.get(n);
    if (!m) {
      if (required) throw new InitramfsError(`kernel ${index.kernelVersion} has no module ${n} (neither built in nor under ${modulesDir(index.kernelVersion)})`);
      absent.push(n);
      return;
    }
    // softdep "pre:" modules (e.g. ext4 → crc32c) are loaded first, when the kernel has them.
    for (const sd of m.info.softdeps) {
      const pre = /pre:\s*([^:]*?)(\s+post:|$)/.exec(sd)?.[1]?.split(/\s+/).filter(Boolean) ?? [];
      for (const p of pre) {
        const target = index.modules.has(p.replace(/-/g, '_')) ? p : aliasOwner(p);
        if (target && !seen.has(target.replace(/-/g, '_'))) add(target, false);
      }
    }
    for (const d of [...dependencyClosure(index, n).reverse(), m]) {
      if (!seen.has(d.name)) { seen.add(d.name); load.push(d); }
    }
  };
  const fsMods = FS_MODULES[rootFsType] ?? [rootFsType];
  for (const f of fsMods.slice(0, -1)) add(f, false);
  add(fsMods[fsMods.length - 1]!, true);
  for (const d of BLOCK_DRIVERS) add(d, false);
  if (!BLOCK_DRIVERS.some((d) => seen.has(d) || builtin.includes(d))) {
    throw new InitramfsError(`kernel ${index.kernelVersion} has none of the disk drivers ${BLOCK_DRIVERS.join(', ')}`);
  }
  for (const e of extra) add(e, true);
  return { load, builtin, absent };
}

/** The /init script; `kver` and the module list are baked in. */
export function initScript(kver: string, loadOrder: string[]): string {
  return `#!/bin/busybox sh
# ingot initramfs: load the disk and file system drivers, mount root=, switch_root.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
fail() { echo "ingot-initramfs: $*"; exit 1; }
for m in ${loadOrder.map((p) => `'${p}'`).join(' ')}; do
  insmod "/lib/modules/${kver}/$m" 2>/dev/null || echo "ingot-initramfs: $m not loaded (no such hardware?)"
done
root= fstype=auto flags= mode=ro init=/sbin/init delay=30
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    root=*) root="\${arg#root=}" ;;
    rootfstype=*) fstype="\${arg#rootfstype=}" ;;
    rootflags=*) flags=",\${arg#rootflags=}" ;;
    rootdelay=*) delay="\${arg#rootdelay=}" ;;
    init=*) init="\${arg#init=}" ;;
    ro) mode=ro ;;
    rw) mode=rw ;;
  esac
done
[ -n "$root" ] || fail "no root= on the kernel command line"
dev=
i=0
while [ $i -lt $((delay * 10)) ]; do
  case "$root" in
    UUID=*|LABEL=*) dev=$(findfs "$root" 2>/dev/null) ;;
    /dev/*) [ -b "$root" ] && dev="$root" ;;
    *) fail "root=$root: only UUID=, LABEL= and /dev/ paths are understood" ;;
  esac
  [ -n "$dev" ] && break
  usleep 100000
  i=$((i + 1))
done
[ -n "$dev" ] || fail "root device $root not found (disks: $(cat /proc/partitions | awk 'NR>2 {printf "%s ", $4}'))"
mkdir -p /sysroot
mount -t "$fstype" -o "$mode$flags" "$dev" /sysroot || fail "cannot mount $dev ($fstype) on /sysroot"
[ -x "/sysroot$init" ] || [ -L "/sysroot$init" ] || fail "no $init on $dev"
if [ -d /sysroot/dev ]; then mount --move /dev /sysroot/dev; else umount /dev; fi
umount /sys
umount /proc
exec switch_root /sysroot "$init" "$@"
`;
}

function findBusybox(tree: StagingTree): { path: string; inode: NonNullable<ReturnType<StagingTree['lookup']>> } {
  for (const p of BUSYBOX_PATHS) {
    const n = tree.lookup(p);
    if (n?.type === 'file') return { path: p, inode: n };
  }
  throw new InitramfsError(`the image has no busybox (looked at ${BUSYBOX_PATHS.join(', ')}): add the busybox or busybox-static package`);
}

/** Build the initramfs for the tree's kernel. */
export async function buildInitramfs(tree: StagingTree, opts: InitramfsOptions = {}): Promise<Initramfs> {
  const kernels = installedKernels(tree);
  const kver = opts.kernelVersion ?? (kernels.length === 1 ? kernels[0]! : undefined);
  if (!kver) throw new InitramfsError(kernels.length ? `several kernels installed (${kernels.join(', ')}): name one` : 'no kernel modules installed under /lib/modules');
  const index = await indexModules(tree, kver);
  const plan = planModules(index, opts.rootFsType ?? 'ext4', opts.extraModules);
  const bb = findBusybox(tree);
  const bbBytes = await readAll(bb.inode, bb.path);
  if (elfSection(bbBytes, '.interp', bb.path)) {
    throw new InitramfsError(`${bb.path} is dynamically linked; the initramfs needs a static busybox (busybox-static)`, bb.path);
  }

  const chunks: Uint8Array[] = [];
  const w = new NewcWriter((c) => chunks.push(c));
  const mtime = opts.mtime ?? tree.defaultTime.sec;
  const dirs = new Set<string>();
  const dir = (p: string) => {
    const parts = p.split('/');
    for (let i = 1; i <= parts.length; i++) {
      const d = parts.slice(0, i).join('/');
      if (!dirs.has(d)) { dirs.add(d); w.add({ name: d, mode: S_IFDIR | 0o755, mtime }); }
    }
  };
  w.add({ name: '.', mode: S_IFDIR | 0o755, mtime });
  for (const d of ['bin', 'dev', 'proc', 'sys', 'run', 'tmp', 'sysroot', 'etc']) dir(d);
  w.add({ name: 'dev/console', mode: S_IFCHR | 0o600, rdevMajor: 5, rdevMinor: 1, mtime });
  w.add({ name: 'dev/null', mode: S_IFCHR | 0o666, rdevMajor: 1, rdevMinor: 3, mtime });
  w.add({ name: 'bin/busybox', mode: S_IFREG | 0o755, mtime }, bbBytes);
  w.add({ name: 'bin/sh', mode: S_IFLNK | 0o777, mtime }, Buffer.from('busybox'));
  const loadOrder: string[] = [];
  const depLines: string[] = [];
  for (const m of plan.load) {
    const rel = m.relPath.replace(/\.ko\.(xz|zst|gz)$/, '.ko');
    const full = `lib/modules/${kver}/${rel}`;
    dir(full.slice(0, full.lastIndexOf('/')));
    w.add({ name: full, mode: S_IFREG | 0o644, mtime }, await moduleElf(await readAll(m.inode, `${modulesDir(kver)}/${m.relPath}`), m.relPath));
    loadOrder.push(rel);
    const deps = dependencyClosure(index, m.name).map((d) => d.relPath.replace(/\.ko\.(xz|zst|gz)$/, '.ko'));
    depLines.push(`${rel}:${deps.length ? ` ${deps.join(' ')}` : ''}\n`);
  }
  w.add({ name: `lib/modules/${kver}/modules.dep`, mode: S_IFREG | 0o644, mtime }, Buffer.from(depLines.join('')));
  w.add({ name: 'init', mode: S_IFREG | 0o755, mtime }, Buffer.from(initScript(kver, loadOrder)));
  w.finish();
  const raw = Buffer.concat(chunks);
  return { kernelVersion: kver, image: await compress(raw, opts.compression ?? 'gzip'), loadOrder, builtin: plan.builtin, absent: plan.absent };
}

async function compress(raw: Buffer, how: InitramfsCompression): Promise<Uint8Array> {
  if (how === 'none') return raw;
  if (how === 'gzip') return gzipSync(raw, { level: 9 });
  // The kernel's XZ decoder checks CRC32 only (lib/xz/xz_dec_stream.c): never the default CRC64.
  const lzma = createRequire(import.meta.url)('lzma-native') as {
    compress(input: Buffer, opts: object, cb: (out: Buffer | undefined, err?: Error) => void): void;
    CHECK_CRC32: number;
  };
  return await new Promise<Uint8Array>((resolve, reject) => {
    lzma.compress(raw, { preset: 6, check: lzma.CHECK_CRC32, threads: 1 }, (out, err) => (err || !out ? reject(err ?? new Error('xz failed')) : resolve(out)));
  });
}

/** Where distributions keep the initramfs: Debian's /boot/initrd.img-KVER or Fedora's /boot/initramfs-KVER.img. */
export function initramfsPath(kver: string, style: 'debian' | 'fedora' = 'debian'): string {
  return style === 'fedora' ? `/boot/initramfs-${kver}.img` : `/boot/initrd.img-${kver}`;
}

/** Build and add the initramfs to the tree (unless one exists); returns its path in the image. */
export async function installInitramfs(tree: StagingTree, opts: InitramfsOptions & { path?: string } = {}): Promise<{ path: string; initramfs: Initramfs }> {
  const initramfs = await buildInitramfs(tree, opts);
  const path = opts.path ?? initramfsPath(initramfs.kernelVersion);
  if (tree.lookup(path)) tree.remove(path);
  const t = { sec: opts.mtime ?? tree.defaultTime.sec, nsec: 0 };
  tree.addFile(path, new BufferContent(initramfs.image), { mode: 0o600, mtime: t, ctime: t, atime: t });
  return { path, initramfs };
}
