/**
 * Unpacking packages into the staging tree, in transaction order, the way
 * rpm installs them into an empty root: payload entries with the header's
 * metadata, hard-link sets written once, %ghost directories created and
 * %ghost files only recorded, documentation and unwanted languages dropped on
 * request, and file conflicts between packages refused.
 */
import { IngotError } from '../errors.js';
import type { RpmPackage } from '../rpm/reader.js';
import { FileFlag } from '../rpm/tags.js';
import type { ContentStore } from '../tree/content-store.js';
import { BufferContent, StagingTree, type Inode, type Timespec } from '../tree/tree.js';
import { encodeFileCaps } from './caps.js';

export class FileConflictError extends IngotError {
  constructor(path: string, a: string, b: string) {
    super('FILE_CONFLICT', `file ${path} from ${b} conflicts with file from ${a}`, { file: path });
  }
}

export class UnknownOwnerError extends IngotError {
  constructor(kind: 'user' | 'group', name: string, path: string, pkg: string) {
    super('UNKNOWN_OWNER', `${kind} '${name}' owning ${path} in ${pkg} does not exist in the image (no /etc/${kind === 'user' ? 'passwd' : 'group'} entry, sysusers.d file or scriptlet creates it)`, { file: path, field: kind });
  }
}

/** Maps the user and group names packages use to ids (the image's own passwd/group). */
export interface OwnerResolver {
  uid(name: string): number | undefined;
  gid(name: string): number | undefined;
}

export interface UnpackOptions {
  /** kickstart `--excludedocs`: drop %doc files (license files stay, as rpm's --excludedocs keeps them). */
  excludeDocs?: boolean;
  /** kickstart `--instLangs`: keep only files of these languages (plus language-neutral ones). */
  instLangs?: string[];
  /** Clamp timestamps to SOURCE_DATE_EPOCH. */
  sourceDateEpoch?: number;
  /** Unknown owners fall back to root with a warning instead of an error. */
  lenientOwners?: boolean;
  /**
   * Unknown owners are held (as root) until `settleOwners`, for accounts that
   * the package's own sysusers.d file creates once its files are in place.
   */
  deferOwners?: boolean;
}

interface Owner { pkg: string; kind: Inode['type']; digest: string; linkTo: string }

export interface UnpackedPackage {
  nevra: string;
  files: number;
  bytes: number;
  ghosts: string[];
  skipped: number;
}

/** Tracks which package placed which path, across a whole transaction. */
export class Unpacker {
  private readonly owners = new Map<string, Owner>();
  private pending: { node: Inode; user: string; group: string; path: string; pkg: string }[] = [];
  readonly warnings: string[] = [];

  constructor(
    readonly tree: StagingTree,
    readonly store: ContentStore,
    readonly resolver: () => OwnerResolver,
    readonly options: UnpackOptions = {},
  ) {}

  private time(sec: number): Timespec {
    const e = this.options.sourceDateEpoch;
    return { sec: e !== undefined && sec > e ? e : sec, nsec: 0 };
  }

  private ids(user: string, group: string, path: string, pkg: string): { uid: number; gid: number } {
    const r = this.resolver();
    let uid = user === 'root' ? 0 : r.uid(user);
    let gid = group === 'root' ? 0 : r.gid(group);
    if ((uid === undefined || gid === undefined) && this.options.deferOwners) {
      this.deferred = { user, group, path, pkg };
      return { uid: uid ?? 0, gid: gid ?? 0 };
    }
    if (uid === undefined || gid === undefined) {
      if (!this.options.lenientOwners) throw new UnknownOwnerError(uid === undefined ? 'user' : 'group', uid === undefined ? user : group, path, pkg);
      this.warnings.push(`${pkg}: ${path}: unknown ${uid === undefined ? `user ${user}` : `group ${group}`}, using root`);
      uid ??= 0;
      gid ??= 0;
    }
    return { uid, gid };
  }

  private deferred?: { user: string; group: string; path: string; pkg: string };

  /** Resolve owners held back by `deferOwners`; unknown ones are errors (or warnings when lenient). */
  settleOwners(): void {
    const held = this.pending;
    this.pending = [];
    const defer = this.options.deferOwners;
    this.options.deferOwners = false;
    try {
      for (const h of held) {
        const { uid, gid } = this.ids(h.user, h.group, h.path, h.pkg);
        h.node.uid = uid;
        h.node.gid = gid;
      }
    } finally {
      this.options.deferOwners = defer;
    }
  }

  private claim(path: string, o: Owner): void {
    const prev = this.owners.get(path);
    if (prev && prev.pkg !== o.pkg && o.kind !== 'dir' && prev.kind !== 'dir') {
      const same = prev.kind === o.kind && (o.kind === 'file' ? prev.digest === o.digest : o.kind === 'symlink' ? prev.linkTo === o.linkTo : true);
      if (!same) throw new FileConflictError(path, prev.pkg, o.pkg);
    } else if (prev && prev.pkg !== o.pkg && (prev.kind === 'dir') !== (o.kind === 'dir')) {
      throw new FileConflictError(path, prev.pkg, o.pkg);
    }
    this.owners.set(path, o);
  }

  private skip(flags: number, lang: string): boolean {
    if (this.options.excludeDocs && flags & FileFlag.DOC && !(flags & FileFlag.LICENSE)) return true;
    const langs = this.options.instLangs;
    if (langs && lang !== '' && lang !== 'C' && !langs.some((l) => lang === l || lang.startsWith(`${l}_`) || lang.startsWith(`${l}.`))) return true;
    return false;
  }

  async install(pkg: RpmPackage): Promise<UnpackedPackage> {
    const info = pkg.info;
    const nevra = info.nevra;
    const files = pkg.files;
    const result: UnpackedPackage = { nevra, files: 0, bytes: 0, ghosts: [], skipped: 0 };
    const tree = this.tree;
    const skippedPaths: string[] = [];
    const ownDirs: string[] = [];

    for await (const e of pkg.entries()) {
      const fi = e.fileIndex >= 0 ? files[e.fileIndex] : undefined;
      if (fi && this.skip(fi.flags, fi.lang)) {
        result.skipped++;
        skippedPaths.push(e.path);
        for await (const _ of e.content) { /* drain */ }
        continue;
      }
      const { uid, gid } = this.ids(e.user, e.group, e.path, nevra);
      const meta = { mode: e.mode & 0o7777, uid, gid, mtime: this.time(e.mtime) };
      let node: Inode;
      switch (e.type) {
        case 'dir': {
          this.claim(e.path, { pkg: nevra, kind: 'dir', digest: '', linkTo: '' });
          const existing = tree.lookup(e.path, { follow: false });
          // A symlink already standing where a package ships a directory (usrmove: /lib → usr/lib) wins, as in rpm.
          if (existing && existing.type === 'symlink') { this.deferred = undefined; continue; }
          node = tree.mkdirp(e.path, meta);
          ownDirs.push(e.path);
          break;
        }
        case 'file': {
          this.claim(e.path, { pkg: nevra, kind: 'file', digest: e.digest, linkTo: '' });
          const content = e.size === 0 ? new BufferContent(new Uint8Array(0)) : await this.store.put(e.content);
          if (e.size === 0) for await (const _ of e.content) { /* drain */ }
          node = tree.addFile(e.path, content, meta);
          result.bytes += e.size;
          break;
        }
        case 'hardlink':
          this.claim(e.path, { pkg: nevra, kind: 'file', digest: e.digest, linkTo: '' });
          node = tree.hardlink(e.path, e.linkTo);
          break;
        case 'symlink':
          this.claim(e.path, { pkg: nevra, kind: 'symlink', digest: '', linkTo: e.linkTo });
          node = tree.symlink(e.path, e.linkTo, meta);
          break;
        case 'char':
        case 'block':
          this.claim(e.path, { pkg: nevra, kind: e.type === 'char' ? 'chardev' : 'blockdev', digest: '', linkTo: '' });
          node = tree.mknod(e.path, e.type === 'char' ? 'chardev' : 'blockdev', { major: e.rdevMajor, minor: e.rdevMinor }, meta);
          break;
        case 'fifo':
        case 'socket':
          this.claim(e.path, { pkg: nevra, kind: e.type, digest: '', linkTo: '' });
          node = tree.mknod(e.path, e.type, undefined, meta);
          break;
      }
      if (this.deferred) { this.pending.push({ node, ...this.deferred }); this.deferred = undefined; }
      if (e.caps) node.xattrs.set('security.capability', encodeFileCaps(e.caps, e.path));
      result.files++;
    }

    // rpm skips "(now empty) directories that had skipped files" (lib/transaction.c, skipFiles): a
    // package directory left empty whose subtree held only dropped docs or languages is not created.
    if (skippedPaths.length) {
      for (const d of ownDirs.sort((a, b) => b.split('/').length - a.split('/').length)) {
        const node = tree.lookup(d, { follow: false });
        if (node?.type === 'dir' && node.entries!.size === 0 && skippedPaths.some((p) => p.startsWith(`${d}/`))) tree.remove(d);
      }
    }

    // %ghost entries are not in the payload: directories are created, files only recorded (rpm -ql lists them).
    for (const f of files) {
      if (!(f.flags & FileFlag.GHOST)) continue;
      if ((f.mode & 0o170000) === 0o040000) {
        if (!tree.lookup(f.path)) {
          const { uid, gid } = this.ids(f.user, f.group, f.path, nevra);
          const node = tree.mkdirp(f.path, { mode: f.mode & 0o7777, uid, gid, mtime: this.time(f.mtime) });
          if (this.deferred) { this.pending.push({ node, ...this.deferred }); this.deferred = undefined; }
        }
      } else {
        result.ghosts.push(f.path);
      }
    }
    return result;
  }
}
