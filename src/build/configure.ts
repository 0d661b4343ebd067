/** The spec's accounts (root password, groups, login users with ssh keys) applied to the tree. */
import { IngotError } from '../errors.js';
import { createLoginUser, setRootPassword, type Accounts, type PasswordSpec } from '../install/users.js';
import type { StagingTree } from '../tree/tree.js';
import type { ImageSpec, Password } from '../spec/model.js';

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
