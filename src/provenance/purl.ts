/**
 * Package URLs for RPMs (package-url spec, PURL-TYPES.rst `rpm`):
 * `pkg:rpm/<namespace>/<name>@<version>-<release>?arch=..&distro=..&epoch=..`.
 * The namespace is the distribution (os-release ID) when the image has one,
 * else the repository id; the epoch is a qualifier, as the spec says, not a
 * prefix of the version. Qualifiers are sorted by key (spec: canonical form).
 */

export interface PurlPackage {
  name: string;
  epoch: number | null;
  version: string;
  release: string;
  arch: string;
}

/** Percent-encode a purl component: everything but the spec's unreserved set (`+` is encoded, `:` too). */
function enc(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** The purl namespace for a distribution or repository id: lower case, as the spec requires for rpm. */
export function purlNamespace(id: string): string {
  return id.toLowerCase();
}

export function rpmPurl(p: PurlPackage, namespace: string, distro?: string): string {
  const q: [string, string][] = [['arch', p.arch]];
  if (distro) q.push(['distro', distro]);
  if (p.epoch !== null && p.epoch !== 0) q.push(['epoch', String(p.epoch)]);
  q.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const ns = namespace.split('/').filter(Boolean).map((s) => enc(purlNamespace(s))).join('/');
  return `pkg:rpm/${ns ? `${ns}/` : ''}${enc(p.name)}@${enc(`${p.version}-${p.release}`)}?${q.map(([k, v]) => `${k}=${enc(v)}`).join('&')}`;
}
