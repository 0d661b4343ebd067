/**
 * Accounts during the transaction, as rpm would see them: the image's own
 * passwd/group (installed by its `setup`-like package), extended before each
 * package by the users and groups its %pre/%pretrans scriptlets create
 * (parsed, never run) and after it by its sysusers.d files.
 */
import type { RpmPackage } from '../rpm/reader.js';
import type { StagingTree, Inode } from '../tree/tree.js';
import { Accounts, accountCommandsFromScriptlet, applyAccountCommands, applySysusers, parseSysusers } from '../install/users.js';
import type { OwnerResolver } from '../install/unpack.js';
import { readInodeBytes } from '../install/treetext.js';

const ACCOUNT_FILES = ['/etc/passwd', '/etc/group', '/etc/shadow', '/etc/gshadow'];
const SHELLS = /^(\/usr)?\/bin\/(ba)?sh\b/;
const SYSUSERS = /^\/usr\/lib\/sysusers\.d\/[^/]+\.conf$/;

export class AccountTracker {
  private acc?: Accounts;
  private saved = new Map<string, Inode | undefined>();
  readonly warnings: string[] = [];

  constructor(private readonly tree: StagingTree, private readonly epochDays: number) {}

  /** Reload when a package replaced the account files since we last wrote them. */
  private async sync(): Promise<Accounts> {
    const changed = !this.acc || ACCOUNT_FILES.some((p) => this.tree.lookup(p) !== this.saved.get(p));
    if (changed) this.acc = await Accounts.load(this.tree, { epochDays: this.epochDays });
    return this.acc!;
  }

  private save(): void {
    this.acc!.save(this.tree);
    for (const p of ACCOUNT_FILES) this.saved.set(p, this.tree.lookup(p));
  }

  async accounts(): Promise<Accounts> { return this.sync(); }

  async beforePackage(pkg: RpmPackage): Promise<void> {
    const acc = await this.sync();
    let touched = false;
    for (const kind of ['pretrans', 'pre'] as const) {
      const s = pkg.info.scripts[kind];
      if (!s?.body || (s.interpreter && !SHELLS.test(s.interpreter))) continue;
      const { commands } = accountCommandsFromScriptlet(s.body);
      if (commands.length) {
        try {
          applyAccountCommands(acc, commands);
          touched = true;
        } catch (e) {
          this.warnings.push(`${pkg.info.nevra} %${kind}: ${(e as Error).message}`);
        }
      }
    }
    if (touched && this.tree.lookup('/etc/passwd')) this.save();
  }

  async afterPackage(pkg: RpmPackage): Promise<void> {
    const acc = await this.sync();
    let touched = false;
    for (const f of pkg.files) {
      if (!SYSUSERS.test(f.path)) continue;
      const node = this.tree.lookup(f.path);
      if (!node || node.type !== 'file') continue;
      const text = (await readInodeBytes(node, f.path)).toString('utf8');
      this.warnings.push(...applySysusers(acc, parseSysusers(text, f.path)));
      touched = true;
    }
    if (touched) this.save();
  }

  /** Resolution against the accounts as they stand (call after `sync` via before/afterPackage). */
  resolver(): OwnerResolver {
    return { uid: (n) => this.acc?.uid(n), gid: (n) => this.acc?.gid(n) };
  }

  finish(): void { if (this.acc && this.tree.lookup('/etc/passwd')) this.save(); }
}
