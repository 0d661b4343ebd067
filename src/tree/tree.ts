/**
 * The staging tree: an in-memory model of a filesystem that packages are
 * unpacked into and filesystem writers (ext4, FAT, tar) serialize from.
 *
 * Metadata lives in JS objects; file *contents* are references
 * ({@link FileContent}) to bytes kept outside the heap (a content store on
 * disk, or spans of a source file), so a multi-GB tree costs little memory.
 *
 * Paths are always interpreted inside the tree as if it were a chroot: a
 * symlink met while resolving a path is followed relative to the tree root,
 * and `..` never climbs above the root of an absolute lookup. Paths given by
 * untrusted input (archives, packages) must use {@link assertSafeRelative}.
 */
import { IngotError, PathEscapeError } from '../errors.js';
import type { Range } from '../util/intervals.js';

export type NodeType = 'dir' | 'file' | 'symlink' | 'chardev' | 'blockdev' | 'fifo' | 'socket';

export interface Timespec { sec: number; nsec: number }

/** Bytes of a regular file, read on demand. */
export interface FileContent {
  readonly size: number;
  /** Fill `buf` from `position`; holes read as zeros. Returns bytes read. */
  read(buf: Uint8Array, position: number): Promise<number>;
  /**
   * The same as `read`, synchronously, for contents whose bytes are a system call away
   * (host files): lets a consumer reading many small contents skip the thread pool.
   */
  readSync?(buf: Uint8Array, position: number): number;
  /** Data ranges of a sparse file, ascending; absent means the whole file is data. */
  dataRanges?(): Range[];
}

/** Open an existing inode as an output/input stream is the tree helper's job; here: the model only. */
export interface Inode {
  /** Stable identity in creation order (hard links share it). */
  readonly id: number;
  readonly type: NodeType;
  /** Permission bits including setuid/setgid/sticky (07777); the type is `type`. */
  mode: number;
  uid: number;
  gid: number;
  atime: Timespec;
  mtime: Timespec;
  ctime: Timespec;
  /** Extended attributes by full name (`security.selinux`, `user.foo`, …). */
  xattrs: Map<string, Uint8Array>;
  /** Directory entries (type 'dir'); kept unsorted, walks sort by byte order. */
  entries?: Map<string, Inode>;
  /** File contents (type 'file'). */
  content?: FileContent;
  /** Link target (type 'symlink'), raw bytes as text. */
  target?: string;
  /** Device numbers (chardev/blockdev). */
  rdev?: { major: number; minor: number };
  /** Number of directory entries naming this inode (for dirs: 2 + subdirs, as on disk). */
  nlink: number;
}

export interface InodeMeta {
  mode?: number;
  uid?: number;
  gid?: number;
  atime?: Timespec;
  mtime?: Timespec;
  ctime?: Timespec;
  xattrs?: Map<string, Uint8Array> | Record<string, Uint8Array>;
}

export class TreeError extends IngotError {
  constructor(code: string, message: string, path: string) {
    super(code, message, { file: path });
  }
}

/** Largest name a directory entry can hold on ext4 (and most filesystems). */
export const NAME_MAX = 255;
/** Symlink hops allowed while resolving one path (Linux MAXSYMLINKS is 40). */
export const MAX_SYMLINKS = 40;

/** An in-memory file content, for small generated files (configs, scripts). */
export class BufferContent implements FileContent {
  constructor(private readonly bytes: Uint8Array) {}
  get size(): number { return this.bytes.length; }
  static of(text: string | Uint8Array): BufferContent {
    return new BufferContent(typeof text === 'string' ? Buffer.from(text, 'utf8') : text);
  }
  async read(buf: Uint8Array, position: number): Promise<number> {
    return this.readSync(buf, position);
  }
  readSync(buf: Uint8Array, position: number): number {
    const n = Math.max(0, Math.min(buf.length, this.bytes.length - position));
    buf.set(this.bytes.subarray(position, position + n));
    return n;
  }
}

/** Split an absolute or relative tree path into components, rejecting NUL and over-long names. */
export function splitPath(path: string): string[] {
  if (path.includes('\0')) throw new TreeError('TREE_BAD_NAME', 'path contains a NUL byte', path);
  const parts = path.split('/').filter((p) => p !== '' && p !== '.');
  for (const p of parts) {
    if (Buffer.byteLength(p, 'utf8') > NAME_MAX) {
      throw new TreeError('TREE_NAME_TOO_LONG', `name longer than ${NAME_MAX} bytes: ${p.slice(0, 40)}…`, path);
    }
  }
  return parts;
}

/**
 * For paths from untrusted input (archive members, package payloads): reject
 * absolute-escape and `..` components so nothing lands outside the root.
 */
export function assertSafeRelative(path: string): string[] {
  const parts = splitPath(path);
  if (parts.includes('..')) throw new PathEscapeError(path);
  return parts;
}

const now = (): Timespec => ({ sec: 0, nsec: 0 });

/**
 * The tree's own inode record. Trees of ~100,000 inodes are common (a
 * distribution's /usr), so the per-inode cost matters: times are kept as
 * plain number fields (the Timespec accessors copy in and out), and the
 * xattr map is created on first use — most inodes never get one.
 */
class StagedInode implements Inode {
  mode: number;
  uid: number;
  gid: number;
  nlink = 0;
  entries: Map<string, Inode> | undefined;
  content: FileContent | undefined = undefined;
  target: string | undefined = undefined;
  rdev: { major: number; minor: number } | undefined = undefined;
  private aSec: number;
  private aNsec: number;
  private mSec: number;
  private mNsec: number;
  private cSec: number;
  private cNsec: number;
  private xmap: Map<string, Uint8Array> | undefined;

  constructor(readonly id: number, readonly type: NodeType, mode: number, uid: number, gid: number,
    a: Timespec, m: Timespec, c: Timespec, xattrs: Map<string, Uint8Array> | undefined) {
    this.mode = mode;
    this.uid = uid;
    this.gid = gid;
    this.entries = type === 'dir' ? new Map() : undefined;
    this.aSec = a.sec; this.aNsec = a.nsec;
    this.mSec = m.sec; this.mNsec = m.nsec;
    this.cSec = c.sec; this.cNsec = c.nsec;
    this.xmap = xattrs;
  }

  get atime(): Timespec { return { sec: this.aSec, nsec: this.aNsec }; }
  set atime(t: Timespec) { this.aSec = t.sec; this.aNsec = t.nsec; }
  get mtime(): Timespec { return { sec: this.mSec, nsec: this.mNsec }; }
  set mtime(t: Timespec) { this.mSec = t.sec; this.mNsec = t.nsec; }
  get ctime(): Timespec { return { sec: this.cSec, nsec: this.cNsec }; }
  set ctime(t: Timespec) { this.cSec = t.sec; this.cNsec = t.nsec; }

  get xattrs(): Map<string, Uint8Array> { return (this.xmap ??= new Map()); }
  set xattrs(m: Map<string, Uint8Array>) { this.xmap = m; }

  /** The xattrs without creating an empty map (undefined when there are none). */
  xattrsIfAny(): ReadonlyMap<string, Uint8Array> | undefined {
    return this.xmap !== undefined && this.xmap.size > 0 ? this.xmap : undefined;
  }
}

/** An inode's extended attributes, or undefined when it has none — without allocating for the common empty case. */
export function xattrsOf(inode: Inode): ReadonlyMap<string, Uint8Array> | undefined {
  if (inode instanceof StagedInode) return inode.xattrsIfAny();
  return inode.xattrs.size > 0 ? inode.xattrs : undefined;
}

function copyXattrs(x: InodeMeta['xattrs']): Map<string, Uint8Array> | undefined {
  if (x === undefined) return undefined;
  const m = x instanceof Map ? new Map(x) : new Map(Object.entries(x));
  return m.size > 0 ? m : undefined;
}

export class StagingTree {
  private nextId = 1;
  readonly root: Inode;
  /** Timestamp given to nodes created without explicit times (SOURCE_DATE_EPOCH-friendly: defaults to 0). */
  defaultTime: Timespec;
  /**
   * The directory the last parent path resolved to (importers add a directory's entries one after
   * another). Valid while no existing entry is replaced or removed: adding names cannot change how
   * an already resolvable path resolves.
   */
  private parentCache: { key: string; dir: Inode } | undefined;

  constructor(opts: { defaultTime?: Timespec } = {}) {
    this.defaultTime = opts.defaultTime ?? now();
    this.root = this.newInode('dir', { mode: 0o755 });
    this.root.nlink = 2;
  }

  private newInode(type: NodeType, meta: InodeMeta = {}): Inode {
    const t = this.defaultTime;
    const mode = (meta.mode ?? (type === 'dir' ? 0o755 : type === 'symlink' ? 0o777 : 0o644)) & 0o7777;
    return new StagedInode(this.nextId++, type, mode, meta.uid ?? 0, meta.gid ?? 0,
      meta.atime ?? meta.mtime ?? t, meta.mtime ?? t, meta.ctime ?? meta.mtime ?? t, copyXattrs(meta.xattrs));
  }

  /**
   * Resolve `path` to its parent directory and final name, following
   * symlinks in intermediate components chroot-style.
   */
  private resolveParent(path: string): { dir: Inode; name: string } {
    const parts = splitPath(path);
    if (parts.length === 0) throw new TreeError('TREE_IS_ROOT', 'the root has no parent', path);
    const name = parts.pop()!;
    if (name === '..') throw new TreeError('TREE_BAD_NAME', 'final component may not be ..', path);
    const key = parts.join('/');
    const cached = this.parentCache;
    if (cached !== undefined && cached.key === key) return { dir: cached.dir, name };
    const dir = this.walkTo(parts, path, true, { hops: 0 });
    if (dir.type !== 'dir') throw new TreeError('TREE_NOT_DIR', 'parent is not a directory', path);
    this.parentCache = { key, dir };
    return { dir, name };
  }

  /** Resolve components from the root. With `create`, missing directories are made (mkdir -p). */
  private walkTo(parts: string[], orig: string, create: boolean, state: { hops: number }, followLast = true): Inode {
    const stack: Inode[] = [this.root];
    const queue = [...parts];
    while (queue.length) {
      const name = queue.shift()!;
      const cur = stack[stack.length - 1]!;
      if (name === '..') {
        if (stack.length > 1) stack.pop();
        continue;
      }
      if (cur.type !== 'dir') throw new TreeError('TREE_NOT_DIR', `not a directory on the way`, orig);
      let next = cur.entries!.get(name);
      if (!next) {
        if (!create) throw new TreeError('TREE_NOT_FOUND', 'no such file or directory', orig);
        next = this.newInode('dir', { mode: 0o755 });
        this.link(cur, name, next);
      }
      if (next.type === 'symlink' && (queue.length > 0 || followLast)) {
        if (++state.hops > MAX_SYMLINKS) throw new TreeError('TREE_LINK_LOOP', 'too many levels of symbolic links', orig);
        const t = next.target!;
        const tparts = splitPath(t);
        if (t.startsWith('/')) stack.length = 1;
        queue.unshift(...tparts);
        continue;
      }
      stack.push(next);
    }
    return stack[stack.length - 1]!;
  }

  private link(dir: Inode, name: string, node: Inode): void {
    dir.entries!.set(name, node);
    node.nlink += node.type === 'dir' ? 2 : 1;
    if (node.type === 'dir') dir.nlink += 1;
  }

  private unlinkEntry(dir: Inode, name: string): Inode | undefined {
    const node = dir.entries!.get(name);
    if (!node) return undefined;
    this.parentCache = undefined;
    dir.entries!.delete(name);
    node.nlink -= node.type === 'dir' ? 2 : 1;
    if (node.type === 'dir') dir.nlink -= 1;
    return node;
  }

  /** Look a path up. `follow` (default true) follows a final symlink. Returns undefined when absent. */
  lookup(path: string, opts: { follow?: boolean } = {}): Inode | undefined {
    try {
      return this.walkTo(splitPath(path), path, false, { hops: 0 }, opts.follow ?? true);
    } catch (e) {
      if (e instanceof TreeError && (e.code === 'TREE_NOT_FOUND' || e.code === 'TREE_NOT_DIR')) return undefined;
      throw e;
    }
  }

  /** mkdir -p. Existing directories keep their metadata unless `meta` is given. */
  mkdirp(path: string, meta?: InodeMeta): Inode {
    const parts = splitPath(path);
    const node = this.walkTo(parts, path, true, { hops: 0 });
    if (node.type !== 'dir') throw new TreeError('TREE_NOT_DIR', 'exists and is not a directory', path);
    if (meta) this.applyMeta(node, meta);
    return node;
  }

  private applyMeta(node: Inode, meta: InodeMeta): void {
    if (meta.mode !== undefined) node.mode = meta.mode & 0o7777;
    if (meta.uid !== undefined) node.uid = meta.uid;
    if (meta.gid !== undefined) node.gid = meta.gid;
    if (meta.mtime) node.mtime = meta.mtime;
    if (meta.atime) node.atime = meta.atime; else if (meta.mtime) node.atime = meta.mtime;
    if (meta.ctime) node.ctime = meta.ctime; else if (meta.mtime) node.ctime = meta.mtime;
    if (meta.xattrs) {
      const entries = meta.xattrs instanceof Map ? [...meta.xattrs] : Object.entries(meta.xattrs);
      if (entries.length) for (const [k, v] of entries) node.xattrs.set(k, v);
    }
  }

  /** Place a new node at `path`, replacing a non-directory already there (as rpm does on upgrade). */
  private place(path: string, node: Inode): Inode {
    const { dir, name } = this.resolveParent(path);
    const old = dir.entries!.get(name);
    if (old) {
      if (old.type === 'dir') throw new TreeError('TREE_IS_DIR', 'a directory is in the way', path);
      this.unlinkEntry(dir, name);
    }
    this.link(dir, name, node);
    return node;
  }

  addFile(path: string, content: FileContent, meta?: InodeMeta): Inode {
    const node = this.newInode('file', meta);
    node.content = content;
    return this.place(path, node);
  }

  symlink(path: string, target: string, meta?: InodeMeta): Inode {
    if (target.length === 0) throw new TreeError('TREE_BAD_LINK', 'empty symlink target', path);
    if (target.includes('\0')) throw new TreeError('TREE_BAD_LINK', 'symlink target contains NUL', path);
    const node = this.newInode('symlink', { ...meta, mode: 0o777 });
    node.target = target;
    return this.place(path, node);
  }

  mknod(path: string, type: 'chardev' | 'blockdev' | 'fifo' | 'socket', rdev: { major: number; minor: number } | undefined, meta?: InodeMeta): Inode {
    const node = this.newInode(type, meta);
    if (type === 'chardev' || type === 'blockdev') node.rdev = rdev ?? { major: 0, minor: 0 };
    return this.place(path, node);
  }

  /** Hard link: `path` becomes another name of the inode at `existing` (which must not be a directory). */
  hardlink(path: string, existing: string): Inode {
    const node = this.lookup(existing, { follow: false });
    if (!node) throw new TreeError('TREE_NOT_FOUND', `hard-link source missing: ${existing}`, path);
    if (node.type === 'dir') throw new TreeError('TREE_IS_DIR', 'cannot hard-link a directory', path);
    return this.place(path, node);
  }

  /** Remove a node (recursively for directories). Returns false when absent. */
  remove(path: string): boolean {
    const { dir, name } = this.resolveParent(path);
    return this.unlinkEntry(dir, name) !== undefined;
  }

  rename(from: string, to: string): void {
    const a = this.resolveParent(from);
    const node = a.dir.entries!.get(a.name);
    if (!node) throw new TreeError('TREE_NOT_FOUND', 'no such file or directory', from);
    if (node.type === 'dir') {
      // Refuse moving a directory below itself.
      const b = this.resolveParent(to);
      for (let p: Inode | undefined = b.dir; p; p = this.parentOf(p)) if (p === node) {
        throw new TreeError('TREE_BAD_RENAME', 'cannot move a directory into itself', to);
      }
    }
    this.unlinkEntry(a.dir, a.name);
    try {
      this.place(to, node);
    } catch (e) {
      this.link(a.dir, a.name, node);
      throw e;
    }
  }

  private parentOf(target: Inode): Inode | undefined {
    for (const e of this.walk()) if (e.inode.type === 'dir' && e.inode.entries!.size) {
      for (const child of e.inode.entries!.values()) if (child === target) return e.inode;
    }
    return undefined;
  }

  /**
   * Depth-first walk in byte order of names (deterministic), parents before
   * children. Hard-linked inodes appear once per name.
   */
  *walk(from: Inode = this.root, prefix = ''): IterableIterator<{ path: string; name: string; inode: Inode; parent: Inode | undefined }> {
    if (from === this.root && prefix === '') yield { path: '/', name: '', inode: this.root, parent: undefined };
    if (from.type !== 'dir') return;
    const names = [...from.entries!.keys()].sort(compareBytes);
    for (const name of names) {
      const inode = from.entries!.get(name)!;
      const path = `${prefix}/${name}`;
      yield { path, name, inode, parent: from };
      if (inode.type === 'dir') yield* this.walk(inode, path);
    }
  }

  /**
   * Split off the subtree at `path` (a mount point): returns a tree whose root
   * is that directory (sharing its inodes), and leaves an empty directory with
   * the same metadata in its place here — what a filesystem for a separate
   * partition (/boot, /boot/efi) and the root filesystem below it each hold.
   */
  detach(path: string): StagingTree {
    const { dir, name } = this.resolveParent(path);
    const node = dir.entries!.get(name);
    if (!node || node.type !== 'dir') throw new TreeError('TREE_NOT_DIR', 'mount point is not a directory', path);
    const sub = new StagingTree({ defaultTime: this.defaultTime });
    sub.nextId = this.nextId;
    (sub as { root: Inode }).root = node;
    this.unlinkEntry(dir, name);
    const empty = this.newInode('dir', { mode: node.mode, uid: node.uid, gid: node.gid, mtime: node.mtime, atime: node.atime, ctime: node.ctime, xattrs: xattrsOf(node) as Map<string, Uint8Array> | undefined });
    this.link(dir, name, empty);
    node.nlink = 2 + [...node.entries!.values()].filter((c) => c.type === 'dir').length;
    return sub;
  }

  /** Counts for sizing: inodes (unique), directories, and total content bytes. */
  stats(): { inodes: number; dirs: number; files: number; bytes: number } {
    const seen = new Set<number>();
    let dirs = 0, files = 0, bytes = 0;
    for (const { inode } of this.walk()) {
      if (seen.has(inode.id)) continue;
      seen.add(inode.id);
      if (inode.type === 'dir') dirs++;
      if (inode.type === 'file') { files++; bytes += inode.content!.size; }
    }
    return { inodes: seen.size, dirs, files, bytes };
  }
}

/** Byte-wise comparison of UTF-8 names (what `LC_ALL=C sort` and e2fsprogs use). */
export function compareBytes(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    // UTF-16 code-unit order is code-point (= UTF-8 byte) order except that surrogates (U+D800..DFFF,
    // halves of code points above U+FFFF) sort below U+E000..FFFF: move them above.
    if (x >= 0xd800 && y >= 0xd800) {
      x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
      y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
    }
    return x - y;
  }
  return a.length - b.length;
}
