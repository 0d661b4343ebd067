/**
 * The spec's accounts (root password, groups, login users with ssh keys) and
 * extra files (inline, from the host, or a tar overlay) applied to the tree.
 */
import { IngotError } from '../errors.js';
import { createLoginUser, setRootPassword, type Accounts, type PasswordSpec } from '../install/users.js';
import type { ContentStore } from '../tree/content-store.js';
import { FileSpanContent } from '../tree/content-store.js';
import { BufferContent, type StagingTree } from '../tree/tree.js';
import { importTar } from '../tree/import-tar.js';
import type { ExtraFile, ImageSpec, Password } from '../spec/model.js';
import { statSync } from 'node:fs';

export class ConfigureError extends IngotError {}

function passwordSpec(p: Password | undefined, lock: boolean): PasswordSpec | undefined {
  if (!p) return lock ? { lock: true } : undefined;
  return 'hashed' in p ? { hashed: p.hashed, lock } : { plain: p.plain, lock };
}

export async function configureAccounts(tree: StagingTree, acc: Accounts, spec: ImageSpec, seed: string): Promise<void> {
  const root = passwordSpec(spec.root.password, spec.root.lock);
  if (root) setRootPassword(acc, root, { seed });
  for (const g of spec.groups) acc.ensureGroup(g.name, { gid: g.gid });
  for (const u of spec.users) {
    for (const g of u.groups) acc.ensureGroup(g, {});
    await createLoginUser(tree, acc, {
      name: u.name, uid: u.uid, group: u.gid, groups: u.groups, home: u.home, shell: u.shell, gecos: u.gecos, system: u.system,
      passwordSpec: passwordSpec(u.password, u.lock), sshKeys: u.sshKeys,
    }, { seed });
  }
  if (spec.root.sshKeys.length) {
    const { addAuthorizedKeys } = await import('../install/users.js');
    await addAuthorizedKeys(tree, '/root', 0, 0, spec.root.sshKeys);
  }
}

function owner(acc: { uid(n: string): number | undefined; gid(n: string): number | undefined } | undefined, f: { owner?: string; group?: string }, path: string): { uid: number; gid: number } {
  const uid = f.owner === undefined ? 0 : /^\d+$/.test(f.owner) ? Number(f.owner) : acc?.uid(f.owner);
  const gid = f.group === undefined ? 0 : /^\d+$/.test(f.group) ? Number(f.group) : acc?.gid(f.group);
  if (uid === undefined || gid === undefined) throw new ConfigureError('UNKNOWN_OWNER', `extra file ${path}: unknown ${uid === undefined ? `user ${f.owner}` : `group ${f.group}`}`, { field: 'files' });
  return { uid, gid };
}

export async function applyExtraFile(tree: StagingTree, f: ExtraFile, store: ContentStore, acc?: Accounts): Promise<void> {
  if (f.kind === 'inline') {
    const bytes = f.encoding === 'base64' ? Buffer.from(f.content, 'base64') : Buffer.from(f.content, 'utf8');
    tree.addFile(f.path, new BufferContent(bytes), { mode: f.mode ?? 0o644, ...owner(acc, f, f.path) });
  } else if (f.kind === 'host') {
    let size: number;
    try { size = statSync(f.source).size; } catch { throw new ConfigureError('MISSING_FILE', `extra file source ${f.source} does not exist`, { file: f.source, field: 'files' }); }
    tree.addFile(f.path, new FileSpanContent(f.source, 0, size), { mode: f.mode ?? 0o644, ...owner(acc, f, f.path) });
  } else if (f.format === 'tar') {
    await importTar(tree, f.archive, { into: f.path, store });
  } else {
    throw new ConfigureError('UNSUPPORTED_OVERLAY', 'zip overlays are not supported yet; use a tar archive', { file: f.archive, field: 'files' });
  }
}
