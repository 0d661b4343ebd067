/**
 * repomd.xml: the index of a repository's metadata files (createrepo "repo"
 * schema). Small, so parsed whole with xml2js.
 */
import { parseStringPromise } from 'xml2js';
import { RepoMetadataError, type RepoErrorContext } from './errors.js';

export interface RepomdData {
  type: string;
  href: string;
  checksum: { type: string; value: string };
  openChecksum?: { type: string; value: string };
  size?: number;
  openSize?: number;
}

export interface Repomd {
  revision?: string;
  data: Map<string, RepomdData>;
}

type X = Record<string, unknown>;
const first = (v: unknown): unknown => (Array.isArray(v) ? v[0] : undefined);
const text = (v: unknown): string | undefined => {
  const f = first(v);
  if (typeof f === 'string') return f;
  if (f && typeof f === 'object' && typeof (f as X)._ === 'string') return (f as X)._ as string;
  return undefined;
};
const attr = (v: unknown, name: string): string | undefined => {
  const f = first(v);
  if (f && typeof f === 'object') {
    const a = (f as X).$ as Record<string, string> | undefined;
    return a?.[name];
  }
  return undefined;
};

/** Parse XML with xml2js, turning its errors into RepoMetadataError with the line. */
export async function parseSmallXml(xml: string, ctx: RepoErrorContext): Promise<X> {
  try {
    const doc = (await parseStringPromise(xml, { explicitArray: true })) as X | null;
    if (!doc || typeof doc !== 'object') throw new Error('empty document');
    return doc;
  } catch (e) {
    const m = /Line: (\d+)/.exec((e as Error).message);
    throw new RepoMetadataError(`malformed XML: ${(e as Error).message.split('\n')[0]}`, { ...ctx, line: m ? Number(m[1]) + 1 : undefined }, { cause: e });
  }
}

export async function parseRepomd(xml: string, ctx: RepoErrorContext): Promise<Repomd> {
  const doc = await parseSmallXml(xml, ctx);
  const root = doc.repomd as X | undefined;
  if (!root) throw new RepoMetadataError(`root element is not <repomd>`, { ...ctx, field: Object.keys(doc)[0] });
  const data = new Map<string, RepomdData>();
  for (const d of (root.data as X[] | undefined) ?? []) {
    const type = (d.$ as Record<string, string> | undefined)?.type;
    if (!type) throw new RepoMetadataError('<data> without type', { ...ctx, field: 'data' });
    const href = attr(d.location, 'href');
    const sum = text(d.checksum);
    const sumType = attr(d.checksum, 'type');
    if (!href) throw new RepoMetadataError(`<data type="${type}"> has no <location href>`, { ...ctx, field: `data[${type}]/location` });
    if (!sum || !sumType) throw new RepoMetadataError(`<data type="${type}"> has no <checksum type>`, { ...ctx, field: `data[${type}]/checksum` });
    const open = text(d['open-checksum']);
    const openType = attr(d['open-checksum'], 'type');
    const size = text(d.size);
    const openSize = text(d['open-size']);
    data.set(type, {
      type, href,
      checksum: { type: sumType, value: sum.trim().toLowerCase() },
      openChecksum: open && openType ? { type: openType, value: open.trim().toLowerCase() } : undefined,
      size: size !== undefined ? Number(size) : undefined,
      openSize: openSize !== undefined ? Number(openSize) : undefined,
    });
  }
  return { revision: text(root.revision), data };
}
