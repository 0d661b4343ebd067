/**
 * Opening a package file: lead, signature header (padded to 8 bytes), main
 * header, then the payload to the end of the file. Headers are read with
 * positioned reads and size-checked against the file before any allocation.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { RpmFormatError } from './errors.js';
import { Header, Lead, LEAD_MAGIC, RPMSIGTYPE_HEADERSIG, headerSize, parseHeader } from './header.js';
import { packageInfo, fileList, type FileInfo, type PackageInfo } from './package.js';
import { decompress, detectCompression, decompressError, type Compression } from './compression.js';
import { payloadEntries, type PayloadEntry } from './payload.js';
import { decodeInWorker } from './decode-pool.js';

export const LEAD_SIZE = 96;

/** Compressed payloads smaller than this are decoded on the calling thread even when workers are on. */
export const WORKER_MIN_PAYLOAD = 64 * 1024;

export interface PayloadReadOptions {
  /** Chunks (and entry content chunks) are valid only until the next is requested; see `RpmPackage.payload`. */
  transient?: boolean;
}

export interface RpmLayout {
  fileSize: number;
  signatureOffset: number;
  signatureSize: number;
  headerOffset: number;
  headerSize: number;
  payloadOffset: number;
}

export interface LeadInfo { major: number; minor: number; type: number; archnum: number; name: string; osnum: number; signatureType: number }

async function readAt(fh: FileHandle, offset: number, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  let got = 0;
  while (got < length) {
    const { bytesRead } = await fh.read(buf, got, length - got, offset + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return got === length ? buf : buf.subarray(0, got);
}

async function readHeaderAt(fh: FileHandle, file: string, offset: number, fileSize: number, signature: boolean): Promise<Header> {
  const loc = { file, offset };
  const intro = await readAt(fh, offset, 16);
  const size = headerSize(intro, loc, signature, fileSize);
  return parseHeader(await readAt(fh, offset, size), loc, signature);
}

/**
 * Whether a payload of `compressedSize` bytes is decoded on a worker thread,
 * so decompression runs on another core while this thread parses cpio and
 * writes (as rpm2cpio and cpio overlap in a pipeline). Default: yes from the
 * compiled library (what `bin/ingot.js` runs) for payloads of at least
 * WORKER_MIN_PAYLOAD (smaller ones decode faster than a round trip costs);
 * no under tsx, where each worker would load a second TypeScript loader
 * (~150 MB). INGOT_RPM_WORKERS=1 forces workers for every payload, 0 never.
 */
export function workerDecoding(compressedSize: number): boolean {
  const env = process.env.INGOT_RPM_WORKERS;
  if (env === '1' || env === '0') return env === '1';
  return compressedSize >= WORKER_MIN_PAYLOAD && !import.meta.url.endsWith('.ts');
}

/** An opened package: headers parsed, payload not yet read. */
export class RpmPackage {
  private infoCache?: PackageInfo;
  private filesCache?: FileInfo[];

  constructor(
    readonly file: string,
    readonly lead: LeadInfo,
    readonly signature: Header,
    readonly header: Header,
    readonly layout: RpmLayout,
    /** Payload compression recognised from its magic (null: unknown / empty payload). */
    readonly compression: Compression | null,
  ) {}

  get info(): PackageInfo { return (this.infoCache ??= packageInfo(this.header)); }
  get files(): FileInfo[] { return (this.filesCache ??= fileList(this.header)); }

  /** The main header as rpm stores it in its database (no magic): the immutable header blob. */
  headerBlob(): Uint8Array { return this.header.blob(); }

  /** The compressed payload bytes, streamed. */
  rawPayload(highWaterMark = 1 << 20): Readable {
    return createReadStream(this.file, { start: this.layout.payloadOffset, highWaterMark });
  }

  /**
   * The decompressed payload (the cpio archive), streamed. `transient`: each
   * chunk is valid only until the next one is requested (a reused or shared
   * buffer: no allocation or copy per chunk) — for consumers that write each
   * chunk out before asking for more, as extraction does.
   */
  payload(opts: PayloadReadOptions = {}): AsyncIterable<Buffer> {
    const c = this.compression;
    if (c === null) {
      throw new RpmFormatError('UNKNOWN_COMPRESSOR', 'payload compression not recognised', {
        file: this.file, offset: this.layout.payloadOffset, field: 'PAYLOADCOMPRESSOR', actual: this.info.payloadCompressor ?? '(none)',
      });
    }
    const file = this.file;
    const offset = this.layout.payloadOffset;
    const transient = opts.transient ?? false;
    const inner = c !== 'none' && workerDecoding(this.layout.fileSize - offset)
      ? decodeInWorker(c, file, offset, transient)
      : decompress(c, this.rawPayload(c === 'gzip' ? 64 * 1024 : 1 << 20), { reuse: transient });
    return {
      [Symbol.asyncIterator]: async function* () {
        try {
          yield* inner;
        } catch (e) {
          if (e instanceof RpmFormatError) throw e;
          throw decompressError(c, e, file, offset);
        }
      },
    };
  }

  /** Payload entries with header metadata; each entry's content must be consumed before the next. */
  entries(opts: PayloadReadOptions = {}): AsyncGenerator<PayloadEntry> {
    if (this.info.payloadFormat !== null && this.info.payloadFormat !== 'cpio') {
      throw new RpmFormatError('UNSUPPORTED_PAYLOAD', 'payload format is not cpio', { file: this.file, field: 'PAYLOADFORMAT', actual: this.info.payloadFormat });
    }
    return payloadEntries(this.payload(opts), this.files, { file: this.file });
  }
}

/** Open and parse a package's lead and headers. Throws RpmFormatError for anything rpm would reject. */
export async function openRpm(file: string): Promise<RpmPackage> {
  const fh = await open(file, 'r');
  try {
    const fileSize = (await fh.stat()).size;
    const leadBuf = await readAt(fh, 0, LEAD_SIZE);
    if (leadBuf.length < LEAD_SIZE) {
      throw new RpmFormatError('TRUNCATED', 'file too short for an RPM lead', { file, offset: 0, expected: `${LEAD_SIZE} bytes`, actual: `${leadBuf.length}` });
    }
    const lead = Lead.decode(leadBuf, 0, { file });
    if (lead.magic !== LEAD_MAGIC) {
      throw new RpmFormatError('BAD_MAGIC', 'not an RPM package (bad lead magic)', { file, offset: 0, expected: 'edabeedb', actual: lead.magic.toString(16).padStart(8, '0') });
    }
    if (lead.major < 3 || lead.major > 4) {
      throw new RpmFormatError('UNSUPPORTED_VERSION', 'unsupported RPM package version', { file, offset: 4, expected: '3 or 4', actual: `${lead.major}` });
    }
    if (lead.signatureType !== RPMSIGTYPE_HEADERSIG) {
      throw new RpmFormatError('BAD_SIGNATURE_TYPE', 'illegal signature type', { file, offset: 78, expected: `${RPMSIGTYPE_HEADERSIG}`, actual: `${lead.signatureType}` });
    }
    const signature = await readHeaderAt(fh, file, LEAD_SIZE, fileSize, true);
    const signatureSize = signature.size;
    const headerOffset = LEAD_SIZE + signatureSize + ((8 - (signatureSize % 8)) % 8);
    const header = await readHeaderAt(fh, file, headerOffset, fileSize, false);
    const payloadOffset = headerOffset + header.size;
    const magic = await readAt(fh, payloadOffset, 16);
    const pkg = new RpmPackage(file, {
      major: lead.major, minor: lead.minor, type: lead.type, archnum: lead.archnum, name: lead.name, osnum: lead.osnum, signatureType: lead.signatureType,
    }, signature, header, {
      fileSize, signatureOffset: LEAD_SIZE, signatureSize, headerOffset, headerSize: header.size, payloadOffset,
    }, magic.length === 0 ? 'none' : detectCompression(magic, header.string(1125) ?? null));
    pkg.info; // validate the metadata now: a package whose tags rpm would refuse is refused here
    return pkg;
  } finally {
    await fh.close();
  }
}
