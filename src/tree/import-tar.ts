/**
 * Import a tar archive (ustar, GNU, pax; plain, gzip, xz or zstd) into a
 * staging tree.
 *
 * tar-stream parses the archive. Pax extended headers are additionally read
 * by {@link PaxTap}, a pass-through that walks the same 512-byte blocks,
 * because tar-stream decodes pax values as UTF-8 text and binary xattr values
 * (security.capability, security.selinux with a trailing NUL) must survive
 * byte for byte (POSIX.1-2008 pax: values are octets; GNU tar and star store
 * xattrs as `SCHILY.xattr.<name>`). The tap also gives nanosecond times
 * (pax `mtime`/`atime`/`ctime`), ids beyond 8 octal digits (pax `uid`/`gid`)
 * and GNU sparse files (old GNU 'S' members, pax GNU.sparse.* 0.1 and 1.0).
 *
 * Every member name goes through {@link assertSafeRelative}; symlink targets
 * are stored verbatim (the tree resolves them chroot-style).
 */
import { createReadStream } from 'node:fs';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { Decompress as ZstdDecompress } from 'fzstd';
import { createRequire } from 'node:module';
import tar from 'tar-stream';
import { IngotError, PathEscapeError } from '../errors.js';
import { ContentStore, FileSpanContent, type SparseExtent } from './content-store.js';
import { assertSafeRelative, type InodeMeta, type StagingTree, type Timespec } from './tree.js';

// lzma-native ships no type declarations; only its decompressor stream is used.
const lzma = createRequire(import.meta.url)('lzma-native') as { createDecompressor(): Transform };

/** The member header as tar-stream v3 gives it (its typings omit `byteOffset`, the member's data offset). */
type TarHeader = tar.Header & { byteOffset: number };

export class TarFormatError extends IngotError {}

export type TarCompression = 'none' | 'gzip' | 'xz' | 'zstd';

export interface ImportTarOptions {
  /** Tree directory to extract into (default `/`). */
  into?: string;
  /**
   * Where member contents are copied. Not needed for an uncompressed tar
   * given by path (members become spans of the archive itself). When needed
   * and absent, a store is created and returned in the result.
   */
  store?: ContentStore;
  /** Map an entry's owner (e.g. by uname/gname through the tree's /etc/passwd). */
  mapOwner?: (o: { uid: number; gid: number; uname: string; gname: string }) => { uid: number; gid: number };
  /** Name for error messages when the source is a stream. */
  name?: string;
}

export interface ImportTarResult {
  compression: TarCompression;
  entries: number;
  files: number; dirs: number; symlinks: number; hardlinks: number; specials: number;
  xattrs: number;
  /** The store created for contents when none was given (caller disposes it). */
  store?: ContentStore;
}

const BLOCK = 512;
/** Largest pax/long-name header accepted (tar-stream's own bound is similar). */
const MAX_META = 1 << 20;

/** Raw pax records of the members, keyed by the data offset tar-stream reports (`header.byteOffset`). */
type PaxRecords = Map<string, Buffer>;

function parseOctalOrBase256(b: Buffer, what: string, offset: number): number {
  if (b[0]! & 0x80) {
    // GNU base-256: big-endian two's complement with the top bit as marker.
    let v = 0n;
    for (let i = 0; i < b.length; i++) v = (v << 8n) | BigInt(i === 0 ? b[i]! & 0x7f : b[i]!);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new TarFormatError('TAR_BAD_NUMBER', `${what} too large`, { offset });
    return Number(v);
  }
  const s = b.toString('latin1').replace(/[\0 ]+.*$/s, '').trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw new TarFormatError('TAR_BAD_NUMBER', `${what} is not octal`, { offset, actual: JSON.stringify(s) });
  return parseInt(s, 8);
}

/** Parse pax records (`<len> <key>=<value>\n`), keeping values as bytes. */
export function parsePaxRecords(buf: Buffer, offset = 0): PaxRecords {
  const out: PaxRecords = new Map();
  let p = 0;
  while (p < buf.length) {
    if (buf[p] === 0) break; // padding
    const sp = buf.indexOf(0x20, p);
    const len = sp > p ? Number(buf.toString('latin1', p, sp)) : NaN;
    if (!Number.isInteger(len) || len <= sp - p + 1 || p + len > buf.length || buf[p + len - 1] !== 0x0a) {
      throw new TarFormatError('TAR_BAD_PAX', 'malformed pax extended header record', { offset: offset + p });
    }
    const rec = buf.subarray(sp + 1, p + len - 1);
    const eq = rec.indexOf(0x3d);
    if (eq < 0) throw new TarFormatError('TAR_BAD_PAX', 'pax record without =', { offset: offset + p });
    out.set(rec.toString('utf8', 0, eq), Buffer.from(rec.subarray(eq + 1)));
    p += len;
  }
  return out;
}

/** What the tap learned about one member. */
export interface MemberInfo {
  /** Pax records in force (global merged with local), values as bytes. */
  pax: PaxRecords;
  /** Offset of the member's data in the (decompressed) archive. */
  dataAt: number;
  /** Old GNU sparse member ('S'): data regions, logical size. */
  oldGnuSparse?: { map: number[]; realsize: number };
}

/**
 * Pass-through that follows the archive's block structure and records each
 * member's {@link MemberInfo}, keyed by the data offset tar-stream will
 * report. Old GNU sparse extension blocks (which tar-stream cannot skip) are
 * removed from the stream; the sparse map goes into the member's info.
 */
export class PaxTap extends Transform {
  readonly records = new Map<number, MemberInfo>();
  private inPos = 0;        // archive offset of the next byte consumed
  private outPos = 0;       // offset of the next byte passed on
  private pending: Buffer[] = [];
  private pendingLen = 0;
  private skip = 0;         // member data still to pass over
  private meta: { type: number; size: number; at: number } | undefined;
  private sparse: { map: number[]; realsize: number; dataSize: number; headerOut: number } | undefined;
  private global: PaxRecords = new Map();
  private local: PaxRecords | undefined;
  private localSize: number | undefined;
  private out: Buffer[] = [];

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    try {
      this.consume(chunk);
      const out = this.out;
      this.out = [];
      cb(null, out.length === 1 ? out[0] : Buffer.concat(out));
    } catch (e) {
      cb(e as Error);
    }
  }

  /** Archive bytes consumed so far (for error offsets). */
  get position(): number { return this.inPos; }

  private pass(b: Buffer): void { if (b.length) { this.out.push(b); this.outPos += b.length; } }

  private consume(chunk: Buffer): void {
    let c = chunk;
    while (c.length) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, c.length);
        this.pass(c.subarray(0, n));
        this.skip -= n; this.inPos += n; c = c.subarray(n);
        continue;
      }
      const want = this.meta ? roundUp(this.meta.size) : BLOCK;
      const n = Math.min(want - this.pendingLen, c.length);
      this.pending.push(c.subarray(0, n)); this.pendingLen += n; c = c.subarray(n);
      if (this.pendingLen < want) return;
      const buf = Buffer.concat(this.pending, this.pendingLen);
      const at = this.inPos;
      this.pending = []; this.pendingLen = 0; this.inPos += want;
      if (this.sparse) this.sparseExtension(buf, at);
      else if (this.meta) { this.pass(buf); this.finishMeta(buf.subarray(0, this.meta.size)); }
      else { this.pass(buf); this.header(buf, at); }
    }
  }

  private header(h: Buffer, at: number): void {
    if (h.every((b) => b === 0)) return;
    const type = h[156]!;
    const size = parseOctalOrBase256(h.subarray(124, 136), 'size', at + 124);
    // 'x' local pax, 'g' global pax, 'L'/'K' GNU long name/link.
    if (type === 0x78 || type === 0x67 || type === 0x4c || type === 0x4b) {
      if (size > MAX_META) throw new TarFormatError('TAR_META_TOO_BIG', 'extended header too large', { offset: at, actual: `${size}` });
      if (size === 0) return;
      this.meta = { type, size, at: at + BLOCK };
      return;
    }
    if (type === 0x53) {
      // Old GNU sparse ('S'): 4 map entries at 386, isextended at 482, realsize at 483 (GNU tar manual, "oldgnu_header").
      const map = readSparseEntries(h, 386, 4, at);
      const realsize = parseOctalOrBase256(h.subarray(483, 495), 'realsize', at + 483);
      this.sparse = { map, realsize, dataSize: size, headerOut: this.outPos };
      if (h[482] === 0) this.finishSparse();
      return;
    }
    this.records.set(this.outPos, { pax: this.paxInForce(), dataAt: at + BLOCK });
    // tar-stream skips no data for directories (their size is always 0 in practice).
    this.skip = type === 0x35 ? 0 : roundUp(this.localSize ?? size);
  }

  private paxInForce(): PaxRecords {
    const merged = new Map([...this.global, ...(this.local ?? [])]);
    this.local = undefined; this.localSize = undefined;
    return merged;
  }

  /** An old GNU sparse extension block: 21 map entries, isextended at 504. Dropped from the stream. */
  private sparseExtension(b: Buffer, at: number): void {
    const sp = this.sparse!;
    if (sp.map.length > 2_000_000) throw new TarFormatError('TAR_BAD_SPARSE', 'sparse map too long', { offset: at });
    sp.map.push(...readSparseEntries(b, 0, 21, at));
    if (b[504] === 0) this.finishSparse();
  }

  private finishSparse(): void {
    const sp = this.sparse!;
    this.sparse = undefined;
    this.records.set(this.outPos, { pax: this.paxInForce(), dataAt: this.inPos, oldGnuSparse: { map: sp.map, realsize: sp.realsize } });
    this.skip = roundUp(sp.dataSize);
  }

  private finishMeta(data: Buffer): void {
    const { type, at } = this.meta!;
    this.meta = undefined;
    if (type === 0x78 || type === 0x67) {
      const recs = parsePaxRecords(data, at);
      if (type === 0x67) { for (const [k, v] of recs) this.global.set(k, v); return; }
      this.local = new Map([...(this.local ?? []), ...recs]);
      const s = recs.get('size');
      if (s) this.localSize = Number(s.toString('latin1'));
    }
  }
}

/** `count` (offset, numbytes) pairs of 12-byte numbers from `pos`; an empty offset field ends the list. */
function readSparseEntries(b: Buffer, pos: number, count: number, at: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    const p = pos + i * 24;
    if (b[p] === 0) break;
    out.push(parseOctalOrBase256(b.subarray(p, p + 12), 'sparse offset', at + p), parseOctalOrBase256(b.subarray(p + 12, p + 24), 'sparse numbytes', at + p + 12));
  }
  return out;
}

const roundUp = (n: number): number => Math.ceil(n / BLOCK) * BLOCK;

/** Parse a pax time (`seconds[.fraction]`, possibly negative) into a Timespec. */
export function parsePaxTime(v: string): Timespec | undefined {
  const m = /^(-?)(\d+)(?:\.(\d+))?$/.exec(v.trim());
  if (!m) return undefined;
  const frac = Number(((m[3] ?? '') + '000000000').slice(0, 9));
  let sec = Number(m[2]);
  let nsec = frac;
  if (m[1] === '-') { sec = -sec; if (nsec) { sec -= 1; nsec = 1_000_000_000 - nsec; } }
  return { sec, nsec };
}

function xattrsFrom(pax: PaxRecords): Map<string, Uint8Array> {
  const x = new Map<string, Uint8Array>();
  for (const [k, v] of pax) {
    if (k.startsWith('SCHILY.xattr.')) x.set(k.slice('SCHILY.xattr.'.length), v);
    // libarchive: name percent-encoded, value base64.
    else if (k.startsWith('LIBARCHIVE.xattr.')) x.set(decodeURIComponent(k.slice('LIBARCHIVE.xattr.'.length)), Buffer.from(v.toString('latin1'), 'base64'));
    // Red Hat's tar before upstream xattr support.
    else if (k === 'RHT.security.selinux') x.set('security.selinux', v);
  }
  return x;
}

/** Recognise the compression from the first bytes. */
export function sniffCompression(head: Uint8Array): TarCompression | 'bzip2' {
  const b = Buffer.from(head.buffer, head.byteOffset, head.length);
  if (b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b) return 'gzip';
  if (b.length >= 6 && b.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  if (b.length >= 4 && b.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  if (b.length >= 3 && b.toString('latin1', 0, 3) === 'BZh') return 'bzip2';
  return 'none';
}

class ZstdTransform extends Transform {
  private readonly d = new ZstdDecompress((chunk) => { this.push(Buffer.from(chunk)); });
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    try { this.d.push(chunk); cb(); } catch (e) { cb(new TarFormatError('TAR_BAD_ZSTD', `zstd: ${(e as Error).message}`)); }
  }
  override _flush(cb: TransformCallback): void {
    try { this.d.push(new Uint8Array(0), true); cb(); } catch (e) { cb(new TarFormatError('TAR_BAD_ZSTD', `zstd: ${(e as Error).message}`)); }
  }
}

function decompressor(c: TarCompression): Transform | undefined {
  switch (c) {
    case 'gzip': return createGunzip();
    case 'xz': return lzma.createDecompressor();
    case 'zstd': return new ZstdTransform();
    default: return undefined;
  }
}

/** Split an async byte source into its first ≥ 6 bytes and the rest. */
async function peek(src: AsyncIterable<Uint8Array>): Promise<{ head: Buffer; rest: AsyncIterable<Buffer> }> {
  const it = src[Symbol.asyncIterator]();
  const parts: Buffer[] = [];
  let len = 0;
  while (len < 6) {
    const r = await it.next();
    if (r.done) break;
    const b = Buffer.from(r.value);
    parts.push(b); len += b.length;
  }
  const head = Buffer.concat(parts);
  async function* rest(): AsyncIterable<Buffer> {
    if (head.length) yield head;
    for (;;) { const r = await it.next(); if (r.done) return; yield Buffer.from(r.value); }
  }
  return { head, rest: rest() };
}

/**
 * Read a GNU sparse member into sparse extents: old GNU ('S', map from the
 * headers), pax 1.0 (the map heads the data) or pax 0.1 (`GNU.sparse.map`).
 */
async function* sparseExtents(stream: AsyncIterable<Buffer>, info: MemberInfo, where: string): AsyncIterable<SparseExtent> {
  const reader = new ByteReader(stream);
  let map: number[];
  const pax = info.pax;
  const major = pax.get('GNU.sparse.major')?.toString();
  if (info.oldGnuSparse) {
    map = info.oldGnuSparse.map;
  } else if (major === '1') {
    const nums: number[] = [];
    let consumed = 0;
    const line = async (): Promise<number> => {
      const l = await reader.line(32);
      consumed += l.length + 1;
      if (!/^\d+$/.test(l)) throw new TarFormatError('TAR_BAD_SPARSE', 'bad sparse map', { file: where, actual: JSON.stringify(l) });
      return Number(l);
    };
    const count = await line();
    if (count > 1_000_000) throw new TarFormatError('TAR_BAD_SPARSE', 'sparse map too long', { file: where });
    for (let i = 0; i < count * 2; i++) nums.push(await line());
    await reader.skip(roundUp(consumed) - consumed);
    map = nums;
  } else {
    const m = pax.get('GNU.sparse.map')?.toString() ?? '';
    map = m === '' ? [] : m.split(',').map(Number);
    if (map.some((n) => !Number.isSafeInteger(n) || n < 0) || map.length % 2) throw new TarFormatError('TAR_BAD_SPARSE', 'bad GNU.sparse.map', { file: where });
  }
  for (let i = 0; i < map.length; i += 2) {
    const offset = map[i]!, length = map[i + 1]!;
    if (length === 0) continue;
    yield { offset, data: reader.take(length) };
  }
}

/** Sequential reader over a chunk stream: lines, skips and bounded sub-streams. */
class ByteReader {
  private buf: Buffer = Buffer.alloc(0);
  private readonly it: AsyncIterator<Buffer>;
  constructor(src: AsyncIterable<Buffer>) { this.it = src[Symbol.asyncIterator](); }
  private async fill(): Promise<boolean> {
    const r = await this.it.next();
    if (r.done) return false;
    this.buf = this.buf.length ? Buffer.concat([this.buf, r.value]) : r.value;
    return true;
  }
  async line(max: number): Promise<string> {
    for (;;) {
      const nl = this.buf.indexOf(0x0a);
      if (nl >= 0) { const s = this.buf.toString('latin1', 0, nl); this.buf = this.buf.subarray(nl + 1); return s; }
      if (this.buf.length > max || !(await this.fill())) throw new TarFormatError('TAR_BAD_SPARSE', 'truncated sparse map');
    }
  }
  async skip(n: number): Promise<void> {
    while (this.buf.length < n) if (!(await this.fill())) throw new TarFormatError('TAR_TRUNCATED', 'member data truncated');
    this.buf = this.buf.subarray(n);
  }
  async *take(n: number): AsyncIterable<Buffer> {
    while (n > 0) {
      if (this.buf.length === 0 && !(await this.fill())) throw new TarFormatError('TAR_TRUNCATED', 'member data truncated');
      const k = Math.min(n, this.buf.length);
      yield this.buf.subarray(0, k);
      this.buf = this.buf.subarray(k); n -= k;
    }
  }
}

/** Import `source` (a path, or a stream/iterable of archive bytes) into `tree`. */
export async function importTar(tree: StagingTree, source: string | Iterable<Uint8Array> | AsyncIterable<Uint8Array>, opts: ImportTarOptions = {}): Promise<ImportTarResult> {
  const where = typeof source === 'string' ? source : (opts.name ?? '<tar stream>');
  const raw: AsyncIterable<Uint8Array> = typeof source === 'string' ? createReadStream(source, { highWaterMark: 1 << 20 })
    : Symbol.asyncIterator in source ? source : Readable.from(source);
  const { head, rest } = await peek(raw);
  const compression = sniffCompression(head);
  if (compression === 'bzip2') throw new TarFormatError('TAR_UNSUPPORTED_COMPRESSION', 'bzip2-compressed tar is not supported (use gzip, xz or zstd)', { file: where });
  const spans = typeof source === 'string' && compression === 'none';
  const res: ImportTarResult = { compression, entries: 0, files: 0, dirs: 0, symlinks: 0, hardlinks: 0, specials: 0, xattrs: 0 };
  let store = opts.store;
  const into = (opts.into ?? '/').replace(/\/+$/, '');
  const treePath = (name: string, offset: number): string => {
    try {
      return `${into}/${assertSafeRelative(name).join('/')}`;
    } catch (e) {
      if (e instanceof PathEscapeError) throw new PathEscapeError(name, { file: where, offset });
      throw e;
    }
  };

  const tap = new PaxTap();
  const extract = tar.extract();
  const stages: (NodeJS.ReadableStream | NodeJS.WritableStream)[] = [Readable.from(rest)];
  const dec = decompressor(compression);
  if (dec) stages.push(dec);
  stages.push(tap, extract);
  const feeding = pipeline(stages as unknown as [Readable, ...Transform[]]);
  feeding.catch(() => {});

  try {
    for await (const entry of extract) {
      const h = entry.header as TarHeader;
      const body = entry as AsyncIterable<Buffer>;
      res.entries++;
      const info = tap.records.get(h.byteOffset) ?? { pax: new Map<string, Buffer>(), dataAt: h.byteOffset };
      tap.records.delete(h.byteOffset);
      const pax = info.pax;
      const str = (k: string): string | undefined => pax.get(k)?.toString('utf8');
      const sparseName = str('GNU.sparse.name');
      const name = sparseName ?? h.name;
      const ctx = { file: where, offset: info.dataAt - BLOCK, field: name };
      const path = treePath(name, ctx.offset);
      const uid = str('uid') !== undefined ? Number(str('uid')) : h.uid ?? 0;
      const gid = str('gid') !== undefined ? Number(str('gid')) : h.gid ?? 0;
      const owner = opts.mapOwner ? opts.mapOwner({ uid, gid, uname: str('uname') ?? h.uname ?? '', gname: str('gname') ?? h.gname ?? '' }) : { uid, gid };
      const mtime = (str('mtime') && parsePaxTime(str('mtime')!)) || { sec: Math.floor((h.mtime?.getTime() ?? 0) / 1000), nsec: 0 };
      const xattrs = xattrsFrom(pax);
      res.xattrs += xattrs.size;
      const meta: InodeMeta = {
        mode: (h.mode ?? 0) & 0o7777, uid: owner.uid, gid: owner.gid, mtime,
        atime: (str('atime') && parsePaxTime(str('atime')!)) || mtime,
        ctime: (str('ctime') && parsePaxTime(str('ctime')!)) || mtime,
        xattrs,
      };
      switch (info.oldGnuSparse ? 'file' : h.type) {
        case 'file': case 'contiguous-file': {
          if (info.oldGnuSparse || sparseName !== undefined || pax.has('GNU.sparse.map') || pax.has('GNU.sparse.major')) {
            const realsize = info.oldGnuSparse?.realsize ?? Number(str('GNU.sparse.realsize') ?? str('GNU.sparse.size'));
            if (!Number.isSafeInteger(realsize) || realsize < 0) throw new TarFormatError('TAR_BAD_SPARSE', 'sparse member without a real size', ctx);
            store ??= res.store = ContentStore.create();
            tree.addFile(path, await store.putSparse(realsize, sparseExtents(body, info, where)), meta);
          } else if (spans) {
            entry.resume();
            tree.addFile(path, new FileSpanContent(source as string, info.dataAt, h.size ?? 0), meta);
          } else {
            store ??= res.store = ContentStore.create();
            tree.addFile(path, await store.put(body), meta);
          }
          res.files++;
          break;
        }
        case 'directory': tree.mkdirp(path, meta); res.dirs++; break;
        case 'symlink': tree.symlink(path, h.linkname ?? '', meta); res.symlinks++; break;
        case 'link': {
          const target = treePath(h.linkname ?? '', ctx.offset);
          if (!tree.lookup(target, { follow: false })) throw new TarFormatError('TAR_BAD_LINK', `hard link to a member not yet extracted: ${h.linkname}`, ctx);
          tree.hardlink(path, target);
          res.hardlinks++;
          break;
        }
        case 'character-device': case 'block-device':
          tree.mknod(path, h.type === 'character-device' ? 'chardev' : 'blockdev', { major: h.devmajor ?? 0, minor: h.devminor ?? 0 }, meta);
          res.specials++;
          break;
        case 'fifo': tree.mknod(path, 'fifo', undefined, meta); res.specials++; break;
        default:
          throw new TarFormatError('TAR_UNSUPPORTED_MEMBER', `unsupported member type ${JSON.stringify(h.type)} (multi-volume, dumpdir, …)`, ctx);
      }
      entry.resume();
    }
    await feeding;
  } catch (e) {
    extract.destroy();
    // A store made here is useless after a failure; the caller's own store is left alone.
    await res.store?.dispose();
    if (e instanceof IngotError) throw e;
    throw new TarFormatError('TAR_BAD_ARCHIVE', `${(e as Error).message}`, { file: where, offset: tap.position }, { cause: e });
  }
  return res;
}
