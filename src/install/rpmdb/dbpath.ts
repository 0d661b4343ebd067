/**
 * Where the target's rpm looks for its database: `%_dbpath` from the macro
 * files installed in the tree, read in rpm's macro-file order (rpm 4.18
 * rpmrc.c `macrofiles`: /usr/lib/rpm/macros, macros.d/macros.*, the
 * platform's macros, redhat/macros, /etc/rpm/macros.*, /etc/rpm/macros), the
 * last definition winning.
 */
import { listTreeDir, readTreeText } from '../../tree/read.js';
import type { StagingTree } from '../../tree/tree.js';

/** Current Fedora/RHEL location (rpm ≥ 4.16 with the sysimage move). */
export const SYSIMAGE_DBPATH = '/usr/lib/sysimage/rpm';
/** Older and upstream-default location. */
export const LEGACY_DBPATH = '/var/lib/rpm';

const BUILTIN: Record<string, string> = { _usr: '/usr', _prefix: '/usr', _var: '/var', _localstatedir: '/var', _usrlibrpm: '/usr/lib/rpm', _sysconfdir: '/etc' };

/** Macro definitions (`%name body`) of one file; continuation lines joined. */
export function parseMacroDefinitions(text: string): Map<string, string> {
  const out = new Map<string, string>();
  const lines = text.replace(/\\\n/g, ' ').split('\n');
  for (const l of lines) {
    const m = /^\s*%([A-Za-z_][A-Za-z0-9_]*)(?:\([^)]*\))?\s+(.*?)\s*$/.exec(l);
    if (m && !['define', 'global', 'undefine', 'if', 'else', 'endif'].includes(m[1]!)) out.set(m[1]!, m[2]!);
  }
  return out;
}

/** Expand %name and %{name} (with %{?name} as empty when undefined), bounded depth. */
export function expandMacros(s: string, defs: Map<string, string>, depth = 0): string {
  if (depth > 16) return s;
  return s.replace(/%(\{\??([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))/g, (all, _b, braced?: string, bare?: string) => {
    const name = braced ?? bare!;
    const v = defs.get(name) ?? BUILTIN[name];
    if (v === undefined) return all.startsWith('%{?') ? '' : all;
    return expandMacros(v, defs, depth + 1);
  });
}

async function macroFiles(tree: StagingTree, arch: string): Promise<string[]> {
  const files = ['/usr/lib/rpm/macros'];
  for (const n of listTreeDir(tree, '/usr/lib/rpm/macros.d')) if (n.startsWith('macros.')) files.push(`/usr/lib/rpm/macros.d/${n}`);
  files.push(`/usr/lib/rpm/platform/${arch}-linux/macros`, '/usr/lib/rpm/redhat/macros');
  for (const n of listTreeDir(tree, '/etc/rpm')) if (n.startsWith('macros.')) files.push(`/etc/rpm/${n}`);
  files.push('/etc/rpm/macros', `/etc/rpm/${arch}-linux/macros`);
  return files;
}

/** The target's %_dbpath; when no macro defines it, sysimage if /usr/lib/sysimage exists, else /var/lib/rpm. */
export async function targetDbPath(tree: StagingTree, arch = 'x86_64'): Promise<string> {
  const defs = new Map<string, string>();
  for (const f of await macroFiles(tree, arch)) {
    const text = await readTreeText(tree, f);
    if (text !== undefined) for (const [k, v] of parseMacroDefinitions(text)) defs.set(k, v);
  }
  const raw = defs.get('_dbpath');
  if (raw !== undefined) {
    const p = expandMacros(raw, defs);
    if (p.startsWith('/') && !p.includes('%')) return p.replace(/\/+$/, '');
  }
  return tree.lookup('/usr/lib/sysimage')?.type === 'dir' ? SYSIMAGE_DBPATH : LEGACY_DBPATH;
}
