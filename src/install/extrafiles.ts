/**
 * The spec's extra files: inline content, files from the build host, and
 * tar/zip overlays unpacked over the tree. Tar members are not copied into
 * memory: each file's content is a span of the (uncompressed) archive on disk,
 * read when the filesystem writer needs it. Compressed tars are first
 * decompressed to a temporary file. Member paths are untrusted: `..` and
 * absolute escapes are refused (PathEscapeError).
 *
 * Tar layout from POSIX.1-2001 pax/ustar (header fields, typeflags, pax
 * `path`/`linkpath`/`size` records) and GNU tar's `L`/`K` long-name members.
 */
import { open, stat, mkdtemp, type FileHandle } from 'node:fs/promises';
import { createReadStream, createWriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve as resolvePath, dirname } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { Struct } from '../binary/struct.js';
import { StagingTree, BufferContent, assertSafeRelative, type FileContent } from '../tree/tree.js';
import { IngotError } from '../errors.js';
import type { ExtraFile } from '../spec/model.js';
import { readTreeText } from './treetext.js';

export class ExtraFileError extends IngotError {}

const TAR_BLOCK = 512;
/** ustar header (POSIX.1-2001 "ustar Interchange Format"). */
export const TarHeader = new Struct('TarHeader', TAR_BLOCK, {
  name: { offset: 0, type: { bytes: 100 } },
  mode: { offset: 100, type: { ascii: 8 } },
  uid: { offset: 108, type: { bytes: 8 } },
  gid: { offset: 116, type: { bytes: 8 } },
  size: { offset: 124, type: { bytes: 12 } },
  mtime: { offset: 136, type: { bytes: 12 } },
  chksum: { offset: 148, type: { ascii: 8 } },
  typeflag: { offset: 156, type: 'u8' },
  linkname: { offset: 157, type: { bytes: 100 } },
  magic: { offset: 257, type: { ascii: 6 } },
  devmajor: { offset: 329, type: { bytes: 8 } },
  devminor: { offset: 337, type: { bytes: 8 } },
  prefix: { offset: 345, type: { bytes: 155 } },
});

const cstr = (b: Uint8Array): string => { const e = b.indexOf(0); return Buffer.from(e < 0 ? b : b.subarray(0, e)).toString('utf8'); };

/** Octal, or GNU base-256 when the high bit of the first byte is set. */
function tarNumber(b: Uint8Array, field: string, at: number, file: string): number {
  if (b[0]! & 0x80) {
    let v = 0;
    for (let i = 1; i < b.length; i++) v = v * 256 + b[i]!;
    if (!Number.isSafeInteger(v)) throw new ExtraFileError('TAR_BAD_NUMBER', `${field} too large`, { file, offset: at });
    return v;
  }
  const s = cstr(b).trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw new ExtraFileError('TAR_BAD_NUMBER', `bad octal ${field}`, { file, offset: at, actual: JSON.stringify(s) });
  return parseInt(s, 8);
}

/** File content read on demand from a span of an archive on disk. */
class SpanContent implements FileContent {
  constructor(private readonly fh: FileHandle, private readonly offset: number, readonly size: number) {}
  async read(buf: Uint8Array, position: number): Promise<number> {
    const n = Math.max(0, Math.min(buf.length, this.size - position));
    if (n === 0) return 0;
    const { bytesRead } = await this.fh.read(buf, 0, n, this.offset + position);
    return bytesRead;
  }
}

function parsePax(text: string): Map<string, string> {
  const m = new Map<string, string>();
  let i = 0;
  const buf = Buffer.from(text, 'utf8');
  while (i < buf.length) {
    const sp = buf.indexOf(0x20, i);
    if (sp < 0) break;
    const len = Number(buf.subarray(i, sp).toString());
    if (!Number.isInteger(len) || len <= 0 || i + len > buf.length) break;
    const rec = buf.subarray(sp + 1, i + len - 1).toString('utf8');
    const eq = rec.indexOf('=');
    if (eq > 0) m.set(rec.slice(0, eq), rec.slice(eq + 1));
    i += len;
  }
  return m;
}

/** Unpack an uncompressed tar file into the tree under `dest`. Returns the number of members. */
export async function unpackTar(tree: StagingTree, archive: string, dest: string, owners?: OwnerMap): Promise<number> {
  const fh = await open(archive, 'r');
  try {
    return await unpackTarFrom(fh, tree, archive, dest, owners);
  } catch (e) {
    await fh.close();
    throw e;
  }
}

async function unpackTarFrom(fh: FileHandle, tree: StagingTree, archive: string, dest: string, owners?: OwnerMap): Promise<number> {
  const size = (await fh.stat()).size;
  const base = dest.replace(/\/+$/, '');
  let pos = 0;
  let count = 0;
  let longName: string | undefined;
  let longLink: string | undefined;
  let pax = new Map<string, string>();
  const hdr = Buffer.alloc(TAR_BLOCK);
  const readBlock = async (at: number, len: number): Promise<Buffer> => {
    const b = Buffer.alloc(len);
    const { bytesRead } = await fh.read(b, 0, len, at);
    if (bytesRead !== len) throw new ExtraFileError('TAR_TRUNCATED', 'archive ends inside a member', { file: archive, offset: at });
    return b;
  };
  while (pos + TAR_BLOCK <= size) {
    const { bytesRead } = await fh.read(hdr, 0, TAR_BLOCK, pos);
    if (bytesRead < TAR_BLOCK) break;
    if (hdr.every((x) => x === 0)) break; // end-of-archive blocks
    const h = TarHeader.decode(hdr, 0, { file: archive, base: pos });
    let sum = 0;
    for (let i = 0; i < TAR_BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : hdr[i]!;
    if (parseInt(h.chksum.trim() || '0', 8) !== sum) throw new ExtraFileError('TAR_BAD_CHECKSUM', 'header checksum mismatch', { file: archive, offset: pos });
    const memberSize = pax.has('size') ? Number(pax.get('size')) : tarNumber(h.size, 'size', pos, archive);
    const dataAt = pos + TAR_BLOCK;
    if (!Number.isSafeInteger(memberSize) || memberSize < 0 || dataAt + memberSize > size) throw new ExtraFileError('TAR_TRUNCATED', 'member data beyond the end of the archive', { file: archive, offset: pos });
    const next = dataAt + Math.ceil(memberSize / TAR_BLOCK) * TAR_BLOCK;
    const type = String.fromCharCode(h.typeflag || 0x30);
    if (type === 'L' || type === 'K' || type === 'x' || type === 'g') {
      if (memberSize > 1 << 20) throw new ExtraFileError('TAR_BAD_HEADER', 'extended header too large', { file: archive, offset: pos });
      const text = cstr(await readBlock(dataAt, memberSize));
      if (type === 'L') longName = text;
      else if (type === 'K') longLink = text;
      else if (type === 'x') pax = parsePax((await readBlock(dataAt, memberSize)).toString('utf8'));
      pos = next;
      continue;
    }
    const ustarName = h.magic.startsWith('ustar') && h.prefix[0] ? `${cstr(h.prefix)}/${cstr(h.name)}` : cstr(h.name);
    const name = pax.get('path') ?? longName ?? ustarName;
    const link = pax.get('linkpath') ?? longLink ?? cstr(h.linkname);
    longName = longLink = undefined;
    pax = new Map();
    pos = next;
    const rel = assertSafeRelative(name).join('/');
    if (rel === '') continue;
    const path = `${base}/${rel}`;
    const mode = parseInt(h.mode.trim() || '0', 8) & 0o7777;
    const meta = { mode, ...(owners ? owners(tarNumber(h.uid, 'uid', pos, archive), tarNumber(h.gid, 'gid', pos, archive)) : {}), mtime: { sec: tarNumber(h.mtime, 'mtime', pos, archive), nsec: 0 } };
    count++;
    switch (type) {
      case '0': case '7': tree.addFile(path, new SpanContent(fh, dataAt, memberSize), meta); break;
      case '5': tree.mkdirp(path, meta); break;
      case '2': tree.symlink(path, link, meta); break;
      case '1': tree.hardlink(path, `${base}/${assertSafeRelative(link).join('/')}`); break;
      case '3': case '4': tree.mknod(path, type === '3' ? 'chardev' : 'blockdev', { major: tarNumber(h.devmajor, 'devmajor', pos, archive), minor: tarNumber(h.devminor, 'devminor', pos, archive) }, meta); break;
      case '6': tree.mknod(path, 'fifo', undefined, meta); break;
      default: throw new ExtraFileError('TAR_UNSUPPORTED', `unsupported tar member type ${JSON.stringify(type)}`, { file: archive, field: name });
    }
  }
  return count;
}

/** Unpack a zip archive (yauzl) into the tree; contents are inflated into memory per member. */
export async function unpackZip(tree: StagingTree, archive: string, dest: string): Promise<number> {
  const yauzl = await import('yauzl');
  const base = dest.replace(/\/+$/, '');
  const zip = await new Promise<import('yauzl').ZipFile>((res, rej) => yauzl.open(archive, { lazyEntries: true, autoClose: true, strictFileNames: false, decodeStrings: false }, (e, z) => (e || !z ? rej(e ?? new Error('no zip')) : res(z))));
  let count = 0;
  await new Promise<void>((res, rej) => {
    zip.on('error', rej);
    zip.on('end', () => res());
    zip.on('entry', (entry: import('yauzl').Entry) => {
      const done = (e?: unknown): void => { if (e) { zip.close(); rej(e); } else zip.readEntry(); };
      try {
        const rel = assertSafeRelative(zipEntryName(entry)).join('/');
        const unixMode = (entry.externalFileAttributes >>> 16) & 0xffff;
        const isLink = (unixMode & 0o170000) === 0o120000;
        if (rel === '' || zipEntryName(entry).endsWith('/')) { tree.mkdirp(`${base}/${rel}`, unixMode ? { mode: unixMode & 0o7777 } : {}); count++; done(); return; }
        zip.openReadStream(entry, (err, stream) => {
          if (err || !stream) { done(err ?? new Error('no stream')); return; }
          const chunks: Buffer[] = [];
          stream.on('data', (c: Buffer) => chunks.push(c));
          stream.on('error', done);
          stream.on('end', () => {
            try {
              const data = Buffer.concat(chunks);
              if (isLink) tree.symlink(`${base}/${rel}`, data.toString('utf8'));
              else tree.addFile(`${base}/${rel}`, new BufferContent(data), { mode: unixMode ? unixMode & 0o7777 : 0o644 });
              count++;
              done();
            } catch (e) { done(e); }
          });
        });
      } catch (e) { done(e); }
    });
    zip.readEntry();
  });
  return count;
}

/**
 * Entry name (yauzl with decodeStrings off gives bytes): the Info-ZIP Unicode
 * Path extra field (0x7075) when present; UTF-8 when general-purpose bit 11 is
 * set or the entry was made on Unix (Info-ZIP stores the raw bytes there, and
 * unzip reads them raw); otherwise CP437, approximated by Latin-1.
 */
function zipEntryName(entry: import('yauzl').Entry): string {
  for (const f of entry.extraFields ?? []) {
    if (f.id === 0x7075 && f.data.length > 5 && f.data[0] === 1) return f.data.subarray(5).toString('utf8');
  }
  const raw = entry.fileName as unknown as Buffer | string;
  if (typeof raw === 'string') return raw;
  const utf8 = (entry.generalPurposeBitFlag & 0x800) !== 0 || entry.versionMadeBy >> 8 === 3;
  return raw.toString(utf8 ? 'utf8' : 'latin1');
}

type OwnerMap = (uid: number, gid: number) => { uid: number; gid: number };

/** Resolve `owner`/`group` names through the tree's /etc/passwd and /etc/group (numbers pass through). */
async function idsFor(tree: StagingTree, owner: string | undefined, group: string | undefined): Promise<{ uid?: number; gid?: number }> {
  const out: { uid?: number; gid?: number } = {};
  const look = async (file: string, name: string, field: 'owner' | 'group'): Promise<number> => {
    if (/^\d+$/.test(name)) return Number(name);
    const text = (await readTreeText(tree, file)) ?? '';
    const line = text.split('\n').find((l) => l.split(':')[0] === name);
    if (!line) throw new ExtraFileError('UNKNOWN_OWNER', `${field} ${name} is not in the image's ${file}`, { field, actual: name });
    return Number(line.split(':')[2]);
  };
  if (owner !== undefined) out.uid = await look('/etc/passwd', owner, 'owner');
  if (group !== undefined) out.gid = await look('/etc/group', group, 'group');
  return out;
}

/** Put every extra file of the spec into the tree. Relative host paths resolve against `baseDir` (the spec's folder). */
export async function applyExtraFiles(tree: StagingTree, files: ExtraFile[], baseDir: string): Promise<void> {
  for (const f of files) {
    if (f.kind === 'inline') {
      const data = f.encoding === 'base64' ? Buffer.from(f.content, 'base64') : Buffer.from(f.content, 'utf8');
      tree.mkdirp(dirname(f.path));
      tree.addFile(f.path, new BufferContent(data), { mode: f.mode ?? 0o644, ...(await idsFor(tree, f.owner, f.group)) });
    } else if (f.kind === 'host') {
      const src = f.source.startsWith('file://') ? new URL(f.source).pathname : resolvePath(baseDir, f.source);
      if (/^[a-z]+:\/\//.test(f.source) && !f.source.startsWith('file://')) throw new ExtraFileError('UNSUPPORTED_SOURCE', 'only local files can be copied (download it first)', { field: f.path, actual: f.source });
      const st = await stat(src).catch(() => undefined);
      if (!st?.isFile()) throw new ExtraFileError('MISSING_SOURCE', 'source file not found', { file: src, field: f.path });
      const fh = await open(src, 'r');
      tree.mkdirp(dirname(f.path));
      tree.addFile(f.path, new SpanContent(fh, 0, st.size), { mode: f.mode ?? (st.mode & 0o7777), ...(await idsFor(tree, f.owner, f.group)) });
    } else {
      const archive = resolvePath(baseDir, f.archive);
      tree.mkdirp(f.path);
      if (f.format === 'zip') await unpackZip(tree, archive, f.path);
      else await unpackTar(tree, await plainTar(archive), f.path);
    }
  }
}

/** A gzip-compressed tar is decompressed to a temporary file first, so members stay spans on disk. */
async function plainTar(archive: string): Promise<string> {
  const head = Buffer.alloc(2);
  const fh = await open(archive, 'r');
  try { await fh.read(head, 0, 2, 0); } finally { await fh.close(); }
  if (head[0] !== 0x1f || head[1] !== 0x8b) return archive;
  const dir = await mkdtemp(join(tmpdir(), 'ingot-overlay-'));
  const out = join(dir, 'overlay.tar');
  await pipeline(createReadStream(archive), createGunzip(), createWriteStream(out));
  return out;
}
