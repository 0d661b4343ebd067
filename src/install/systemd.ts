/**
 * Enable, disable and preset systemd units in a staging tree the way
 * `systemctl --root=R enable|disable|preset-all|set-default` does, without
 * running anything: links are made from each unit's [Install] section
 * (WantedBy=, RequiredBy=, UpheldBy=, Alias=, Also=, DefaultInstance=) and
 * presets come from `*.preset` files (systemd.preset(5): files with the same
 * name in earlier directories override later ones, all are read in
 * file-name order, the first matching rule wins, no match means enable).
 *
 * Facts from systemd.unit(5), systemd.preset(5) and the behaviour of
 * systemctl 252; links point at the unit file's path inside the image.
 */
import { posix } from 'node:path';
import { StagingTree } from '../tree/tree.js';
import { readTreeText, listTreeDir } from './treetext.js';

/** Unit search path (system scope), highest priority first, as systemd-analyze unit-paths lists it for --root. */
export const UNIT_DIRS = ['/etc/systemd/system', '/run/systemd/system', '/usr/local/lib/systemd/system', '/usr/lib/systemd/system', '/lib/systemd/system'];
export const PRESET_DIRS = ['/etc/systemd/system-preset', '/run/systemd/system-preset', '/usr/local/lib/systemd/system-preset', '/usr/lib/systemd/system-preset', '/lib/systemd/system-preset'];
const CONFIG_DIR = '/etc/systemd/system';

export interface SystemdChange { type: 'symlink' | 'unlink'; path: string; target?: string }
export interface SystemdResult { changes: SystemdChange[]; warnings: string[] }

interface UnitFile {
  /** Name the unit is known by (the real file's name; for instances, the instance name). */
  name: string;
  /** Path of the unit file inside the image (what links point at). */
  path: string;
  wantedBy: string[];
  requiredBy: string[];
  upheldBy: string[];
  alias: string[];
  also: string[];
  defaultInstance?: string;
}

const UNIT_SUFFIXES = ['service', 'socket', 'target', 'device', 'mount', 'automount', 'swap', 'timer', 'path', 'slice', 'scope'];
const UNIT_RE = new RegExp(`^([A-Za-z0-9:_.\\\\-]+?)(@([A-Za-z0-9:_.\\\\-]*))?\\.(${UNIT_SUFFIXES.join('|')})$`);

export function parseUnitName(name: string): { prefix: string; instance?: string; template: boolean; suffix: string } | undefined {
  const m = UNIT_RE.exec(name);
  if (!m || name.length > 255) return undefined;
  const r: { prefix: string; instance?: string; template: boolean; suffix: string } = { prefix: m[1]!, template: m[2] !== undefined && m[3] === '', suffix: m[4]! };
  if (m[2] !== undefined && m[3] !== '') r.instance = m[3]!;
  return r;
}

const templateOf = (name: string): string => {
  const u = parseUnitName(name);
  return u && u.instance !== undefined ? `${u.prefix}@.${u.suffix}` : name;
};
const withInstance = (template: string, instance: string): string => {
  const u = parseUnitName(template)!;
  return `${u.prefix}@${instance}.${u.suffix}`;
};

/** systemd's unit-name unescaping (`\xNN`, `-` → `/`) for %I, %P, %J. */
function unescapeUnit(s: string): string {
  return s.replace(/-/g, '/').replace(/\\x([0-9a-fA-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
}

/** Expand the specifiers systemd allows in [Install] (systemd.unit(5) "Specifiers"); unknown ones stay. */
function expandSpecifiers(value: string, unitName: string): string {
  const u = parseUnitName(unitName);
  const prefix = u?.prefix ?? unitName;
  const inst = u?.instance ?? '';
  const dash = prefix.lastIndexOf('-');
  const j = dash >= 0 ? prefix.slice(dash + 1) : prefix;
  const map: Record<string, string> = {
    n: unitName, N: unitName.replace(/\.[^.]+$/, ''), p: prefix, P: unescapeUnit(prefix), i: inst, I: unescapeUnit(inst), j, J: unescapeUnit(j), '%': '%',
  };
  return value.replace(/%(.)/g, (all, c: string) => map[c] ?? all);
}

/** Parse the [Install] section of a unit file (systemd.syntax(7): continuation lines, `#`/`;` comments, empty assignment resets). */
export function parseInstallSection(text: string): Omit<UnitFile, 'name' | 'path'> {
  const out: Omit<UnitFile, 'name' | 'path'> = { wantedBy: [], requiredBy: [], upheldBy: [], alias: [], also: [] };
  const lines = text.split(/\r?\n/);
  let section = '';
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i]!.trim();
    while (line.endsWith('\\') && i + 1 < lines.length) {
      line = line.slice(0, -1) + ' ';
      let next = lines[++i]!.trim();
      while ((next.startsWith('#') || next.startsWith(';')) && i + 1 < lines.length) next = lines[++i]!.trim();
      line += next;
    }
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    if (line.startsWith('[') && line.endsWith(']')) { section = line.slice(1, -1); continue; }
    if (section !== 'Install') continue;
    const eq = line.indexOf('=');
    if (eq < 0) continue;
    const key = line.slice(0, eq).trim();
    const value = line.slice(eq + 1).trim();
    const words = value.split(/\s+/).filter(Boolean);
    const lists: Record<string, string[]> = { WantedBy: out.wantedBy, RequiredBy: out.requiredBy, UpheldBy: out.upheldBy, Alias: out.alias, Also: out.also };
    const list = lists[key];
    if (list) { if (words.length === 0) list.length = 0; else list.push(...words); }
    else if (key === 'DefaultInstance') { if (value) out.defaultInstance = value; else delete out.defaultInstance; }
  }
  return out;
}

const isMask = (target: string | undefined): boolean => target === '/dev/null';

/** Glob match with fnmatch(3) semantics and FNM_NOESCAPE (`*` also matches `/`). */
export function fnmatch(pattern: string, name: string): boolean {
  let re = '^';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') re += '.*';
    else if (c === '?') re += '.';
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 2);
      if (end < 0) { re += '\\['; continue; }
      let body = pattern.slice(i + 1, end);
      if (body.startsWith('!')) body = '^' + body.slice(1);
      re += `[${body.replace(/\\/g, '\\\\')}]`;
      i = end;
    } else re += c.replace(/[.+^${}()|\\\]]/g, '\\$&');
  }
  return new RegExp(re + '$', 's').test(name);
}

export class SystemdUnits {
  private readonly cache = new Map<string, UnitFile | null>();
  readonly warnings: string[] = [];
  readonly changes: SystemdChange[] = [];

  constructor(private readonly tree: StagingTree) {}

  /** Unit directories that are distinct in this tree (/lib may be a symlink to usr/lib). */
  private unitDirs(dirs = UNIT_DIRS): string[] {
    const seen = new Set<number>();
    const out: string[] = [];
    for (const d of dirs) {
      const node = this.tree.lookup(d);
      if (!node || node.type !== 'dir' || seen.has(node.id)) continue;
      seen.add(node.id);
      out.push(d);
    }
    return out;
  }

  /** Find a unit file by name; follows alias symlinks to the real unit (whose name it then carries). */
  async find(name: string): Promise<UnitFile | undefined> {
    if (this.cache.has(name)) return this.cache.get(name) ?? undefined;
    const found = await this.discover(name);
    this.cache.set(name, found ?? null);
    return found;
  }

  private async discover(name: string, hops = 0): Promise<UnitFile | undefined> {
    const u = parseUnitName(name);
    if (!u || hops > 8) return undefined;
    const candidates = u.instance !== undefined ? [name, templateOf(name)] : [name];
    for (const cand of candidates) {
      for (const dir of this.unitDirs()) {
        const path = `${dir}/${cand}`;
        const node = this.tree.lookup(path, { follow: false });
        if (!node) continue;
        if (node.type === 'symlink') {
          if (isMask(node.target)) return undefined;
          // An alias: the unit is the file the link names.
          const targetName = posix.basename(node.target!);
          if (targetName !== cand && parseUnitName(targetName)) {
            const real = await this.discover(u.instance !== undefined && cand !== name ? withInstance(targetName, u.instance) : targetName, hops + 1);
            if (real) return real;
          }
        }
        const text = await readTreeText(this.tree, path);
        if (text === undefined) continue;
        return { name, path, ...parseInstallSection(text) };
      }
    }
    return undefined;
  }

  /** True when the name is masked (a link to /dev/null in a unit directory that comes first). */
  isMasked(name: string): boolean {
    for (const dir of this.unitDirs()) {
      const node = this.tree.lookup(`${dir}/${name}`, { follow: false });
      if (node) return node.type === 'symlink' && isMask(node.target);
    }
    return false;
  }

  private link(path: string, target: string): void {
    const existing = this.tree.lookup(path, { follow: false });
    if (existing) {
      if (existing.type === 'symlink' && existing.target === target) return;
      this.warnings.push(`${path} already exists${existing.type === 'symlink' ? ` and links to ${existing.target}` : ''}; left unchanged`);
      return;
    }
    this.tree.mkdirp(posix.dirname(path));
    this.tree.symlink(path, target);
    this.changes.push({ type: 'symlink', path, target });
  }

  /**
   * The name a unit's links carry: its own (instance) name, the DefaultInstance=
   * of a template, or the bare template — which systemd links only into other
   * templates (`WantedBy=postgresql@%i.service` → `postgresql@.service.wants/`).
   */
  private linkName(info: UnitFile): string {
    const u = parseUnitName(info.name)!;
    if (u.template && info.defaultInstance) return withInstance(info.name, info.defaultInstance);
    return info.name;
  }

  /** Create the links one unit's [Install] section asks for; returns the Also= names. */
  private applyOne(info: UnitFile): string[] {
    const linkName = this.linkName(info);
    const lu = parseUnitName(linkName)!;
    const inst = lu.instance;
    for (const a of info.alias) {
      let alias = expandSpecifiers(a, linkName);
      const au = parseUnitName(alias);
      if (!au) { this.warnings.push(`${info.name}: invalid Alias=${a}`); continue; }
      if (au.template && inst !== undefined) alias = withInstance(alias, inst);
      this.link(`${CONFIG_DIR}/${alias}`, info.path);
    }
    const deps: [string[], string][] = [[info.wantedBy, 'wants'], [info.requiredBy, 'requires'], [info.upheldBy, 'upholds']];
    for (const [list, kind] of deps) {
      for (const t of list) {
        let target = expandSpecifiers(t, linkName);
        const tu = parseUnitName(target);
        if (!tu) { this.warnings.push(`${info.name}: invalid dependency target ${t}`); continue; }
        if (tu.template && inst !== undefined) target = withInstance(target, inst);
        else if (lu.template && !tu.template) {
          this.warnings.push(`${info.name} is a template without DefaultInstance=; not linked into ${target}`);
          continue;
        }
        this.link(`${CONFIG_DIR}/${target}.${kind}/${linkName}`, info.path);
      }
    }
    return info.also.map((a) => expandSpecifiers(a, linkName));
  }

  /** `systemctl enable NAME...` */
  async enable(names: string[]): Promise<void> {
    const done = new Set<string>();
    const queue = [...names];
    while (queue.length) {
      const name = queue.shift()!;
      if (done.has(name)) continue;
      done.add(name);
      if (this.isMasked(name)) { this.warnings.push(`unit ${name} is masked; not enabled`); continue; }
      const info = await this.find(name);
      if (!info) { this.warnings.push(`unit ${name} does not exist; not enabled`); continue; }
      const instanceInfo = parseUnitName(name)!.instance !== undefined ? { ...info, name } : info;
      if (!hasRules(instanceInfo)) this.warnings.push(`unit ${name} has no [Install] rules (static); nothing to enable`);
      queue.push(...this.applyOne(instanceInfo));
    }
  }

  /** `systemctl disable NAME...`: remove links in /etc/systemd/system named after the units or pointing at their files (Also= followed). */
  async disable(names: string[]): Promise<void> {
    const remove = new Set<string>();
    const queue = [...names];
    while (queue.length) {
      const name = queue.shift()!;
      if (remove.has(name)) continue;
      remove.add(name);
      const info = await this.find(name);
      if (!info) continue;
      remove.add(info.path);
      remove.add(posix.basename(info.path));
      queue.push(...info.also.map((a) => expandSpecifiers(a, name)));
    }
    this.removeLinks(remove);
  }

  private removeLinks(remove: Set<string>): void {
    const root = this.tree.lookup(CONFIG_DIR);
    if (!root || root.type !== 'dir') return;
    for (const { path, inode } of this.tree.walk(root, CONFIG_DIR)) {
      if (inode.type !== 'symlink' || isMask(inode.target)) continue;
      const target = inode.target!;
      if (remove.has(posix.basename(path)) || remove.has(posix.basename(target)) || remove.has(target)) {
        this.tree.remove(path);
        this.changes.push({ type: 'unlink', path });
      }
    }
  }

  /** Parsed preset rules in evaluation order. */
  async presetRules(): Promise<{ action: 'enable' | 'disable' | 'ignore'; pattern: string; instances: string[] }[]> {
    const files = new Map<string, string>();
    for (const dir of this.unitDirs(PRESET_DIRS)) {
      for (const f of listTreeDir(this.tree, dir)) {
        if (f.endsWith('.preset') && !files.has(f)) files.set(f, `${dir}/${f}`);
      }
    }
    const rules: { action: 'enable' | 'disable' | 'ignore'; pattern: string; instances: string[] }[] = [];
    for (const f of [...files.keys()].sort()) {
      const path = files.get(f)!;
      const node = this.tree.lookup(path, { follow: false });
      if (node?.type === 'symlink' && isMask(node.target)) continue;
      const text = await readTreeText(this.tree, path);
      if (text === undefined) continue;
      text.split(/\r?\n/).forEach((raw, i) => {
        const line = raw.trim();
        if (!line || line.startsWith('#') || line.startsWith(';')) return;
        const [verb, pattern, ...instances] = line.split(/\s+/);
        if ((verb === 'enable' || verb === 'disable' || verb === 'ignore') && pattern) rules.push({ action: verb, pattern, instances: verb === 'enable' ? instances : [] });
        else this.warnings.push(`${path}:${i + 1}: unrecognised preset line ignored`);
      });
    }
    return rules;
  }

  /** The preset for one unit name: action plus instance list for templates. */
  static queryPreset(rules: Awaited<ReturnType<SystemdUnits['presetRules']>>, name: string): { action: 'enable' | 'disable' | 'ignore'; instances?: string[] } {
    const u = parseUnitName(name);
    for (const r of rules) {
      if (r.instances.length && u && (u.template || u.instance !== undefined) && r.pattern === templateOf(name)) {
        if (u.template) return { action: r.action, instances: r.instances.map((i) => withInstance(name, i)) };
        if (r.instances.includes(u.instance!)) return { action: r.action };
        continue;
      }
      if (fnmatch(r.pattern, name)) return { action: r.action };
    }
    return { action: 'enable' };
  }

  /** `systemctl preset NAME...` (what `%systemd_post` runs for a package's units). */
  async preset(names: string[]): Promise<void> {
    const rules = await this.presetRules();
    const plus: string[] = [];
    const minus: string[] = [];
    for (const name of names) {
      const p = SystemdUnits.queryPreset(rules, name);
      if (p.action === 'enable') plus.push(...(p.instances ?? [name]));
      else if (p.action === 'disable') minus.push(name);
    }
    await this.disable(minus);
    await this.enable(plus);
  }

  /** `systemctl preset-all`: every unit file with [Install] rules, by its preset; removals first, then links. */
  async presetAll(): Promise<void> {
    const rules = await this.presetRules();
    const seen = new Set<string>();
    const plus: string[] = [];
    const minus: string[] = [];
    for (const dir of this.unitDirs()) {
      for (const name of listTreeDir(this.tree, dir)) {
        if (seen.has(name) || !parseUnitName(name)) continue;
        seen.add(name);
        const node = this.tree.lookup(`${dir}/${name}`, { follow: false });
        if (!node || node.type === 'dir') continue;
        if (node.type === 'symlink' && (isMask(node.target) || posix.basename(node.target!) !== name)) continue; // masked or alias
        const info = await this.find(name);
        if (!info || info.name !== name || !hasRules(info)) continue;
        const p = SystemdUnits.queryPreset(rules, name);
        if (p.action === 'ignore') continue;
        if (p.action === 'enable') plus.push(...(p.instances ?? [name]));
        else minus.push(name);
      }
    }
    await this.disable(minus);
    await this.enable(plus);
  }

  /** `systemctl set-default TARGET` */
  async setDefault(target: string): Promise<void> {
    const info = await this.find(target);
    if (!info) { this.warnings.push(`default target ${target} does not exist; default.target unchanged`); return; }
    const path = `${CONFIG_DIR}/default.target`;
    const existing = this.tree.lookup(path, { follow: false });
    if (existing?.type === 'symlink' && existing.target === info.path) return;
    if (existing) { this.tree.remove(path); this.changes.push({ type: 'unlink', path }); }
    this.link(path, info.path);
  }
}

function hasRules(i: UnitFile): boolean {
  return i.wantedBy.length + i.requiredBy.length + i.upheldBy.length + i.alias.length + i.also.length > 0;
}

export interface ServicesConfig {
  enable: string[];
  disable: string[];
  defaultTarget?: string;
  /** Apply the image's presets first, as package scriptlets (`%systemd_post`) would have (default true). */
  presetAll?: boolean;
}

/** Names from kickstart `services` may omit `.service`. */
export function unitName(s: string): string {
  return parseUnitName(s) ? s : `${s}.service`;
}

/** The configuration step: presets, then disable, then enable (Anaconda's order), then the default target. */
export async function configureServices(tree: StagingTree, cfg: ServicesConfig): Promise<SystemdResult> {
  const units = new SystemdUnits(tree);
  if (cfg.presetAll ?? true) await units.presetAll();
  if (cfg.disable.length) await units.disable(cfg.disable.map(unitName));
  if (cfg.enable.length) await units.enable(cfg.enable.map(unitName));
  if (cfg.defaultTarget) await units.setDefault(unitName(cfg.defaultTarget));
  return { changes: units.changes, warnings: units.warnings };
}
