/**
 * CycloneDX 1.5 JSON bill of materials for a built image
 * (cyclonedx.org/docs/1.5/json). The image is `metadata.component`
 * (type operating-system); each installed RPM is a component with its purl,
 * license, SHA-256 of the RPM file, supplier (the RPM Vendor tag) and home
 * page; a `dependencies` entry says the image contains them all, and a
 * `compositions` entry that this inventory is complete (it is exactly the
 * image's rpmdb).
 *
 * Deterministic: the serial number is a UUID derived from the build seed and
 * the package set, the timestamp is the build's SOURCE_DATE_EPOCH, components
 * are sorted by purl, and nothing else varies.
 */
import { createHash } from 'node:crypto';
import parseSpdx from 'spdx-expression-parse';
import { rpmPurl } from './purl.js';
import type { OsRelease } from './os-release.js';

export interface ProvenancePackage {
  nevra: string;
  name: string;
  epoch: number | null;
  version: string;
  release: string;
  arch: string;
  repo: string;
  /** SHA-256 of the RPM file. */
  sha256: string;
  license: string;
  sourcerpm: string | null;
  url: string | null;
  vendor: string | null;
}

export interface SbomInput {
  name: string;
  arch: string;
  seed: string;
  sourceDateEpoch: number;
  os?: OsRelease;
  packages: ProvenancePackage[];
  tool: { name: string; version: string };
}

/** An RFC 4122 version-4-layout UUID from a hash of `parts` (stable for the same inputs). */
export function derivedUuid(...parts: string[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p).update('\0');
  const b = h.digest().subarray(0, 16);
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const x = b.toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

/** A digest of the package set, so a reused seed with other packages still gives another serial. */
export function packageSetDigest(pkgs: ProvenancePackage[]): string {
  return createHash('sha256').update(pkgs.map((p) => `${p.nevra} ${p.sha256}`).sort().join('\n')).digest('hex');
}

/** True when `s` is a valid SPDX license expression (RPM License tags of modern Fedora/EL are). */
export function isSpdxExpression(s: string): boolean {
  try {
    parseSpdx(s);
    return true;
  } catch {
    return false;
  }
}

export function isoTime(epochSec: number): string {
  return new Date(epochSec * 1000).toISOString().replace(/\.000Z$/, 'Z');
}

function validUrl(u: string | null): string | undefined {
  if (!u) return undefined;
  try {
    const p = new URL(u);
    return p.protocol === 'http:' || p.protocol === 'https:' || p.protocol === 'ftp:' ? p.href : undefined;
  } catch {
    return undefined;
  }
}

export function packagePurl(p: ProvenancePackage, os: OsRelease | undefined): string {
  return rpmPurl(p, os?.id ?? p.repo, os ? (os.versionId ? `${os.id}-${os.versionId}` : os.id) : undefined);
}

interface CdxComponent {
  type: string;
  'bom-ref': string;
  name: string;
  version?: string;
  [k: string]: unknown;
}

export function cyclonedxBom(input: SbomInput): Record<string, unknown> {
  const imageRef = `ingot-image:${input.name}`;
  const components: CdxComponent[] = input.packages.map((p) => {
    const purl = packagePurl(p, input.os);
    const c: CdxComponent = {
      type: 'library', 'bom-ref': purl, name: p.name,
      version: `${p.epoch ? `${p.epoch}:` : ''}${p.version}-${p.release}`,
    };
    if (p.vendor) c.supplier = { name: p.vendor };
    c.hashes = [{ alg: 'SHA-256', content: p.sha256 }];
    if (p.license) c.licenses = isSpdxExpression(p.license) ? [{ expression: p.license }] : [{ license: { name: p.license } }];
    c.purl = purl;
    const url = validUrl(p.url);
    if (url) c.externalReferences = [{ type: 'website', url }];
    c.properties = [
      { name: 'ingot:rpm:nevra', value: p.nevra },
      { name: 'ingot:rpm:repository', value: p.repo },
      ...(p.sourcerpm ? [{ name: 'ingot:rpm:sourcerpm', value: p.sourcerpm }] : []),
    ];
    return c;
  }).sort((a, b) => (a['bom-ref'] < b['bom-ref'] ? -1 : a['bom-ref'] > b['bom-ref'] ? 1 : 0));
  const image: CdxComponent = { type: 'operating-system', 'bom-ref': imageRef, name: input.name };
  if (input.os?.versionId) image.version = input.os.versionId;
  image.properties = [
    { name: 'ingot:image:arch', value: input.arch },
    ...(input.os ? [{ name: 'ingot:image:os-release-id', value: input.os.id }] : []),
  ];
  return {
    bomFormat: 'CycloneDX',
    specVersion: '1.5',
    serialNumber: `urn:uuid:${derivedUuid('ingot-cyclonedx', input.seed, packageSetDigest(input.packages))}`,
    version: 1,
    metadata: {
      timestamp: isoTime(input.sourceDateEpoch),
      tools: { components: [{ type: 'application', name: input.tool.name, version: input.tool.version }] },
      component: image,
    },
    components,
    dependencies: [{ ref: imageRef, dependsOn: components.map((c) => c['bom-ref']) }],
    compositions: [{ aggregate: 'complete', assemblies: [imageRef] }],
  };
}
