/** The scriptlets and triggers of a transaction, in the shape the classifier takes. */
import type { RpmPackage } from '../rpm/reader.js';
import type { Scriptlet, ScriptletPhase } from '../install/scriptlets.js';

const DEFAULT_SHELL = '/bin/sh';

function split(interp: string | null): { interpreter: string; interpreterArgs?: string[] } {
  if (!interp) return { interpreter: DEFAULT_SHELL };
  const [first, ...rest] = interp.split(' ').filter(Boolean);
  return rest.length ? { interpreter: first!, interpreterArgs: rest } : { interpreter: first! };
}

export function collectScriptlets(pkgs: readonly RpmPackage[]): Scriptlet[] {
  const out: Scriptlet[] = [];
  for (const pkg of pkgs) {
    const info = pkg.info;
    for (const [kind, s] of Object.entries(info.scripts)) {
      if (!s || (s.body === null && s.interpreter === null)) continue;
      out.push({ package: info.nevra, phase: kind as ScriptletPhase, ...split(s.interpreter), body: s.body ?? '' });
    }
    for (const t of info.triggers) {
      out.push({ package: info.nevra, phase: t.type as ScriptletPhase, ...split(t.interpreter), body: t.body ?? '', condition: t.conditions.map((c) => c.name).join(', ') });
    }
    for (const [list, prefix] of [[info.fileTriggers, 'filetrigger'], [info.transFileTriggers, 'transfiletrigger']] as const) {
      for (const t of list) {
        const phase = `${prefix}${t.type.replace(/^(file)?trigger/, '')}` as ScriptletPhase;
        out.push({ package: info.nevra, phase, ...split(t.interpreter), body: t.body ?? '', condition: t.conditions.map((c) => c.name).join(', ') });
      }
    }
  }
  return out;
}
