/**
 * modules.dep and modules.alias for an installed kernel, as depmod(8)
 * writes them: one line per module, "PATH: DEP DEP…" with paths relative to
 * /lib/modules/KVER and the full dependency closure (each module before the
 * modules it needs, so loading runs from the end of the list), in
 * modules.order order followed by modules not named there; modules.alias has
 * "alias PATTERN MODNAME" per alias= field. Dependencies come from each
 * module's .modinfo depends= (written by modpost from the symbols it uses,
 * the same relation depmod derives from symbol tables).
 */
import type { StagingTree, Inode } from '../tree/tree.js';
import { BufferContent } from '../tree/tree.js';
import { IngotError } from '../errors.js';
import { isModulePath, moduleElf, moduleNameOf, parseModinfo, type ModInfo } from './modinfo.js';

export class DepmodError extends IngotError {
  constructor(message: string, file?: string) {
    super('DEPMOD', message, { file });
  }
}

export interface KernelModule {
  name: string;
  /** Path relative to /lib/modules/KVER, e.g. kernel/fs/ext4/ext4.ko. */
  relPath: string;
  info: ModInfo;
  /** File content as stored (possibly compressed). */
  inode: Inode;
}

export interface ModuleIndex {
  kernelVersion: string;
  modules: Map<string, KernelModule>;
  /** Names of modules built into the kernel (modules.builtin). */
  builtin: Set<string>;
  /** modules.order, as paths. */
  order: string[];
}

export async function readAll(inode: Inode, path: string): Promise<Uint8Array> {
  const c = inode.content;
  if (!c) throw new DepmodError('not a regular file', path);
  const buf = new Uint8Array(c.size);
  let off = 0;
  while (off < buf.length) {
    const n = await c.read(buf.subarray(off), off);
    if (n <= 0) throw new DepmodError('file shorter than its size', path);
    off += n;
  }
  return buf;
}

export function modulesDir(kver: string): string {
  return `/lib/modules/${kver}`;
}

/** Kernel versions with a modules directory in the tree. */
export function installedKernels(tree: StagingTree): string[] {
  const d = tree.lookup('/lib/modules');
  return d?.type === 'dir' ? [...d.entries!.keys()].filter((k) => d.entries!.get(k)!.type === 'dir').sort() : [];
}

async function textFile(tree: StagingTree, path: string): Promise<string | undefined> {
  const n = tree.lookup(path);
  return n?.type === 'file' ? Buffer.from(await readAll(n, path)).toString('utf8') : undefined;
}

/** Read every module of kernel `kver` (parsing .modinfo of each). */
export async function indexModules(tree: StagingTree, kver: string): Promise<ModuleIndex> {
  const dir = modulesDir(kver);
  const top = tree.lookup(dir);
  if (top?.type !== 'dir') throw new DepmodError(`no modules directory for kernel ${kver}`, dir);
  const modules = new Map<string, KernelModule>();
  for (const e of tree.walk(top, '')) {
    if (e.inode.type !== 'file' || !isModulePath(e.path)) continue;
    const relPath = e.path.slice(1);
    const file = `${dir}/${relPath}`;
    const info = parseModinfo(await moduleElf(await readAll(e.inode, file), file), file);
    const name = moduleNameOf(relPath);
    // depmod keeps the first of duplicate names in its search order; "updates" and "extra" win over "kernel".
    const prev = modules.get(name);
    if (!prev || rank(relPath) < rank(prev.relPath)) modules.set(name, { name, relPath, info, inode: e.inode });
  }
  const builtin = new Set(((await textFile(tree, `${dir}/modules.builtin`)) ?? '').split('\n').filter(Boolean).map(moduleNameOf));
  const order = ((await textFile(tree, `${dir}/modules.order`)) ?? '').split('\n').filter(Boolean);
  return { kernelVersion: kver, modules, builtin, order };
}

function rank(relPath: string): number {
  return relPath.startsWith('updates/') ? 0 : relPath.startsWith('extra/') ? 1 : 2;
}

/**
 * Dependency closure of `name`, each module before the ones it needs
 * (a depth-first post-order, reversed). Missing dependencies are an error.
 */
export function dependencyClosure(index: ModuleIndex, name: string): KernelModule[] {
  const out: KernelModule[] = [];
  const seen = new Set<string>();
  const visit = (n: string, chain: string[]) => {
    if (seen.has(n)) return;
    seen.add(n);
    const m = index.modules.get(n);
    if (!m) throw new DepmodError(`module ${chain.join(' → ')} needs ${n}, which kernel ${index.kernelVersion} does not have`);
    for (const d of m.info.depends) visit(d, [...chain, n]);
    out.push(m);
  };
  visit(name, []);
  out.pop(); // the module itself
  return out.reverse();
}

/** The ordered module list: modules.order first (module paths may end .ko there while files are compressed), then the rest by path. */
export function orderedModules(index: ModuleIndex): KernelModule[] {
  const byName = new Map(index.modules);
  const out: KernelModule[] = [];
  for (const p of index.order) {
    const m = byName.get(moduleNameOf(p));
    if (m) { out.push(m); byName.delete(m.name); }
  }
  out.push(...[...byName.values()].sort((a, b) => (a.relPath < b.relPath ? -1 : a.relPath > b.relPath ? 1 : 0)));
  return out;
}

export function modulesDepText(index: ModuleIndex): string {
  return orderedModules(index).map((m) => {
    const deps = dependencyClosure(index, m.name).map((d) => d.relPath);
    return `${m.relPath}:${deps.length ? ` ${deps.join(' ')}` : ''}\n`;
  }).join('');
}

export function modulesAliasText(index: ModuleIndex): string {
  const lines = ['# Aliases extracted from modules themselves.\n'];
  for (const m of orderedModules(index)) for (const a of m.info.aliases) lines.push(`alias ${a} ${m.name}\n`);
  return lines.join('');
}

/** Write modules.dep and modules.alias for kernel `kver` into the tree (what depmod -a does after a kernel install). */
export async function writeDepmodFiles(tree: StagingTree, kver: string, index?: ModuleIndex): Promise<ModuleIndex> {
  const idx = index ?? await indexModules(tree, kver);
  const dir = modulesDir(kver);
  const meta = { mode: 0o644, mtime: tree.defaultTime, ctime: tree.defaultTime, atime: tree.defaultTime };
  for (const [name, text] of [['modules.dep', modulesDepText(idx)], ['modules.alias', modulesAliasText(idx)]] as const) {
    const p = `${dir}/${name}`;
    if (tree.lookup(p)) tree.remove(p);
    tree.addFile(p, new BufferContent(Buffer.from(text, 'utf8')), meta);
  }
  return idx;
}
