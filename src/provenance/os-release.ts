/**
 * The image's distribution identity from os-release(5): `/etc/os-release`,
 * else `/usr/lib/os-release` (the spec's lookup order). It names the purl
 * namespace and `distro` qualifier of the SBOM's packages.
 */
import type { StagingTree } from '../tree/tree.js';

export interface OsRelease {
  id: string;
  versionId?: string;
  name?: string;
}

/** Parse os-release text: shell-style `KEY=value` lines, values optionally quoted with \-escapes. */
export function parseOsRelease(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^\s*([A-Z0-9_]+)=(.*)$/.exec(line);
    if (!m) continue;
    let v = m[2]!.trim();
    const q = v[0];
    if ((q === '"' || q === "'") && v.endsWith(q) && v.length >= 2) {
      v = v.slice(1, -1);
      if (q === '"') v = v.replace(/\\(["\\`$])/g, '$1');
    }
    out[m[1]!] = v;
  }
  return out;
}

const MAX_OS_RELEASE = 64 * 1024;

export async function readOsRelease(tree: StagingTree): Promise<OsRelease | undefined> {
  for (const path of ['/etc/os-release', '/usr/lib/os-release']) {
    const node = tree.lookup(path);
    if (!node || node.type !== 'file' || !node.content) continue;
    const buf = Buffer.alloc(Math.min(node.content.size, MAX_OS_RELEASE));
    await node.content.read(buf, 0);
    const kv = parseOsRelease(buf.toString('utf8'));
    // os-release(5): ID defaults to "linux" when absent.
    const r: OsRelease = { id: kv.ID || 'linux' };
    if (kv.VERSION_ID) r.versionId = kv.VERSION_ID;
    if (kv.NAME) r.name = kv.NAME;
    return r;
  }
  return undefined;
}
