/**
 * Package scriptlets cannot run while the image is assembled (nothing runs
 * inside the image). This module classifies every scriptlet and trigger of
 * the transaction:
 * - native: what it does is done by ingot itself (ldconfig → ld.so.cache,
 *   user/group creation, systemctl preset/enable, alternatives);
 * - noop: does nothing on a first install (`$1 -gt 1` upgrade branches,
 *   %preun/%postun, daemon-reload, systemd-tmpfiles at boot …);
 * - deferred: anything else, reported, and optionally run once on first boot
 *   by a one-shot unit, in transaction order, with rpm's arguments.
 *
 * Arguments follow rpm-scriptlets(7): on a fresh install every script
 * ($pretrans, %pre, %post, %posttrans) gets $1 = 1 (instances after the
 * operation); triggers get $1 = instances of the trigger's owner (1) and
 * $2 = instances of the triggering package (1). rpm 4.18 run with --root is
 * the oracle for order and arguments (test/scriptlets.test.ts).
 */
import { StagingTree } from '../tree/tree.js';
import { SystemdUnits, unitName } from './systemd.js';
import { readTreeText, listTreeDir, writeTreeText } from './treetext.js';
import { writeLdSoCache } from './ldconfig.js';

export type ScriptletPhase =
  | 'pretrans' | 'pre' | 'post' | 'posttrans' | 'preun' | 'postun' | 'preuntrans' | 'postuntrans' | 'verify'
  | 'triggerprein' | 'triggerin' | 'triggerun' | 'triggerpostun'
  | 'filetriggerin' | 'filetriggerun' | 'filetriggerpostun' | 'transfiletriggerin' | 'transfiletriggerun' | 'transfiletriggerpostun';

export interface Scriptlet {
  /** NEVRA (or name) of the package that owns the scriptlet. */
  package: string;
  phase: ScriptletPhase;
  /** `/bin/sh`, `<lua>`, or the program of `-p` (e.g. `/sbin/ldconfig`). */
  interpreter: string;
  /** Extra interpreter arguments (RPMTAG_*PROG beyond the first). */
  interpreterArgs?: string[];
  body: string;
  /** Trigger condition or file-trigger prefix, for the report. */
  condition?: string;
  /** Files a file trigger matched (fed on stdin as rpm does). */
  triggerFiles?: string[];
}

export type NativeAction =
  | { kind: 'ldconfig' }
  | { kind: 'systemd-preset'; units: string[] }
  | { kind: 'systemd-enable'; units: string[] }
  | { kind: 'groupadd'; args: string[] }
  | { kind: 'useradd'; args: string[] }
  | { kind: 'usermod'; args: string[] }
  | { kind: 'sysusers'; args: string[] }
  | { kind: 'alternatives'; args: string[] };

export type Disposition = 'native' | 'noop' | 'deferred';

export interface ClassifiedScriptlet extends Scriptlet {
  disposition: Disposition;
  actions: NativeAction[];
  /** Commands that made it deferred (or why it is a no-op). */
  reasons: string[];
  /** Deferred only because of cache refreshes (icon/mime/desktop/fonts/schemas): harmless to skip. */
  cacheOnly?: boolean;
  /** Positional arguments rpm passes on a fresh install. */
  args: string[];
}

const INSTALL_PHASES = new Set<ScriptletPhase>(['pretrans', 'pre', 'post', 'posttrans', 'triggerprein', 'triggerin', 'filetriggerin', 'transfiletriggerin']);
const TRIGGER_PHASES = new Set<ScriptletPhase>(['triggerprein', 'triggerin', 'triggerun', 'triggerpostun']);
const SHELLS = new Set(['/bin/sh', '/bin/bash', '/usr/bin/sh', '/usr/bin/bash', 'sh', 'bash']);
const LDCONFIG = /^(\/usr)?(\/s?bin\/)?ldconfig$/;

/** rpm's arguments for a fresh install. */
export function installArgs(s: Pick<Scriptlet, 'phase'>): string[] {
  if (TRIGGER_PHASES.has(s.phase)) return ['1', '1'];
  if (s.phase.includes('filetrigger')) return ['1'];
  return ['1'];
}

const CACHE_TOOLS = new Set([
  'gtk-update-icon-cache', 'gtk4-update-icon-cache', 'update-desktop-database', 'update-mime-database', 'glib-compile-schemas', 'fc-cache',
  'gio-querymodules', 'gio-querymodules-64', 'gdk-pixbuf-query-loaders', 'gdk-pixbuf-query-loaders-64', 'gtk-query-immodules-3.0', 'gtk-query-immodules-3.0-64',
  'mandb', 'install-info', 'texhash', 'mktexlsr', 'update-gdk-pixbuf-loaders', 'dconf', 'gconftool-2', 'xdg-icon-resource', 'xdg-desktop-menu',
]);
/** Commands whose effect is redone at boot anyway, or that only matter on a running system. */
const BOOT_NOOPS = new Set(['systemd-tmpfiles', 'systemd-hwdb', 'udevadm', 'systemd-machine-id-setup', 'journalctl']);

interface Ctx { actions: NativeAction[]; reasons: string[]; deferred: boolean; cacheOnly: boolean }

/** Split a shell body into logical lines: comments dropped, continuations joined, `;` separated (outside quotes). */
function statements(body: string): string[] {
  const joined = body.replace(/\\\r?\n/g, ' ');
  const out: string[] = [];
  for (const raw of joined.split(/\r?\n/)) {
    let cur = '';
    let q: string | undefined;
    for (let i = 0; i < raw.length; i++) {
      const c = raw[i]!;
      if (q) { cur += c; if (c === q) q = undefined; continue; }
      if (c === "'" || c === '"') { q = c; cur += c; continue; }
      if (c === '#' && (i === 0 || /\s/.test(raw[i - 1]!))) break;
      if (c === ';' && raw[i + 1] !== ';') { out.push(cur.trim()); cur = ''; continue; }
      cur += c;
    }
    out.push(cur.trim());
  }
  return out.filter(Boolean);
}

function words(cmd: string): string[] {
  const out: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|'([^']*)'|(\S+)/g;
  for (let m = re.exec(cmd); m; m = re.exec(cmd)) out.push(m[1] ?? m[2] ?? m[3]!);
  return out;
}

/** Remove redirections and the `|| :` / `|| true` / `|| exit 0` tails that only silence errors. */
function stripNoise(cmd: string): string {
  return cmd
    .replace(/\s*(\|\|\s*(:|true|exit\s+0|\/bin\/true))\s*$/g, '')
    .replace(/\s*(&>|[12]?>>?)\s*\/dev\/null/g, '')
    .replace(/\s*[12]>&[12]/g, '')
    .trim();
}

/**
 * Evaluate an `if`/`[ ]` condition for a fresh install ($1 = 1). Returns
 * undefined when it cannot be decided statically.
 */
function evalCondition(cond: string): boolean | undefined {
  const c = cond.replace(/^\[\[?\s*|\s*\]\]?$/g, '').replace(/^test\s+/, '').replace(/"/g, '').trim();
  let m = /^\$\{?1\}?\s+(-eq|-ne|-gt|-ge|-lt|-le|=|==|!=)\s+(\d+)$/.exec(c);
  if (m) {
    const n = Number(m[2]);
    switch (m[1]) {
      case '-eq': case '=': case '==': return 1 === n;
      case '-ne': case '!=': return 1 !== n;
      case '-gt': return 1 > n;
      case '-ge': return 1 >= n;
      case '-lt': return 1 < n;
      case '-le': return 1 <= n;
    }
  }
  m = /^(-x|-f|-e|-d|-r|-s)\s+\S+$/.exec(c);
  if (m) return true; // the tool/file a guard checks is assumed present (guards only avoid errors on minimal systems)
  return undefined;
}

function classifyCommand(raw: string, ctx: Ctx): void {
  const cmd = stripNoise(raw);
  if (!cmd || cmd === ':' || cmd === 'true' || /^exit(\s+0)?$/.test(cmd) || /^set\s+[-+]\w+$/.test(cmd)) return;
  // `getent group foo || groupadd …` and `A && B` chains: classify the action part.
  const or = cmd.split(/\s*\|\|\s*/);
  if (or.length === 2 && /^(\/usr)?(\/s?bin\/)?(getent|id)\s/.test(or[0]!)) { classifyCommand(or[1]!, ctx); return; }
  const and = cmd.split(/\s*&&\s*/);
  if (and.length > 1) {
    const cond = evalCondition(and[0]!);
    if (cond === false) return;
    if (cond === true) { for (const part of and.slice(1)) classifyCommand(part, ctx); return; }
  }
  const w = words(cmd);
  const prog = (w[0] ?? '').replace(/^(\/usr)?\/s?bin\//, '').replace(/^\/usr\/lib\/systemd\//, '');
  const defer = (why: string, cache = false): void => { ctx.deferred = true; if (!cache) ctx.cacheOnly = false; ctx.reasons.push(why); };
  if (LDCONFIG.test(w[0] ?? '')) { ctx.actions.push({ kind: 'ldconfig' }); return; }
  switch (prog) {
    case 'groupadd': ctx.actions.push({ kind: 'groupadd', args: w.slice(1) }); return;
    case 'useradd': case 'adduser': ctx.actions.push({ kind: 'useradd', args: w.slice(1) }); return;
    case 'usermod': ctx.actions.push({ kind: 'usermod', args: w.slice(1) }); return;
    case 'systemd-sysusers': ctx.actions.push({ kind: 'sysusers', args: w.slice(1) }); return;
    case 'alternatives': case 'update-alternatives': {
      if (w.includes('--install')) { ctx.actions.push({ kind: 'alternatives', args: w.slice(1) }); return; }
      if (w.includes('--remove') || w.includes('--display') || w.includes('--list')) return;
      defer(cmd);
      return;
    }
    case 'systemctl': {
      const args = w.slice(1).filter((a) => !a.startsWith('-'));
      const verb = args[0];
      const units = args.slice(1);
      if (verb === 'preset' && units.length) { ctx.actions.push({ kind: 'systemd-preset', units }); return; }
      if (verb === 'enable' && units.length) { ctx.actions.push({ kind: 'systemd-enable', units }); return; }
      if (['daemon-reload', 'try-restart', 'reload-or-try-restart', 'is-active', 'is-enabled', 'stop', 'daemon-reexec', 'reload'].includes(verb ?? '')) return;
      defer(cmd);
      return;
    }
    case 'systemd-update-helper': {
      if (w[1] === 'install-system-units' && w.length > 2) { ctx.actions.push({ kind: 'systemd-preset', units: w.slice(2) }); return; }
      if (w[1] === 'install-user-units' && w.length > 2) return; // user presets apply when the user session starts
      if (/^(mark-|system-reload|user-reload|remove-)/.test(w[1] ?? '')) return;
      defer(cmd);
      return;
    }
    default:
      if (BOOT_NOOPS.has(prog)) return;
      if (prog === 'touch' && w.includes('--no-create')) return; // icon-cache timestamp bumps
      if (CACHE_TOOLS.has(prog)) { defer(cmd, true); return; }
      defer(cmd);
  }
}

/** Walk statements handling `if … then … [elif …] [else …] fi` with install-time conditions. */
function classifyShell(body: string, ctx: Ctx): void {
  const st = statements(body);
  const stack: { active: boolean; taken: boolean; parentActive: boolean }[] = [];
  const active = (): boolean => stack.every((f) => f.active);
  const cond = (s: string): boolean | undefined => {
    const parts = s.split(/\s*&&\s*/).map(evalCondition);
    if (parts.some((p) => p === false)) return false;
    if (parts.every((p) => p === true)) return true;
    return undefined;
  };
  for (let s of st) {
    let m = /^if\s+(.*?)(\s+then)?$/.exec(s);
    if (m) {
      const c = cond(m[1]!);
      if (c === undefined && active()) { ctx.deferred = true; ctx.cacheOnly = false; ctx.reasons.push(`condition: ${m[1]}`); }
      const parentActive = active();
      stack.push({ active: c !== false, taken: c === true, parentActive });
      continue;
    }
    if (s === 'then') continue;
    if (s.startsWith('then ')) s = s.slice(5).trim();
    m = /^elif\s+(.*?)(\s+then)?$/.exec(s);
    if (m && stack.length) {
      const f = stack[stack.length - 1]!;
      const c = cond(m[1]!);
      f.active = !f.taken && c !== false;
      if (c === true) f.taken = true;
      continue;
    }
    if (s === 'else' && stack.length) { const f = stack[stack.length - 1]!; f.active = !f.taken; continue; }
    if (s.startsWith('else ') && stack.length) { const f = stack[stack.length - 1]!; f.active = !f.taken; s = s.slice(5).trim(); }
    if (s === 'fi' && stack.length) { stack.pop(); continue; }
    if (!active()) continue;
    if (/^(case|for|while|until|function|\w+\s*\(\))\b/.test(s)) { ctx.deferred = true; ctx.cacheOnly = false; ctx.reasons.push(`shell construct: ${s.slice(0, 60)}`); continue; }
    classifyCommand(s, ctx);
  }
}

export function classifyScriptlet(s: Scriptlet): ClassifiedScriptlet {
  const base = { ...s, args: installArgs(s) };
  if (!INSTALL_PHASES.has(s.phase)) return { ...base, disposition: 'noop', actions: [], reasons: [`%${s.phase} does not run on a fresh install`] };
  const ctx: Ctx = { actions: [], reasons: [], deferred: false, cacheOnly: true };
  const interp = s.interpreter.trim();
  if (LDCONFIG.test(interp)) ctx.actions.push({ kind: 'ldconfig' });
  else if (interp === '<lua>') { ctx.deferred = true; ctx.cacheOnly = false; ctx.reasons.push('lua scriptlet'); }
  else if (SHELLS.has(interp)) classifyShell(s.body, ctx);
  else { ctx.deferred = true; ctx.cacheOnly = false; ctx.reasons.push(`interpreter ${interp}`); }
  const disposition: Disposition = ctx.deferred ? 'deferred' : ctx.actions.length ? 'native' : 'noop';
  const out: ClassifiedScriptlet = { ...base, disposition, actions: ctx.actions, reasons: ctx.reasons.length ? ctx.reasons : disposition === 'noop' ? ['nothing to do on a fresh install'] : [] };
  if (disposition === 'deferred' && ctx.cacheOnly) out.cacheOnly = true;
  return out;
}

/** Order scriptlets as rpm runs them in one install transaction: every %pretrans, then per package %pre/%post/triggers, then %posttrans and transaction file triggers (package order kept within each stage). */
export function transactionOrder(scriptlets: Scriptlet[]): Scriptlet[] {
  const stage = (p: ScriptletPhase): number => (p === 'pretrans' ? 0 : p === 'posttrans' || p.startsWith('trans') ? 2 : 1);
  const within: Partial<Record<ScriptletPhase, number>> = { triggerprein: 0, pre: 1, post: 2, triggerin: 3, filetriggerin: 4 };
  const pkg = new Map<string, number>();
  for (const s of scriptlets) if (!pkg.has(s.package)) pkg.set(s.package, pkg.size);
  return scriptlets
    .map((s, i) => ({ s, i }))
    .sort((a, b) => stage(a.s.phase) - stage(b.s.phase) || pkg.get(a.s.package)! - pkg.get(b.s.package)!
      || (within[a.s.phase] ?? 5) - (within[b.s.phase] ?? 5) || a.i - b.i)
    .map((x) => x.s);
}

export const FIRSTBOOT_UNIT = 'ingot-deferred-scriptlets.service';
export const FIRSTBOOT_DIR = '/var/lib/ingot/deferred-scriptlets';

function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * Install a one-shot unit that runs the deferred scriptlets once on first
 * boot, in the given (transaction) order, each with its interpreter and
 * rpm's arguments, logging to the journal; it then disables itself and
 * renames its runner so it can never run twice.
 */
export async function installFirstbootUnit(tree: StagingTree, deferred: ClassifiedScriptlet[]): Promise<string[]> {
  const written: string[] = [];
  const lines = [
    '#!/bin/sh',
    '# Package scriptlets that could not run while the image was assembled (ingot).',
    '# Runs once: afterwards the unit disables itself and this file is renamed.',
    `cd ${FIRSTBOOT_DIR} || exit 1`,
    'status=0',
    'run() { label=$1; shift; echo "ingot: running $label"; "$@" || { rc=$?; echo "ingot: $label failed ($rc)" >&2; status=1; }; }',
  ];
  deferred.forEach((s, i) => {
    const name = `${String(i + 1).padStart(4, '0')}-${s.package.replace(/[^A-Za-z0-9_.+-]/g, '_')}-${s.phase}`;
    const lua = s.interpreter === '<lua>';
    const file = `${name}.${lua ? 'lua' : 'sh'}`;
    writeTreeText(tree, `${FIRSTBOOT_DIR}/${file}`, s.body, 0o700);
    written.push(`${FIRSTBOOT_DIR}/${file}`);
    const interp = lua ? ['/usr/bin/rpmlua'] : [s.interpreter, ...(s.interpreterArgs ?? [])];
    const label = `%${s.phase} of ${s.package}`;
    const call = `run ${shQuote(label)} ${interp.map(shQuote).join(' ')} ./${file} ${s.args.map(shQuote).join(' ')}`;
    if (s.triggerFiles?.length) {
      writeTreeText(tree, `${FIRSTBOOT_DIR}/${name}.files`, s.triggerFiles.join('\n') + '\n', 0o600);
      lines.push(`${call} < ./${name}.files`);
    } else lines.push(call); // a service's stdin is already /dev/null (StandardInput=null)
  });
  lines.push(
    `rm -f /etc/systemd/system/multi-user.target.wants/${FIRSTBOOT_UNIT}`,
    `mv -f ${FIRSTBOOT_DIR}/run ${FIRSTBOOT_DIR}/run.done`,
    'exit $status', '',
  );
  writeTreeText(tree, `${FIRSTBOOT_DIR}/run`, lines.join('\n'), 0o700);
  written.push(`${FIRSTBOOT_DIR}/run`);
  const unitPath = `/usr/lib/systemd/system/${FIRSTBOOT_UNIT}`;
  writeTreeText(tree, unitPath, [
    '[Unit]',
    'Description=Run package scriptlets deferred by the image build',
    'Documentation=man:rpm-scriptlets(7)',
    `ConditionPathExists=${FIRSTBOOT_DIR}/run`,
    'After=local-fs.target systemd-tmpfiles-setup.service network.target',
    'Before=systemd-user-sessions.service',
    '',
    '[Service]',
    'Type=oneshot',
    `ExecStart=${FIRSTBOOT_DIR}/run`,
    'RemainAfterExit=yes',
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n'));
  written.push(unitPath);
  const units = new SystemdUnits(tree);
  await units.enable([FIRSTBOOT_UNIT]);
  return written;
}

export interface ScriptletReport {
  native: number;
  noop: number;
  deferred: number;
  /** Deferred scriptlets that only refresh caches. */
  cacheOnly: number;
  scriptlets: ClassifiedScriptlet[];
}

export function classifyTransaction(scriptlets: Scriptlet[]): ScriptletReport {
  const all = transactionOrder(scriptlets).map(classifyScriptlet);
  return {
    native: all.filter((s) => s.disposition === 'native').length,
    noop: all.filter((s) => s.disposition === 'noop').length,
    deferred: all.filter((s) => s.disposition === 'deferred').length,
    cacheOnly: all.filter((s) => s.cacheOnly).length,
    scriptlets: all,
  };
}

// ---- alternatives (update-alternatives(1) / Fedora alternatives(8)) -------

interface AltGroup {
  link: string;
  slaves: { name: string; link: string }[];
  alts: { path: string; priority: number; slaves: Map<string, string> }[];
  mode: 'auto' | 'manual';
  manualPath?: string;
}

/** Parse one `--install LINK NAME PATH PRIO [--slave LINK NAME PATH]...` argument list. */
export function parseAlternativesInstall(args: string[]): { link: string; name: string; path: string; priority: number; slaves: { link: string; name: string; path: string }[] } | undefined {
  const i = args.indexOf('--install');
  if (i < 0 || i + 4 >= args.length) return undefined;
  const [link, name, path, prio] = args.slice(i + 1, i + 5) as [string, string, string, string];
  if (!/^-?\d+$/.test(prio)) return undefined;
  const slaves: { link: string; name: string; path: string }[] = [];
  for (let k = 0; k < args.length; k++) {
    if ((args[k] === '--slave' || args[k] === '--follower') && k + 3 < args.length) {
      slaves.push({ link: args[k + 1]!, name: args[k + 2]!, path: args[k + 3]! });
      k += 3;
    }
  }
  return { link, name, path, priority: Number(prio), slaves };
}

function parseAdminFile(text: string): AltGroup | undefined {
  const lines = text.split('\n');
  let i = 0;
  const mode = lines[i++] === 'manual' ? 'manual' : 'auto';
  const link = lines[i++];
  if (!link) return undefined;
  const slaves: { name: string; link: string }[] = [];
  while (i < lines.length && lines[i] !== '') { slaves.push({ name: lines[i]!, link: lines[i + 1] ?? '' }); i += 2; }
  i++;
  const alts: AltGroup['alts'] = [];
  while (i < lines.length && lines[i] !== '') {
    const path = lines[i++]!;
    const priority = Number(lines[i++] ?? '0');
    const sl = new Map<string, string>();
    for (const s of slaves) { const v = lines[i++] ?? ''; if (v) sl.set(s.name, v); }
    alts.push({ path, priority, slaves: sl });
  }
  return { link, slaves, alts, mode };
}

function renderAdminFile(g: AltGroup): string {
  const out = [g.mode, g.link];
  for (const s of g.slaves) out.push(s.name, s.link);
  out.push('');
  for (const a of g.alts) {
    out.push(a.path, String(a.priority));
    for (const s of g.slaves) out.push(a.slaves.get(s.name) ?? '');
  }
  out.push('', '');
  return out.join('\n');
}

/**
 * Apply `alternatives --install` calls like update-alternatives does: keep the
 * administrative file (`ADMINDIR/NAME`), point `LINK → ALTDIR/NAME → best
 * path` in auto mode (highest priority), slaves likewise (removed when the
 * chosen alternative lacks them).
 */
export async function applyAlternatives(tree: StagingTree, installs: string[][], opts: { admindir?: string; altdir?: string } = {}): Promise<string[]> {
  const admindir = opts.admindir ?? '/var/lib/alternatives';
  const altdir = opts.altdir ?? '/etc/alternatives';
  const warnings: string[] = [];
  const groups = new Map<string, AltGroup>();
  for (const name of listTreeDir(tree, admindir)) {
    const g = parseAdminFile((await readTreeText(tree, `${admindir}/${name}`)) ?? '');
    if (g) groups.set(name, g);
  }
  for (const args of installs) {
    const inst = parseAlternativesInstall(args);
    if (!inst) { warnings.push(`alternatives: cannot parse ${args.join(' ')}`); continue; }
    if (!tree.lookup(inst.path)) { warnings.push(`alternatives: ${inst.path} does not exist; ${inst.name} not changed`); continue; }
    let g = groups.get(inst.name);
    if (!g) { g = { link: inst.link, slaves: [], alts: [], mode: 'auto' }; groups.set(inst.name, g); }
    g.link = inst.link;
    for (const s of inst.slaves) {
      const known = g.slaves.find((x) => x.name === s.name);
      if (known) known.link = s.link; else g.slaves.push({ name: s.name, link: s.link });
    }
    const slaves = new Map(inst.slaves.map((s) => [s.name, s.path] as [string, string]));
    const existing = g.alts.find((a) => a.path === inst.path);
    if (existing) { existing.priority = inst.priority; existing.slaves = slaves; }
    else g.alts.push({ path: inst.path, priority: inst.priority, slaves });
  }
  const setLink = (path: string, target: string): void => {
    const cur = tree.lookup(path, { follow: false });
    if (cur?.type === 'symlink' && cur.target === target) return;
    if (cur && cur.type !== 'symlink') { warnings.push(`alternatives: ${path} is not a symlink; left alone`); return; }
    tree.mkdirp(path.slice(0, path.lastIndexOf('/')) || '/');
    tree.symlink(path, target);
  };
  for (const [name, g] of groups) {
    const best = g.mode === 'manual' && g.manualPath ? g.alts.find((a) => a.path === g.manualPath) : g.alts.reduce<AltGroup['alts'][number] | undefined>((b, a) => (!b || a.priority > b.priority ? a : b), undefined);
    if (!best) continue;
    setLink(g.link, `${altdir}/${name}`);
    setLink(`${altdir}/${name}`, best.path);
    for (const s of g.slaves) {
      const target = best.slaves.get(s.name);
      if (target && tree.lookup(target)) { setLink(s.link, `${altdir}/${s.name}`); setLink(`${altdir}/${s.name}`, target); }
      else {
        if (tree.lookup(s.link, { follow: false })?.type === 'symlink') tree.remove(s.link);
        if (tree.lookup(`${altdir}/${s.name}`, { follow: false })) tree.remove(`${altdir}/${s.name}`);
      }
    }
    writeTreeText(tree, `${admindir}/${name}`, renderAdminFile(g));
  }
  return warnings;
}

/**
 * Do what the native scriptlets would have done, once for the whole
 * transaction: alternatives, `systemctl preset/enable` for the named units,
 * and ld.so.cache. User and group creation is returned for the users step.
 */
export async function applyNativeActions(tree: StagingTree, report: ScriptletReport, opts: { arch?: string; ldconfig?: boolean } = {}): Promise<{ warnings: string[]; userActions: NativeAction[] }> {
  const warnings: string[] = [];
  const userActions: NativeAction[] = [];
  const alternatives: string[][] = [];
  const preset: string[] = [];
  const enable: string[] = [];
  let ldconfig = false;
  for (const s of report.scriptlets) {
    if (s.disposition !== 'native') continue;
    for (const a of s.actions) {
      switch (a.kind) {
        case 'ldconfig': ldconfig = true; break;
        case 'alternatives': alternatives.push(a.args); break;
        case 'systemd-preset': preset.push(...a.units.map(unitName)); break;
        case 'systemd-enable': enable.push(...a.units.map(unitName)); break;
        default: userActions.push(a);
      }
    }
  }
  if (alternatives.length) warnings.push(...(await applyAlternatives(tree, alternatives)));
  const units = new SystemdUnits(tree);
  if (preset.length) await units.preset(preset);
  if (enable.length) await units.enable(enable);
  warnings.push(...units.warnings);
  if (ldconfig || opts.ldconfig) warnings.push(...(await writeLdSoCache(tree, opts.arch ? { arch: opts.arch } : {})).warnings);
  return { warnings, userActions };
}
