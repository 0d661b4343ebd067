/**
 * comps.xml: package groups and environments (yum/dnf "comps" format).
 * A group lists packages as mandatory, default, optional or conditional; an
 * environment lists groups (grouplist = installed, optionlist = offered).
 */
import { RepoMetadataError, type RepoErrorContext } from './errors.js';
import { parseSmallXml } from './repomd.js';

export type PackageReqType = 'mandatory' | 'default' | 'optional' | 'conditional';

export interface CompsGroup {
  id: string;
  name: string;
  default: boolean;
  uservisible: boolean;
  packages: { name: string; type: PackageReqType; requires?: string }[];
}

export interface CompsEnvironment {
  id: string;
  name: string;
  groups: string[];
  options: { id: string; default: boolean }[];
}

export interface Comps {
  groups: Map<string, CompsGroup>;
  environments: Map<string, CompsEnvironment>;
}

type X = Record<string, unknown>;
const str = (v: unknown): string => {
  const f = Array.isArray(v) ? v[0] : undefined;
  if (typeof f === 'string') return f.trim();
  if (f && typeof f === 'object' && typeof (f as X)._ === 'string') return ((f as X)._ as string).trim();
  return '';
};

export function emptyComps(): Comps {
  return { groups: new Map(), environments: new Map() };
}

/** Parse comps XML and merge it into `into` (later repositories add to earlier ones, as dnf merges). */
export async function parseComps(xml: string, ctx: RepoErrorContext, into: Comps = emptyComps()): Promise<Comps> {
  const doc = await parseSmallXml(xml, ctx);
  const root = doc.comps as X | undefined;
  if (!root) throw new RepoMetadataError('root element is not <comps>', { ...ctx, field: Object.keys(doc)[0] });
  for (const g of (root.group as X[] | undefined) ?? []) {
    const id = str(g.id);
    if (!id) throw new RepoMetadataError('<group> without <id>', { ...ctx, field: 'group/id' });
    const packages: CompsGroup['packages'] = [];
    for (const pl of (g.packagelist as X[] | undefined) ?? []) {
      for (const r of ((pl as X).packagereq as unknown[] | undefined) ?? []) {
        const name = typeof r === 'string' ? r.trim() : String((r as X)._ ?? '').trim();
        const a = (typeof r === 'object' && r ? (r as X).$ : undefined) as Record<string, string> | undefined;
        const type = (a?.type ?? 'mandatory') as PackageReqType;
        if (!['mandatory', 'default', 'optional', 'conditional'].includes(type)) {
          throw new RepoMetadataError(`group ${id}: unknown packagereq type ${JSON.stringify(type)}`, { ...ctx, field: 'packagereq' });
        }
        if (name) packages.push({ name, type, requires: a?.requires });
      }
    }
    const prev = into.groups.get(id);
    if (prev) prev.packages.push(...packages.filter((p) => !prev.packages.some((q) => q.name === p.name)));
    else into.groups.set(id, { id, name: str(g.name) || id, default: str(g.default) === 'true', uservisible: str(g.uservisible) !== 'false', packages });
  }
  for (const e of (root.environment as X[] | undefined) ?? []) {
    const id = str(e.id);
    if (!id) throw new RepoMetadataError('<environment> without <id>', { ...ctx, field: 'environment/id' });
    const groups: string[] = [];
    for (const gl of (e.grouplist as X[] | undefined) ?? []) for (const gid of ((gl as X).groupid as unknown[] | undefined) ?? []) groups.push(str([gid]));
    const options: CompsEnvironment['options'] = [];
    for (const ol of (e.optionlist as X[] | undefined) ?? []) {
      for (const gid of ((ol as X).groupid as unknown[] | undefined) ?? []) {
        const a = (typeof gid === 'object' && gid ? (gid as X).$ : undefined) as Record<string, string> | undefined;
        options.push({ id: str([gid]), default: a?.default === 'true' });
      }
    }
    if (!into.environments.has(id)) into.environments.set(id, { id, name: str(e.name) || id, groups, options });
  }
  return into;
}
