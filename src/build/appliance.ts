/**
 * The appliance bundle (appliance-creator's deliverable): `NAME.tar.gz`
 * holding a directory `NAME/` with the raw disk image(s) `NAME-sdX.raw` and
 * the virt-image descriptor `NAME.xml` (python-virtinst doc/image.rng).
 *
 * Disks are raw because the virt-image schema allows only `raw` and `iso`
 * disk formats. Each disk is an old GNU sparse tar member, so holes are not
 * stored; its SHA-256 (over the whole virtual disk, holes as zeros) is
 * computed while it streams into the archive, and the descriptor, which
 * carries it, follows the disks. Nothing is held in memory beyond one 4 MiB
 * chunk; the archive is written to a temporary name and renamed.
 */
import { createHash, type Hash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ByteSource } from '../disk/target.js';
import { atomicOutput } from '../util/atomic.js';
import { mapOf, oldGnuSparseHeaders, ustarHeader } from '../../formats/tar.js';
import { encoderFor } from '../../formats/compressed.js';
import { IngotError } from '../errors.js';

export class ApplianceError extends IngotError {}

export interface ApplianceDisk {
  /** Member file name inside the bundle's directory (e.g. `NAME-sda.raw`). */
  file: string;
  source: ByteSource;
}

export interface ApplianceMeta {
  name: string;
  arch: string;
  /** The spec's description (virt-image `<description>`). */
  description?: string;
  vcpu?: number;
  /** Guest memory in KiB (virt-image counts kB). */
  memoryKiB?: number;
  /** Number of `<interface/>` elements (one per kickstart `network` line; at least one). */
  interfaces?: number;
  /** Archive member mtime (SOURCE_DATE_EPOCH of the build). */
  mtime: number;
}

export interface DescribedDisk { file: string; size: number; sha256: string }

const BLOCK = 512;
const RECORD = 10240;
const CHUNK = 4 << 20;
const ZEROS = Buffer.alloc(1 << 20);

/** A name the schema's genericName/relFilePath patterns accept: other characters become `_`. */
export function applianceName(name: string): string {
  const s = name.replace(/[^A-Za-z0-9_.+-]/g, '_');
  return /^[A-Za-z0-9_.+%-]/.test(s) ? s : `_${s}`;
}

/** Disk member names as appliance-creator gives them: NAME-sda.raw, NAME-sdb.raw, … */
export function diskFileName(name: string, index: number): string {
  return `${applianceName(name)}-sd${String.fromCharCode(0x61 + index)}.raw`;
}

/** The virt-image XML descriptor (image.rng): one hvm boot from the first disk, raw disks with size (MiB) and SHA-256. */
export async function virtImageXml(meta: ApplianceMeta, disks: DescribedDisk[]): Promise<string> {
  const { default: xml2js } = await import('xml2js');
  const image = {
    name: applianceName(meta.name),
    ...(meta.description ? { description: meta.description } : {}),
    domain: {
      boot: {
        $: { type: 'hvm' },
        guest: { arch: meta.arch },
        os: { loader: { $: { dev: 'hd' } } },
        drive: disks.map((d, i) => ({ $: { disk: d.file, target: `hd${String.fromCharCode(0x61 + i)}` } })),
      },
      devices: {
        vcpu: String(meta.vcpu ?? 1),
        memory: String(meta.memoryKiB ?? 1024 * 1024),
        interface: Array.from({ length: Math.max(1, meta.interfaces ?? 1) }, () => ''),
        graphics: '',
      },
    },
    storage: {
      disk: disks.map((d) => ({
        $: { file: d.file, use: 'system', format: 'raw', size: String(Math.ceil(d.size / (1 << 20))) },
        checksum: { $: { type: 'sha256' }, _: d.sha256 },
      })),
    },
  };
  return new xml2js.Builder({ rootName: 'image', xmldec: { version: '1.0', encoding: 'UTF-8' }, renderOpts: { pretty: true, indent: '  ', newline: '\n' } })
    .buildObject(image) + '\n';
}

function hashZeros(h: Hash, n: number): void {
  for (; n > 0; n -= ZEROS.length) h.update(n >= ZEROS.length ? ZEROS : ZEROS.subarray(0, n));
}

const pad = (n: number) => Buffer.alloc((BLOCK - (n % BLOCK)) % BLOCK);

/** Tar members of one sparse disk; fills `out` with its description once the stream has passed. */
async function* diskMember(dir: string, d: ApplianceDisk, mtime: number, out: DescribedDisk[]): AsyncGenerator<Buffer> {
  const map = await mapOf(d.source);
  yield oldGnuSparseHeaders(`${dir}/${d.file}`, d.source.size, map, mtime);
  const h = createHash('sha256');
  let pos = 0;
  let stored = 0;
  for (const r of map) {
    hashZeros(h, r.offset - pos);
    for (let off = r.offset; off < r.offset + r.length; off += CHUNK) {
      const buf = Buffer.allocUnsafe(Math.min(CHUNK, r.offset + r.length - off));
      const n = await d.source.read(buf, off);
      buf.fill(0, n);
      h.update(buf);
      stored += buf.length;
      yield buf;
    }
    pos = r.offset + r.length;
  }
  hashZeros(h, d.source.size - pos);
  yield pad(stored);
  out.push({ file: d.file, size: d.source.size, sha256: h.digest('hex') });
}

/**
 * Write the bundle to `path` (atomically) and return the disks as described
 * in its XML. `disks` are finished disk images; they are only read.
 */
export async function writeAppliance(path: string, disks: ApplianceDisk[], meta: ApplianceMeta): Promise<DescribedDisk[]> {
  if (disks.length === 0 || disks.length > 26) throw new ApplianceError('APPLIANCE_DISKS', `an appliance holds 1 to 26 disks, not ${disks.length}`, { field: 'disks' });
  const dir = applianceName(meta.name);
  const described: DescribedDisk[] = [];
  async function* members(): AsyncGenerator<Buffer> {
    let written = 0;
    const count = (b: Buffer) => { written += b.length; return b; };
    for (const d of disks) for await (const b of diskMember(dir, d, meta.mtime, described)) yield count(b);
    const xml = Buffer.from(await virtImageXml(meta, described), 'utf8');
    yield count(ustarHeader(`${dir}/${dir}.xml`, xml.length, meta.mtime));
    yield count(xml);
    yield count(pad(xml.length));
    // End of archive: two zero blocks, then fill the last record, as GNU tar does.
    const end = 2 * BLOCK;
    yield Buffer.alloc(end + ((RECORD - ((written + end) % RECORD)) % RECORD));
  }
  await atomicOutput(path, (tmp) => pipeline(Readable.from(members(), { objectMode: false, highWaterMark: 4 }), encoderFor('gz'), createWriteStream(tmp)));
  return described;
}
