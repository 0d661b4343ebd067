/**
 * Repository configuration as dnf knows it (a `[section]` of a .repo file):
 * baseurl / metalink / mirrorlist, priority, cost, exclude, includepkgs,
 * gpgcheck, gpgkey; `$releasever`, `$basearch`, `$arch` and user variables
 * substituted in every URL.
 */
import { RepoConfigError } from './errors.js';

export interface RepoConfig {
  id: string;
  name?: string;
  /** Directory, file:// or http(s):// base URLs (mirrors of each other, tried in order). */
  baseurl?: string | string[];
  metalink?: string;
  mirrorlist?: string;
  /** Lower number = preferred (dnf default 99). */
  priority?: number;
  /** Tie-break between repositories of equal priority offering the same package (dnf default 1000). */
  cost?: number;
  /** Package name globs hidden from this repository. */
  exclude?: string[];
  /** When set, only packages matching these globs are visible. */
  includepkgs?: string[];
  gpgcheck?: boolean;
  gpgkey?: string[];
  enabled?: boolean;
}

export interface RepoVars {
  releasever?: string;
  basearch?: string;
  arch?: string;
  [name: string]: string | undefined;
}

/** Substitute `$var` / `${var}` in a URL; an unknown variable is an error naming it. */
export function substitute(s: string, vars: RepoVars, repo: string): string {
  return s.replace(/\$(?:\{([A-Za-z0-9_]+)\}|([A-Za-z0-9_]+))/g, (_m, a: string | undefined, b: string | undefined) => {
    const name = (a ?? b)!;
    const v = vars[name];
    if (v === undefined) throw new RepoConfigError(`unknown variable $${name} in ${JSON.stringify(s)}`, { repo, field: name });
    return v;
  });
}

/** The base architecture dnf uses for `$basearch` (i686 → i386 etc.). */
export function basearchOf(arch: string): string {
  if (/^i[3-6]86$|^athlon$|^geode$/.test(arch)) return 'i386';
  if (/^armv7/.test(arch)) return 'armhfp';
  return arch;
}

/** Glob (fnmatch: `*`, `?`, `[...]`) to RegExp. */
export function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '*') re += '.*';
    else if (c === '?') re += '.';
    else if (c === '[') {
      const j = glob.indexOf(']', i + 1);
      if (j < 0) re += '\\[';
      else { re += `[${glob.slice(i + 1, j).replace(/^!/, '^').replace(/\\/g, '\\\\')}]`; i = j; }
    } else re += c.replace(/[.+^${}()|\\/]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

export function isGlob(s: string): boolean {
  return /[*?[]/.test(s);
}

/** Parse a .repo file (INI) into configs; `vars` are substituted in URLs later by loadRepos. */
export function parseRepoFile(text: string, file: string): RepoConfig[] {
  const out: RepoConfig[] = [];
  let cur: RepoConfig | undefined;
  const lines = text.split('\n');
  const list = (v: string) => v.split(/[\s,]+/).filter(Boolean);
  lines.forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) return;
    const sec = /^\[([^\]]+)\]$/.exec(line);
    if (sec) { cur = { id: sec[1].trim() }; out.push(cur); return; }
    const kv = /^([A-Za-z_]+)\s*=\s*(.*)$/.exec(line);
    if (!kv || !cur) throw new RepoConfigError(`cannot parse line`, { file, line: i + 1, actual: raw });
    const [, k, v] = kv;
    switch (k) {
      case 'name': cur.name = v; break;
      case 'baseurl': cur.baseurl = list(v); break;
      case 'metalink': cur.metalink = v; break;
      case 'mirrorlist': cur.mirrorlist = v; break;
      case 'priority': cur.priority = Number(v); break;
      case 'cost': cur.cost = Number(v); break;
      case 'exclude': case 'excludepkgs': cur.exclude = list(v); break;
      case 'includepkgs': cur.includepkgs = list(v); break;
      case 'gpgcheck': cur.gpgcheck = /^(1|yes|true|on)$/i.test(v); break;
      case 'gpgkey': cur.gpgkey = list(v); break;
      case 'enabled': cur.enabled = /^(1|yes|true|on)$/i.test(v); break;
      default: break; // other dnf options do not affect resolution
    }
  });
  return out;
}
