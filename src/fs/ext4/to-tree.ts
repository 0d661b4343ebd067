/**
 * An ext2/3/4 image as a StagingTree whose file contents read from the
 * image on demand: how ingot compares, converts or re-packs existing
 * filesystems.
 */
import { StagingTree, type FileContent } from '../../tree/tree.js';
import type { Range } from '../../util/intervals.js';
import type { Ext4Reader, LoadedInode, Mapping } from './reader.js';

export class Ext4FileContent implements FileContent {
  private maps?: Mapping[];
  constructor(private readonly reader: Ext4Reader, private readonly inode: LoadedInode, readonly size: number) {}

  async read(buf: Uint8Array, position: number): Promise<number> {
    this.maps ??= await this.reader.mappings(this.inode);
    const data = await this.reader.read(this.inode, position, buf.length, this.maps);
    buf.set(data);
    return data.length;
  }
}

/** Data ranges of a file from its mappings (holes and unwritten extents excluded). */
export function dataRangesOf(maps: Mapping[], blockSize: number, size: number): Range[] {
  return maps.filter((m) => !m.unwritten && m.len > 0)
    .map((m) => ({ offset: m.lblk * blockSize, length: Math.min(m.len * blockSize, size - m.lblk * blockSize) }))
    .filter((r) => r.length > 0);
}

/** Read the whole filesystem (or the subtree at `path`) into a StagingTree. Hard links stay links. */
export async function readExt4Tree(reader: Ext4Reader, path = '/'): Promise<StagingTree> {
  const tree = new StagingTree();
  const firstPath = new Map<number, string>();
  const prefix = path === '/' ? '' : '/' + path.split('/').filter(Boolean).join('/');
  for await (const { path: p, inode, stat } of reader.walk(path)) {
    const rel = p.slice(prefix.length) || '/';
    const meta = { mode: stat.mode, uid: stat.uid, gid: stat.gid, atime: stat.atime, mtime: stat.mtime, ctime: stat.ctime, xattrs: await reader.xattrs(inode) };
    if (rel === '/') {
      tree.mkdirp('/', meta);
      continue;
    }
    if (stat.type !== 'dir' && firstPath.has(stat.ino)) {
      tree.hardlink(rel, firstPath.get(stat.ino)!);
      continue;
    }
    firstPath.set(stat.ino, rel);
    switch (stat.type) {
      case 'dir': tree.mkdirp(rel, meta); break;
      case 'file': tree.addFile(rel, new Ext4FileContent(reader, inode, stat.size), meta); break;
      case 'symlink': {
        const n = tree.symlink(rel, await reader.readlink(inode), meta);
        n.uid = stat.uid; n.gid = stat.gid; n.mode = stat.mode;
        break;
      }
      case 'chardev': case 'blockdev': case 'fifo': case 'socket':
        tree.mknod(rel, stat.type, stat.rdev, meta);
        break;
      default: break;
    }
  }
  return tree;
}
