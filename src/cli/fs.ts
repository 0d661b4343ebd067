/** `ingot mkfs ext4`, `ingot ls`, `ingot cat`: thin wrappers over src/fs/ext4. */
import type { Command } from 'commander';
import { IngotError, UsageError } from '../errors.js';
import { SparseFileTarget, SubTarget } from '../disk/target.js';
import { atomicOutput } from '../util/atomic.js';
import { StagingTree, type Timespec } from '../tree/tree.js';
import { importDirectory } from '../tree/import-dir.js';
import { importTar } from '../tree/import-tar.js';
import { FdCache } from '../tree/content-store.js';
import { parseSize } from '../spec/model.js';
import { openExt4, prepareExt4, type Ext4Options, type Ext4Reader, type Ext4Stat } from '../fs/ext4/index.js';
import { openFileSource } from '../disk/file.js';
import { openFat, type FatDirEntry } from '../fs/fat/index.js';
import { openFilesystemSource } from '../inspect.js';
import type { ByteSource } from '../disk/target.js';
import { readHostXattrs } from '../fs/ext4/host-xattrs.js';
import { resolve as resolvePath } from 'node:path';

const out = (s: string) => process.stdout.write(s);

function quietEpipe(): void {
  process.stdout.on('error', (e: NodeJS.ErrnoException) => { if (e.code === 'EPIPE') process.exit(0); else throw e; });
}

function size(v: string, what: string): number {
  try {
    return parseSize(v, what);
  } catch (e) {
    throw new UsageError(`${what}: ${(e as Error).message} (${v})`);
  }
}

function int(v: string, what: string, allowed?: number[]): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || (allowed && !allowed.includes(n))) {
    throw new UsageError(`${what} must be ${allowed ? `one of ${allowed.join(', ')}` : 'a whole number'}: ${v}`);
  }
  return n;
}

interface MkfsOpts {
  fromDir?: string; fromTar?: string; size?: string; label?: string; uuid?: string; seed?: string; blockSize?: string;
  inodeSize?: string; inodes?: string; reserved?: string; journal?: boolean; '64bit'?: boolean; offset?: string; json?: boolean;
  xattrs?: boolean;
}

function sourceDateEpoch(): number | undefined {
  const v = process.env.SOURCE_DATE_EPOCH;
  if (v === undefined || v === '') return undefined;
  if (!/^\d+$/.test(v)) throw new UsageError(`SOURCE_DATE_EPOCH is not a number of seconds: ${v}`);
  return Number(v);
}

async function mkfsExt4(outPath: string, o: MkfsOpts): Promise<void> {
  if (!!o.fromDir === !!o.fromTar) throw new UsageError('give exactly one of --from-dir DIR or --from-tar FILE');
  const sde = sourceDateEpoch();
  const tree = new StagingTree({ defaultTime: { sec: sde ?? 0, nsec: 0 } });
  const fdCache = new FdCache();
  let dispose: (() => Promise<void>) | undefined;
  try {
    if (o.fromDir) {
      const hostDir = resolvePath(o.fromDir);
      const xattrs = o.xattrs ? await readHostXattrs(hostDir) : undefined;
      await importDirectory(tree, hostDir, { fdCache, readXattrs: xattrs ? async (p) => xattrs.get(p) ?? new Map() : undefined });
    }
    else {
      const r = await importTar(tree, o.fromTar!);
      if (r.store) dispose = () => r.store!.dispose();
    }
    const options: Ext4Options = {
      label: o.label, uuid: o.uuid, seed: o.seed, sourceDateEpoch: sde,
      blockSize: o.blockSize ? int(o.blockSize, '--block-size', [1024, 2048, 4096]) as 1024 | 2048 | 4096 : undefined,
      inodeSize: o.inodeSize ? int(o.inodeSize, '--inode-size', [256, 512, 1024]) : undefined,
      inodeCount: o.inodes ? int(o.inodes, '--inodes') : undefined,
      reservedPercent: o.reserved !== undefined ? int(o.reserved, '--reserved-percent') : undefined,
      journal: o.journal, bit64: o['64bit'],
    };
    const offset = o.offset ? size(o.offset, '--offset') : 0;
    const auto = !o.size || o.size === 'auto';
    const prepared = prepareExt4(tree, options);
    const fsBytes = auto ? prepared.plan('auto').bytes : size(o.size!, '--size');
    const result = await atomicOutput(outPath, async (tmp) => {
      const target = await SparseFileTarget.create(tmp, offset + fsBytes);
      try {
        const window = offset ? new SubTarget(target, offset, fsBytes) : target;
        return await prepared.write(window, auto ? 'auto' : fsBytes);
      } finally {
        await target.close();
      }
    });
    if (o.json) out(JSON.stringify({ output: outPath, offset, ...result }, null, 2) + '\n');
    else {
      out(`${outPath}: ext4, ${result.sizeBytes} bytes (${result.blocksCount} blocks of ${result.blockSize}), UUID ${result.uuid}, ` +
        `${result.inodesCount - result.freeInodes}/${result.inodesCount} inodes, ${result.blocksCount - result.freeBlocks} blocks used\n`);
    }
  } finally {
    await fdCache.closeAll();
    await dispose?.();
  }
}

const TYPE_CHAR: Record<string, string> = { dir: 'd', symlink: 'l', chardev: 'c', blockdev: 'b', fifo: 'p', socket: 's', file: '-', unknown: '?' };

function modeString(st: Ext4Stat): string {
  const m = st.mode;
  const rwx = (bits: number, special: boolean, ch: string) =>
    `${bits & 4 ? 'r' : '-'}${bits & 2 ? 'w' : '-'}${special ? (bits & 1 ? ch : ch.toUpperCase()) : bits & 1 ? 'x' : '-'}`;
  return TYPE_CHAR[st.type]! + rwx((m >> 6) & 7, !!(m & 0o4000), 's') + rwx((m >> 3) & 7, !!(m & 0o2000), 's') + rwx(m & 7, !!(m & 0o1000), 't');
}

/** ISO 8601 with nanoseconds (Date has only milliseconds). */
function isoTime(t: Timespec): string {
  const base = new Date(t.sec * 1000).toISOString().slice(0, 19);
  return `${base}.${String(t.nsec).padStart(9, '0')}Z`;
}

async function openImage(image: string, offset?: string, partition?: string): Promise<{ reader: Ext4Reader; close: () => Promise<void> }> {
  if (offset === undefined) {
    const { image: img, source, fs } = await openFilesystemSource(image, partition === undefined ? undefined : partNumber(partition));
    try {
      if (fs && !fs.startsWith('ext')) throw new FatNotExt4(fs, img, source);
      return { reader: await openExt4(source, { file: image }), close: () => img.close() };
    } catch (e) {
      if (!(e instanceof FatNotExt4)) await img.close();
      throw e;
    }
  }
  const source = await openFileSource(image, { offset: size(offset, '--offset') });
  try {
    return { reader: await openExt4(source, { file: image }), close: () => source.close() };
  } catch (e) {
    await source.close();
    throw e;
  }
}

function partNumber(p: string): number {
  const n = Number(p);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`--partition must be a partition number (1, 2, …), not ${p}`);
  return n;
}

/** The filesystem chosen is FAT: ls/cat go through the FAT reader instead. */
class FatNotExt4 extends Error {
  constructor(readonly fs: string, readonly image: { close(): Promise<void> }, readonly source: ByteSource) { super(fs); }
}

async function fatLs(e: FatNotExt4, path: string, o: { json?: boolean; l?: boolean; R?: boolean }): Promise<void> {
  if (e.fs !== 'vfat') throw new IngotError('UNKNOWN_FILESYSTEM', `the filesystem is ${e.fs}: ls reads ext2/3/4 and FAT`);
  const fat = await openFat(e.source);
  const base = '/' + path.split('/').filter(Boolean).join('/');
  const rows: { path: string; entry: FatDirEntry }[] = [];
  if (o.R) { for await (const w of fat.walk(base)) if (w.path !== base) rows.push(w); }
  else for (const entry of await fat.readdir(base)) rows.push({ path: `${base === '/' ? '' : base}/${entry.name}`, entry });
  if (o.json) {
    process.stdout.write(JSON.stringify(rows.map(({ path: p, entry }) => ({
      path: p, type: entry.isDirectory ? 'dir' : 'file', mode: entry.isDirectory ? 0o755 : 0o644, uid: 0, gid: 0, size: entry.size,
      mtime: entry.mtime ? Math.floor(entry.mtime.getTime() / 1000) : 0, linkTo: null, xattrs: {},
    })), null, 2) + '\n');
    return;
  }
  for (const { path: p, entry } of rows) {
    const name = o.R ? p : entry.name;
    process.stdout.write(o.l ? `${entry.isDirectory ? 'd' : '-'} ${String(entry.size).padStart(10)} ${entry.mtime?.toISOString() ?? ''} ${name}\n` : `${name}\n`);
  }
}

async function fatCat(e: FatNotExt4, path: string): Promise<void> {
  if (e.fs !== 'vfat') throw new IngotError('UNKNOWN_FILESYSTEM', `the filesystem is ${e.fs}: cat reads ext2/3/4 and FAT`);
  const fat = await openFat(e.source);
  for await (const chunk of fat.readStream(path)) if (!process.stdout.write(chunk)) await new Promise((r) => process.stdout.once('drain', r));
}

async function listEntry(reader: Ext4Reader, path: string, st: Ext4Stat, inode: Awaited<ReturnType<Ext4Reader['inode']>>) {
  const x = await reader.xattrs(inode);
  return {
    path, type: st.type, mode: st.mode, uid: st.uid, gid: st.gid, size: st.size, mtime: isoTime(st.mtime),
    linkTo: st.type === 'symlink' ? await reader.readlink(inode) : null,
    xattrs: Object.fromEntries([...x].map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
    ...(st.rdev ? { rdev: st.rdev } : {}),
  };
}

async function ls(image: string, path: string | undefined, o: { json?: boolean; l?: boolean; R?: boolean; offset?: string; partition?: string }): Promise<void> {
  quietEpipe();
  let opened;
  try { opened = await openImage(image, o.offset, o.partition); } catch (e) {
    if (!(e instanceof FatNotExt4)) throw e;
    try { return await fatLs(e, path ?? '/', o); } finally { await e.image.close(); }
  }
  const { reader, close } = opened;
  try {
    const p = path ?? '/';
    const top = await reader.lookup(p);
    const topStat = reader.statOf(top);
    const base = '/' + p.split('/').filter(Boolean).join('/');
    const items: { path: string; name: string; st: Ext4Stat; inode: typeof top }[] = [];
    if (topStat.type !== 'dir') items.push({ path: base, name: base.split('/').pop()!, st: topStat, inode: top });
    else if (o.R) {
      for await (const e of reader.walk(p)) if (e.path !== base) items.push({ path: e.path, name: e.path.slice(base === '/' ? 1 : base.length + 1), st: e.stat, inode: e.inode });
    } else {
      const entries = (await reader.readdir(top)).sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)));
      for (const e of entries) {
        const inode = await reader.inode(e.ino);
        items.push({ path: `${base === '/' ? '' : base}/${e.name}`, name: e.name, st: reader.statOf(inode), inode });
      }
    }
    if (o.json) {
      const list = [];
      for (const it of items) list.push(await listEntry(reader, it.path, it.st, it.inode));
      out(JSON.stringify(list, null, 2) + '\n');
      return;
    }
    for (const it of items) {
      if (!o.l) { out(`${it.name}\n`); continue; }
      const st = it.st;
      const when = new Date(st.mtime.sec * 1000).toISOString().slice(0, 16).replace('T', ' ');
      const sz = st.rdev ? `${st.rdev.major}, ${st.rdev.minor}` : String(st.size);
      const link = st.type === 'symlink' ? ` -> ${await reader.readlink(it.inode)}` : '';
      out(`${modeString(st)} ${String(st.links).padStart(3)} ${String(st.uid).padEnd(6)} ${String(st.gid).padEnd(6)} ${sz.padStart(10)} ${when} ${it.name}${link}\n`);
    }
  } finally {
    await close();
  }
}

async function cat(image: string, path: string, o: { offset?: string; partition?: string }): Promise<void> {
  quietEpipe();
  let opened;
  try { opened = await openImage(image, o.offset, o.partition); } catch (e) {
    if (!(e instanceof FatNotExt4)) throw e;
    try { return await fatCat(e, path); } finally { await e.image.close(); }
  }
  const { reader, close } = opened;
  try {
    const inode = await reader.lookup(path);
    const st = reader.statOf(inode);
    if (st.type !== 'file') throw new IngotError('EXT4_NOT_FILE', `${path} is a ${st.type}, not a regular file`, { file: image });
    const maps = await reader.mappings(inode);
    const step = 4 << 20;
    for (let pos = 0; pos < st.size; pos += step) {
      const data = await reader.read(inode, pos, step, maps);
      if (!process.stdout.write(data)) await new Promise((r) => process.stdout.once('drain', r));
    }
  } finally {
    await close();
  }
}

export function registerFs(program: Command): void {
  const mkfs = program.command('mkfs').description('make a filesystem image from a directory or tar archive');
  mkfs.command('ext4')
    .description('write an ext4 image (no root, no mke2fs); size "auto" fits the contents plus headroom')
    .argument('<out>', 'output image file (written atomically)')
    .option('--from-dir <dir>', 'host directory to copy in (owners, modes, times, hard links, holes)')
    .option('--from-tar <file>', 'tar archive (.tar, .tar.gz, .tar.xz, .tar.zst) to copy in')
    .option('--xattrs', 'with --from-dir: copy extended attributes too (SELinux labels, capabilities; needs getfattr)')
    .option('--size <size>', 'filesystem size (bytes or 512M, 2G, …) or auto', 'auto')
    .option('--label <label>', 'volume label (up to 16 bytes)')
    .option('--uuid <uuid>', 'filesystem UUID (default: from --seed, else random)')
    .option('--seed <text>', 'seed for UUID and hash seed: same inputs + SOURCE_DATE_EPOCH give identical images')
    .option('--block-size <n>', 'block size: 1024, 2048 or 4096 (default 4096)')
    .option('--inode-size <n>', 'inode size: 256, 512 or 1024 (default 256)')
    .option('--inodes <n>', 'minimum number of inodes')
    .option('--reserved-percent <n>', 'blocks reserved for root (default 5)')
    .option('--no-journal', 'no jbd2 journal')
    .option('--64bit', '64bit feature (64-byte group descriptors)')
    .option('--offset <bytes>', 'place the filesystem at this byte offset of the output')
    .option('--json', 'machine-readable result')
    .action(async (outPath: string, o: MkfsOpts & { reservedPercent?: string }) => mkfsExt4(outPath, { ...o, reserved: o.reservedPercent }));

  program.command('ls')
    .description('list a directory (or file) of an ext2/3/4 or FAT filesystem in a disk image of any format')
    .argument('<image>', 'filesystem image')
    .argument('[path]', 'path inside the image', '/')
    .option('--json', 'JSON: [{path, type, mode, uid, gid, size, mtime, linkTo, xattrs (base64)}]')
    .option('-l', 'long listing')
    .option('-R', 'recursive')
    .option('--partition <n>', 'partition number (default: the root or only Linux filesystem)')
    .option('--offset <bytes>', 'the filesystem starts at this byte offset of the image')
    .action(ls);

  program.command('cat')
    .description('write a file of an ext2/3/4 or FAT filesystem in a disk image of any format to stdout')
    .argument('<image>', 'filesystem image')
    .argument('<path>', 'path inside the image')
    .option('--partition <n>', 'partition number (default: the root or only Linux filesystem)')
    .option('--offset <bytes>', 'the filesystem starts at this byte offset of the image')
    .action(cat);
}
