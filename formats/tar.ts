/**
 * Tarballs of a raw disk (GCE's `disk.raw` in a .tar.gz, or .tar.xz) and the
 * tar layer of OVA packages.
 *
 * Writer: one member `disk.raw` in the old GNU sparse format (typeflag 'S',
 * sparse map in the header plus extension headers) — the format GCE documents
 * (`tar --format=oldgnu -S`), so holes stay holes and only data is stored.
 * Numbers too large for 11 octal digits use GNU's base-256 encoding.
 *
 * Reader: ustar / GNU / pax headers, GNU long names, old GNU sparse members
 * and pax sparse 1.0 members (GNU.sparse.major=1), over either the plain
 * file or a decompressed stream (read strictly forward).
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ByteSource, Range } from '../src/disk/target.js';
import { ImageFormatError } from './errors.js';
import { clip, sourceDateEpoch } from './io.js';
import { type FileWindow } from '../src/disk/file.js';
import { RawSource } from './raw.js';
import { StreamImage, decoderFor, encoderFor, type CompressedKind } from './compressed.js';

const BLOCK = 512;
const RECORD = 10240;
/** Header fields (POSIX ustar layout; old GNU overlays the prefix area with sparse data). */
const F = { name: [0, 100], mode: [100, 8], uid: [108, 8], gid: [116, 8], size: [124, 12], mtime: [136, 12], chksum: [148, 8], typeflag: [156, 1], magic: [257, 8], uname: [265, 32], gname: [297, 32], prefix: [345, 155] } as const;
const OLDGNU_SPARSE = 386, OLDGNU_ISEXTENDED = 482, OLDGNU_REALSIZE = 483, SPARSE_ENTRY = 24, EXT_ENTRIES = 21;

function putNumber(h: Buffer, at: number, width: number, v: number): void {
  const digits = width - 1;
  if (v < 8 ** digits) {
    h.write(v.toString(8).padStart(digits, '0') + '\0', at, width, 'latin1');
    return;
  }
  // GNU base-256: high bit of the first byte set, big-endian two's complement in the rest.
  h.fill(0, at, at + width);
  h[at] = 0x80;
  let x = BigInt(v);
  for (let i = width - 1; i > 0 && x > 0n; i--) { h[at + i] = Number(x & 0xffn); x >>= 8n; }
}

function getNumber(h: Buffer, at: number, width: number, file: string, base: number): number {
  if (h[at]! & 0x80) {
    let x = 0n;
    for (let i = 1; i < width; i++) x = (x << 8n) | BigInt(h[at + i]!);
    if (x > BigInt(Number.MAX_SAFE_INTEGER)) throw new ImageFormatError('TAR_NUMBER', 'number too large', { file, offset: base + at });
    return Number(x);
  }
  const s = h.toString('latin1', at, at + width).replace(/\0.*$/s, '').trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw new ImageFormatError('TAR_NUMBER', `bad octal field ${JSON.stringify(s)}`, { file, offset: base + at });
  return parseInt(s, 8);
}

function finishHeader(h: Buffer): Buffer {
  h.fill(0x20, F.chksum[0], F.chksum[0] + 8);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', F.chksum[0], 8, 'latin1');
  return h;
}

/** A ustar header for a regular file (OVA members). */
export function ustarHeader(name: string, size: number, mtime = sourceDateEpoch()): Buffer {
  if (Buffer.byteLength(name) > 100) throw new ImageFormatError('TAR_NAME', `member name longer than 100 bytes: ${name}`, {});
  return finishHeader(memberHeader(name, size, mtime, '0', 'ustar\u000000'));
}

/** The fields every member header of ours shares: a root-owned 0644 file; checksum left to finishHeader. */
function memberHeader(name: string, size: number, mtime: number, typeflag: string, magic: string): Buffer {
  const h = Buffer.alloc(BLOCK);
  h.write(name, F.name[0], 100, 'utf8');
  putNumber(h, F.mode[0], 8, 0o644);
  putNumber(h, F.uid[0], 8, 0);
  putNumber(h, F.gid[0], 8, 0);
  putNumber(h, F.size[0], 12, size);
  putNumber(h, F.mtime[0], 12, mtime);
  h.write(typeflag, F.typeflag[0], 1, 'latin1');
  h.write(magic, F.magic[0], 8, 'latin1');
  h.write('root', F.uname[0], 32, 'latin1');
  h.write('root', F.gname[0], 32, 'latin1');
  return h;
}

/** Old GNU sparse member headers for `name` with map `map` (stored data only) and real size `size`. */
export function oldGnuSparseHeaders(name: string, size: number, map: Range[], mtime = sourceDateEpoch()): Buffer {
  // A map that ends in a hole gets a zero-length entry at the real size, as GNU tar writes it.
  const entries = [...map];
  const last = entries[entries.length - 1];
  if (!last || last.offset + last.length < size) entries.push({ offset: size, length: 0 });
  const stored = map.reduce((a, r) => a + r.length, 0);
  // Old GNU magic ("ustar  \0"), type 'S'; size is what is stored, the real size goes in the extension.
  const h = memberHeader(name, stored, mtime, 'S', 'ustar  \0');
  const put = (b: Buffer, at: number, r: Range) => { putNumber(b, at, 12, r.offset); putNumber(b, at + 12, 12, r.length); };
  entries.slice(0, 4).forEach((r, i) => put(h, OLDGNU_SPARSE + i * SPARSE_ENTRY, r));
  putNumber(h, OLDGNU_REALSIZE, 12, size);
  const ext: Buffer[] = [];
  for (let i = 4; i < entries.length; i += EXT_ENTRIES) {
    const b = Buffer.alloc(BLOCK);
    entries.slice(i, i + EXT_ENTRIES).forEach((r, j) => put(b, j * SPARSE_ENTRY, r));
    if (i + EXT_ENTRIES < entries.length) b[EXT_ENTRIES * SPARSE_ENTRY] = 1;
    ext.push(b);
  }
  if (ext.length) h[OLDGNU_ISEXTENDED] = 1;
  return Buffer.concat([finishHeader(h), ...ext]);
}

/**
 * The allocation map of `source`, widened to 512-byte blocks, merged and
 * clipped (the sparse map of the tar member). GNU tar's extractor
 * (sparse.c, sparse_extract_region) takes each map entry's data from whole
 * archive blocks, so an entry that is not block-aligned would shift every
 * later one: entries must start and end on block boundaries (but the last
 * may end at the real size).
 */
export async function mapOf(source: ByteSource): Promise<Range[]> {
  const out: Range[] = [];
  for await (const r of source.allocated()) {
    const start = Math.floor(r.offset / BLOCK) * BLOCK;
    const end = Math.min(source.size, Math.ceil((r.offset + r.length) / BLOCK) * BLOCK);
    if (end <= start) continue;
    const prev = out[out.length - 1];
    if (prev && prev.offset + prev.length >= start) prev.length = Math.max(prev.length, end - prev.offset);
    else out.push({ offset: start, length: end - start });
  }
  return out;
}

/** The tar stream of one sparse member `disk.raw` holding `source`. */
export function sparseTarStream(source: ByteSource, name = 'disk.raw', mtime = sourceDateEpoch()): Readable {
  async function* gen(): AsyncIterable<Buffer> {
    const map = await mapOf(source);
    const head = oldGnuSparseHeaders(name, source.size, map, mtime);
    yield head;
    let stored = 0;
    for (const r of map) {
      for (let off = r.offset; off < r.offset + r.length; off += 4 << 20) {
        const buf = Buffer.allocUnsafe(Math.min(4 << 20, r.offset + r.length - off));
        await source.read(buf, off);
        stored += buf.length;
        yield buf;
      }
    }
    // Pad the member to a block, add the two end-of-archive blocks, fill the last 10240-byte record.
    const used = head.length + Math.ceil(stored / BLOCK) * BLOCK + 2 * BLOCK;
    yield Buffer.alloc(Math.ceil(stored / BLOCK) * BLOCK - stored + 2 * BLOCK + ((RECORD - (used % RECORD)) % RECORD));
  }
  return Readable.from(gen(), { objectMode: false, highWaterMark: 4 });
}

/** Write a GCE-style tarball (`disk.raw`, old GNU sparse) compressed with gzip or xz. */
export async function writeTarball(source: ByteSource, path: string, kind: 'gz' | 'xz', opts: { threads?: number; epoch?: number } = {}): Promise<void> {
  await pipeline(sparseTarStream(source, 'disk.raw', opts.epoch), encoderFor(kind, opts.threads), createWriteStream(path));
}

/** A member found in a tar: where its data starts and, for sparse members, its map. */
export interface TarMember { name: string; type: string; dataOffset: number; storedSize: number; realSize: number; sparse: { offset: number; length: number; at: number }[] | null }

/** Walk the members of a tar read through `src` (forward only), stopping when `want` accepts one. */
export async function findTarMember(src: ByteSource, file: string, want: (m: TarMember) => boolean): Promise<TarMember | null> {
  let off = 0;
  let longName: string | null = null;
  let pax: Record<string, string> = {};
  const h = Buffer.alloc(BLOCK);
  for (let guard = 0; guard < 1_000_000; guard++) {
    if (off + BLOCK > src.size) return null;
    await src.read(h, off);
    if (h.every((b) => b === 0)) return null;
    const stored = finishHeader(Buffer.from(h)).toString('latin1', F.chksum[0], F.chksum[0] + 6);
    if (stored !== h.toString('latin1', F.chksum[0], F.chksum[0] + 6)) {
      throw new ImageFormatError('TAR_CHECKSUM', 'tar header checksum mismatch', { file, offset: off, field: 'chksum' });
    }
    const type = String.fromCharCode(h[F.typeflag[0]] || 0x30);
    const size = getNumber(h, F.size[0], 12, file, off);
    const dataOffset = off + BLOCK;
    const next = dataOffset + Math.ceil(size / BLOCK) * BLOCK;
    if (next > src.size) throw new ImageFormatError('TAR_TRUNCATED', `member data runs past the end of the archive`, { file, offset: off });
    const readData = async (n: number) => { const b = Buffer.alloc(n); await src.read(b, dataOffset); return b; };
    if (type === 'L') { longName = (await readData(Math.min(size, 65536))).toString('utf8').replace(/\0.*$/s, ''); off = next; continue; }
    if (type === 'x') {
      if (size > 1 << 20) throw new ImageFormatError('TAR_PAX', 'pax header too large', { file, offset: off });
      pax = parsePax((await readData(size)).toString('utf8'), file, dataOffset);
      off = next; continue;
    }
    if (type === 'g') { off = next; continue; }
    const isGnu = h.toString('latin1', F.magic[0], F.magic[0] + 8) === 'ustar  \0';
    const prefix = !isGnu ? h.toString('utf8', F.prefix[0], F.prefix[0] + F.prefix[1]).replace(/\0.*$/s, '') : '';
    const base = h.toString('utf8', 0, 100).replace(/\0.*$/s, '');
    let name = pax['GNU.sparse.name'] ?? pax.path ?? longName ?? (prefix ? `${prefix}/${base}` : base);
    let m: TarMember = { name, type, dataOffset, storedSize: size, realSize: size, sparse: null };
    if (type === 'S') {
      const entries: Range[] = [];
      const take = (b: Buffer, at: number, count: number, boff: number) => {
        for (let i = 0; i < count; i++) {
          const o = getNumber(b, at + i * SPARSE_ENTRY, 12, file, boff), l = getNumber(b, at + i * SPARSE_ENTRY + 12, 12, file, boff);
          if (o === 0 && l === 0 && b[at + i * SPARSE_ENTRY] === 0) break;
          entries.push({ offset: o, length: l });
        }
      };
      take(h, OLDGNU_SPARSE, 4, off);
      let ext = h[OLDGNU_ISEXTENDED] === 1;
      let p = dataOffset;
      const e = Buffer.alloc(BLOCK);
      while (ext) {
        if (entries.length > 10_000_000) throw new ImageFormatError('TAR_SPARSE', 'sparse map too long', { file, offset: p });
        await src.read(e, p);
        take(e, 0, EXT_ENTRIES, p);
        ext = e[EXT_ENTRIES * SPARSE_ENTRY] === 1;
        p += BLOCK;
      }
      const real = getNumber(h, OLDGNU_REALSIZE, 12, file, off);
      m = { ...m, dataOffset: p, realSize: real, sparse: layoutSparse(entries, p, real, file, off) };
      off = p + Math.ceil(size / BLOCK) * BLOCK;
    } else if (pax['GNU.sparse.major'] === '1' && pax['GNU.sparse.minor'] === '0') {
      // pax sparse 1.0: the map is text at the start of the data, padded to a block.
      const real = Number(pax['GNU.sparse.realsize'] ?? NaN);
      if (!Number.isSafeInteger(real)) throw new ImageFormatError('TAR_SPARSE', 'GNU.sparse.realsize missing', { file, offset: off });
      const head = await readData(Math.min(size, 1 << 20));
      const nums: number[] = [];
      let q = 0, count = -1;
      while (count < 0 || nums.length < count * 2) {
        const nl = head.indexOf(0x0a, q);
        if (nl < 0) throw new ImageFormatError('TAR_SPARSE', 'sparse 1.0 map truncated or too long', { file, offset: dataOffset });
        const v = Number(head.toString('latin1', q, nl));
        if (!Number.isSafeInteger(v)) throw new ImageFormatError('TAR_SPARSE', 'bad sparse map number', { file, offset: dataOffset + q });
        if (count < 0) count = v; else nums.push(v);
        q = nl + 1;
      }
      const mapLen = Math.ceil(q / BLOCK) * BLOCK;
      const entries: Range[] = [];
      for (let i = 0; i < count; i++) entries.push({ offset: nums[2 * i]!, length: nums[2 * i + 1]! });
      m = { ...m, dataOffset: dataOffset + mapLen, storedSize: size - mapLen, realSize: real, sparse: layoutSparse(entries, dataOffset + mapLen, real, file, off) };
      off = next;
    } else if (pax['GNU.sparse.major'] !== undefined || pax['GNU.sparse.offset'] !== undefined) {
      throw new ImageFormatError('TAR_SPARSE', 'only old GNU and pax 1.0 sparse members are supported', { file, offset: off });
    } else {
      if (pax.size !== undefined) { const s = Number(pax.size); m.storedSize = s; m.realSize = s; }
      off = next;
    }
    longName = null; pax = {};
    if ((type === '0' || type === 'S' || type === '\0' || type === '7') && want(m)) return m;
    name = '';
  }
  throw new ImageFormatError('TAR_TOO_MANY', 'too many tar members', { file });
}

function parsePax(text: string, file: string, at: number): Record<string, string> {
  const out: Record<string, string> = {};
  let p = 0;
  const b = Buffer.from(text, 'utf8');
  while (p < b.length) {
    const sp = b.indexOf(0x20, p);
    if (sp < 0) break;
    const len = Number(b.toString('latin1', p, sp));
    if (!Number.isSafeInteger(len) || len <= 0 || p + len > b.length) throw new ImageFormatError('TAR_PAX', 'bad pax record', { file, offset: at + p });
    const rec = b.toString('utf8', sp + 1, p + len - 1);
    const eq = rec.indexOf('=');
    if (eq > 0) out[rec.slice(0, eq)] = rec.slice(eq + 1);
    p += len;
  }
  return out;
}

function layoutSparse(entries: Range[], dataAt: number, real: number, file: string, off: number): { offset: number; length: number; at: number }[] {
  const out: { offset: number; length: number; at: number }[] = [];
  let at = dataAt, end = 0;
  for (const e of entries) {
    if (e.offset < end || e.offset + e.length > real) throw new ImageFormatError('TAR_SPARSE', 'sparse map entries overlap or pass the real size', { file, offset: off });
    if (e.length > 0) out.push({ offset: e.offset, length: e.length, at });
    at += e.length;
    end = e.offset + e.length;
  }
  return out;
}

/** A (possibly sparse) tar member as a disk. */
export class TarMemberSource implements ByteSource {
  constructor(private readonly src: ByteSource, private readonly m: TarMember) {}
  get size(): number { return this.m.realSize; }

  async read(buf: Uint8Array, position: number): Promise<number> {
    const n = clip(buf, position, this.size);
    if (!this.m.sparse) {
      if (n > 0) await this.src.read(buf.subarray(0, n), this.m.dataOffset + position);
      return n;
    }
    buf.fill(0, 0, n);
    for (const e of this.m.sparse) {
      const s = Math.max(position, e.offset), t = Math.min(position + n, e.offset + e.length);
      if (t > s) await this.src.read(buf.subarray(s - position, t - position), e.at + (s - e.offset));
    }
    return n;
  }

  async *allocated(): AsyncIterable<Range> {
    if (!this.m.sparse) { if (this.size) yield { offset: 0, length: this.size }; return; }
    for (const e of this.m.sparse) yield { offset: e.offset, length: e.length };
  }

  close(): Promise<void> { return this.src.close(); }
}

const DISK_NAMES = /\.(raw|img|vmdk|qcow2|vhd|bin)$/i;

/**
 * Open the disk inside a tarball (`tar.gz`, `tar.xz`: the raw member, GCE's
 * disk.raw) or an OVA (plain tar: the first .vmdk, read in place).
 */
export async function openTarImage<T extends ByteSource>(
  path: string, format: 'tar.gz' | 'tar.xz' | 'ova',
  openInner: (path: string, format: 'vmdk' | 'raw' | 'qcow2' | 'vhd', window: FileWindow) => Promise<T>,
): Promise<{ source: ByteSource; member: string; innerFormat: string }> {
  if (format === 'ova') {
    const raw = await RawSource.open(path);
    try {
      const m = await findTarMember(raw, path, (x) => /\.vmdk$/i.test(x.name) || DISK_NAMES.test(x.name));
      if (!m) throw new ImageFormatError('OVA_NO_DISK', 'no disk image member in the archive', { file: path });
      if (m.sparse) throw new ImageFormatError('OVA_SPARSE', 'sparse disk members in an OVA are not supported', { file: path, offset: m.dataOffset });
      const inner = /\.vmdk$/i.test(m.name) ? 'vmdk' : /\.qcow2$/i.test(m.name) ? 'qcow2' : /\.vhd$/i.test(m.name) ? 'vhd' : 'raw';
      const source = await openInner(path, inner, { offset: m.dataOffset, size: m.storedSize, label: m.name });
      return { source, member: m.name, innerFormat: inner };
    } finally {
      await raw.close();
    }
  }
  const kind: CompressedKind = format === 'tar.gz' ? 'gz' : 'xz';
  const factory = () => { const d = decoderFor(kind); const s = createReadStream(path, { highWaterMark: 1 << 20 }); s.on('error', (e) => d.destroy(e)); return s.pipe(d); };
  // The tar stream's length is not needed exactly: members are found walking forward; bound by a counting pass only if needed.
  const stream = new StreamImage(path, Number.MAX_SAFE_INTEGER, factory);
  const m = await findTarMember(stream, path, (x) => DISK_NAMES.test(x.name) || x.type === 'S');
  if (!m) {
    await stream.close();
    throw new ImageFormatError('TAR_NO_DISK', 'no disk image member (disk.raw) in the tarball', { file: path });
  }
  if (!/\.(raw|img|bin)$/i.test(m.name)) {
    await stream.close();
    throw new ImageFormatError('TAR_INNER_FORMAT', `only raw disks are read from compressed tarballs, found ${m.name}`, { file: path });
  }
  return { source: new TarMemberSource(stream, m), member: m.name, innerFormat: 'raw' };
}
