/**
 * SELinux file labelling like setfiles(8)/restorecon: every file of the
 * staging tree gets the `security.selinux` xattr (the context string with a
 * trailing NUL, as the kernel stores it) from the installed policy's
 * file_contexts. With no policy in the image, `/.autorelabel` asks the first
 * boot to relabel instead.
 *
 * Lookup rules (selabel_file(5) and libselinux label_file facts):
 * - inputs in order: file_contexts, file_contexts.homedirs, file_contexts.local;
 * - each spec is `regex [-type] context`; the regex is anchored `^…$` as a whole
 *   (no grouping added); `-d -- -l -c -b -p -s` restrict it to a file kind;
 * - a spec without regex meta-characters (`.^$?*+|[({])}`, escapes of those
 *   being literal) is an exact-path spec and wins over every regex spec;
 *   among specs of one class the one defined last wins;
 * - the path is first rewritten by file_contexts.subs (local) and then
 *   file_contexts.subs_dist (prefix aliases at a `/` boundary);
 * - `<<none>>` means "leave unlabelled".
 */
import { StagingTree, type NodeType } from '../tree/tree.js';
import { IngotError } from '../errors.js';
import { readTreeText, writeTreeText } from './treetext.js';

export class SelinuxPolicyError extends IngotError {}

export type FileKind = 'file' | 'dir' | 'lnk_file' | 'chr_file' | 'blk_file' | 'fifo_file' | 'sock_file';
const KIND_FLAGS: Record<string, FileKind> = { '--': 'file', '-d': 'dir', '-l': 'lnk_file', '-c': 'chr_file', '-b': 'blk_file', '-p': 'fifo_file', '-s': 'sock_file' };
const NODE_KIND: Record<NodeType, FileKind> = { file: 'file', dir: 'dir', symlink: 'lnk_file', chardev: 'chr_file', blockdev: 'blk_file', fifo: 'fifo_file', socket: 'sock_file' };

interface Spec {
  regex: string;
  kind?: FileKind;
  /** Context, or null for `<<none>>`. */
  context: string | null;
  /** Definition order across all inputs (later wins). */
  order: number;
  re?: RegExp;
  file: string;
  line: number;
}

interface TrieNode { next: Map<string, TrieNode>; specs: Spec[] }

const META = new Set(['.', '^', '$', '?', '*', '+', '|', '[', '(', '{', ']', ')', '}']);

/**
 * The literal text a spec's regex starts with, and whether the whole regex is
 * literal. Escaped meta-characters are literal; a character followed by a
 * quantifier that allows zero repetitions is not part of the prefix.
 */
export function literalPrefix(regex: string): { prefix: string; literal: boolean } {
  let out = '';
  for (let i = 0; i < regex.length; i++) {
    const c = regex[i]!;
    if (c === '\\') {
      const n = regex[i + 1];
      // libselinux's curated list of escapes that stay literal; any other escape makes the spec a regex.
      if (n !== undefined && (META.has(n) || n === '-' || n === '_' || n === ',')) {
        if (regex[i + 2] === '?' || regex[i + 2] === '*' || regex[i + 2] === '{') return { prefix: out, literal: false };
        out += n;
        i++;
        continue;
      }
      return { prefix: out, literal: false };
    }
    if (META.has(c)) {
      if (c === '?' || c === '*' || c === '{') out = out.slice(0, -1);
      return { prefix: hasTopLevelAlternation(regex) ? '' : out, literal: false };
    }
    out += c;
  }
  return { prefix: out, literal: true };
}

function hasTopLevelAlternation(regex: string): boolean {
  let depth = 0;
  let inClass = false;
  for (let i = 0; i < regex.length; i++) {
    const c = regex[i]!;
    if (c === '\\') { i++; continue; }
    if (inClass) { if (c === ']') inClass = false; continue; }
    if (c === '[') { inClass = true; if (regex[i + 1] === '^') i++; if (regex[i + 1] === ']') i++; continue; }
    if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === '|' && depth === 0) return true;
  }
  return false;
}

const POSIX_CLASSES: Record<string, string> = {
  alpha: 'A-Za-z', digit: '0-9', alnum: '0-9A-Za-z', upper: 'A-Z', lower: 'a-z', space: ' \\t\\n\\r\\f\\v', xdigit: '0-9A-Fa-f', punct: '!-\\/:-@\\[-`{-~',
};

/** PCRE spec regex → JavaScript RegExp, anchored like libselinux (`^` + regex + `$`). */
export function compileSpecRegex(regex: string): RegExp {
  const js = regex.replace(/\[:([a-z]+):\]/g, (all, name: string) => POSIX_CLASSES[name] ?? all);
  return new RegExp(`^${js}$`);
}

export interface FileContextsSources {
  fileContexts: string;
  homedirs?: string;
  local?: string;
  subsDist?: string;
  subs?: string;
  /** Name used in error messages. */
  path?: string;
}

export class FileContexts {
  private readonly literals = new Map<string, Spec[]>();
  private readonly trie: TrieNode = { next: new Map(), specs: [] };
  private readonly subs: [string, string][];
  private readonly distSubs: [string, string][];
  readonly specCount: number;

  constructor(src: FileContextsSources) {
    const base = src.path ?? 'file_contexts';
    let order = 0;
    const inputs: [string | undefined, string][] = [[src.fileContexts, base], [src.homedirs, `${base}.homedirs`], [src.local, `${base}.local`]];
    for (const [text, file] of inputs) {
      if (text === undefined) continue;
      text.split('\n').forEach((raw, i) => {
        const line = raw.trim();
        if (!line || line.startsWith('#')) return;
        const f = line.split(/\s+/);
        if (f.length < 2 || f.length > 3) throw new SelinuxPolicyError('FC_BAD_LINE', 'expected "regex [type] context"', { file, line: i + 1, actual: line });
        const kindFlag = f.length === 3 ? f[1]! : undefined;
        const kind = kindFlag !== undefined ? KIND_FLAGS[kindFlag] : undefined;
        if (kindFlag !== undefined && !kind) throw new SelinuxPolicyError('FC_BAD_TYPE', `unknown file type ${kindFlag}`, { file, line: i + 1, actual: line });
        const ctx = f[f.length - 1]!;
        const spec: Spec = { regex: f[0]!, context: ctx === '<<none>>' ? null : ctx, order: order++, file, line: i + 1 };
        if (kind) spec.kind = kind;
        this.insert(spec);
      });
    }
    this.specCount = order;
    this.distSubs = parseSubs(src.subsDist);
    this.subs = parseSubs(src.subs);
  }

  private insert(spec: Spec): void {
    const { prefix, literal } = literalPrefix(spec.regex);
    if (literal) {
      const list = this.literals.get(prefix) ?? [];
      list.push(spec);
      this.literals.set(prefix, list);
      return;
    }
    try {
      spec.re = compileSpecRegex(spec.regex);
    } catch (e) {
      throw new SelinuxPolicyError('FC_BAD_REGEX', `invalid regex: ${(e as Error).message}`, { file: spec.file, line: spec.line, actual: spec.regex });
    }
    let node = this.trie;
    for (let i = 0; i < prefix.length; i++) {
      const ch = prefix[i]!;
      let n = node.next.get(ch);
      if (!n) { n = { next: new Map(), specs: [] }; node.next.set(ch, n); }
      node = n;
    }
    node.specs.push(spec);
  }

  /** The path libselinux looks up: duplicate and trailing slashes removed, then substitutions applied. */
  key(path: string): string {
    let p = path.replace(/\/{2,}/g, '/');
    if (p.length > 1 && p.endsWith('/')) p = p.slice(0, -1);
    const local = applySubs(this.subs, p);
    if (local !== undefined) return applySubs(this.distSubs, local) ?? local;
    return applySubs(this.distSubs, p) ?? p;
  }

  /** Context for `path` of `kind` (any kind when omitted): a string, null for `<<none>>`, undefined when nothing matches. */
  lookup(path: string, kind?: FileKind): string | null | undefined {
    const key = this.key(path);
    const fits = (s: Spec): boolean => !kind || !s.kind || s.kind === kind;
    let best: Spec | undefined;
    for (const s of this.literals.get(key) ?? []) if (fits(s) && (!best || s.order > best.order)) best = s;
    if (best) return best.context;
    // Candidate lists: specs whose literal prefix is a prefix of the key, one list per trie
    // node on the key's path, each in definition order. Walk them from the latest definition
    // backwards (k-way merge) and stop at the first match: the last matching spec wins.
    const lists: Spec[][] = [];
    let node: TrieNode | undefined = this.trie;
    for (let i = 0; node; i++) {
      if (node.specs.length) lists.push(node.specs);
      node = i < key.length ? node.next.get(key[i]!) : undefined;
    }
    const idx = lists.map((l) => l.length - 1);
    for (;;) {
      let pick = -1;
      for (let k = 0; k < lists.length; k++) {
        if (idx[k]! >= 0 && (pick < 0 || lists[k]![idx[k]!]!.order > lists[pick]![idx[pick]!]!.order)) pick = k;
      }
      if (pick < 0) return undefined;
      const s = lists[pick]![idx[pick]!--]!;
      if (fits(s) && s.re!.test(key)) return s.context;
    }
  }
}

function parseSubs(text: string | undefined): [string, string][] {
  const out: [string, string][] = [];
  for (const raw of (text ?? '').split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const f = line.split(/\s+/);
    if (f.length >= 2) out.push([f[0]!, f[1]!]);
  }
  // libselinux prepends each entry to its list, so the last line is tried first.
  return out.reverse();
}

function applySubs(subs: [string, string][], path: string): string | undefined {
  for (const [src, dst] of subs) {
    if (!path.startsWith(src)) continue;
    const rest = path.slice(src.length);
    if (rest !== '' && !rest.startsWith('/')) continue;
    return dst === '/' && rest.startsWith('/') ? rest : dst + rest;
  }
  return undefined;
}

/** SELINUXTYPE from /etc/selinux/config (default `targeted`). */
export async function policyType(tree: StagingTree): Promise<string> {
  const cfg = await readTreeText(tree, '/etc/selinux/config');
  const m = cfg ? /^\s*SELINUXTYPE\s*=\s*(\S+)/m.exec(cfg) : null;
  return m ? m[1]!.replace(/^["']|["']$/g, '') : 'targeted';
}

/** Load the image's file_contexts set for `type`; undefined when the policy is not installed. */
export async function loadFileContexts(tree: StagingTree, type?: string): Promise<FileContexts | undefined> {
  const t = type ?? (await policyType(tree));
  if (!/^[A-Za-z0-9_.-]+$/.test(t)) throw new SelinuxPolicyError('BAD_POLICY_TYPE', 'invalid SELINUXTYPE', { actual: t });
  const base = `/etc/selinux/${t}/contexts/files/file_contexts`;
  const fileContexts = await readTreeText(tree, base);
  if (fileContexts === undefined) return undefined;
  const src: FileContextsSources = { fileContexts, path: base };
  for (const [k, suffix] of [['homedirs', '.homedirs'], ['local', '.local'], ['subsDist', '.subs_dist'], ['subs', '.subs']] as const) {
    const text = await readTreeText(tree, base + suffix);
    if (text !== undefined) src[k] = text;
  }
  return new FileContexts(src);
}

export interface LabelResult {
  /** The policy type used, or undefined when none was installed. */
  policy?: string;
  labelled: number;
  /** Paths left alone by `<<none>>`. */
  none: number;
  /** Paths no spec matched (left unlabelled). */
  unmatched: number;
  autorelabel: boolean;
}

/**
 * Label every path of the tree from the image's policy, or create /.autorelabel
 * when none is installed. `mode: 'disabled'` does nothing (SELinux off).
 */
export async function labelTree(tree: StagingTree, opts: { mode?: 'enforcing' | 'permissive' | 'disabled'; type?: string } = {}): Promise<LabelResult> {
  const res: LabelResult = { labelled: 0, none: 0, unmatched: 0, autorelabel: false };
  if (opts.mode === 'disabled') return res;
  const type = opts.type ?? (await policyType(tree));
  const fc = await loadFileContexts(tree, type);
  if (!fc) {
    writeTreeText(tree, '/.autorelabel', '');
    res.autorelabel = true;
    return res;
  }
  res.policy = type;
  for (const { path, inode } of tree.walk()) {
    const ctx = fc.lookup(path, NODE_KIND[inode.type]);
    if (ctx === undefined) { res.unmatched++; continue; }
    if (ctx === null) { res.none++; continue; }
    inode.xattrs.set('security.selinux', Buffer.from(`${ctx}\0`, 'utf8'));
    res.labelled++;
  }
  return res;
}
