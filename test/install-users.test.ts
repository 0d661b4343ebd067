/**
 * Accounts against independent tools: SHA-512 crypt against OpenSSL and
 * glibc's crypt (through python3), account files against shadow-utils'
 * pwck/grpck on a root laid out from the tree, inputs taken from real
 * sysusers.d files and real package scriptlets.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { requireTool } from './helpers/tools.js';
import { SHARED } from './helpers/cli.js';
import { sha512Crypt, verifySha512Crypt } from '../src/install/crypt.js';
import { AccountFile, parseLoginDefs } from '../src/install/passwd.js';
import {
  Accounts, accountCommandsFromScriptlet, applyAccountCommands, applySysusers, createLoginUser, parseSysusers, readSysusersDir, setRootPassword,
} from '../src/install/users.js';
import { StagingTree, BufferContent } from '../src/tree/tree.js';
import { readAll } from '../src/tree/content-store.js';

for (const t of ['openssl', 'pwck', 'grpck', 'rpm', 'python3']) requireTool(t);

const work = mkdtempSync(join(tmpdir(), 'ingot-users-'));

/** glibc crypt(3) through python3's crypt module (deprecated but present in 3.11). */
function glibcCrypt(pw: string, setting: string): string {
  return execFileSync('python3', ['-W', 'ignore', '-c', 'import crypt,sys; print(crypt.crypt(sys.argv[1], sys.argv[2]))', pw, setting], { encoding: 'utf8' }).trim();
}

const CASES: [string, string][] = [
  ['a', 'x'], ['password', 'saltsalt'], ['correct horse battery staple', 'abcdefghijklmnop'],
  ['p'.repeat(64), 'sixtyfour'], ['q'.repeat(65), 'sixtyfive'], ['long'.repeat(50), 'L0ng.Salt/'], ['pässwörd ✓', 'ütf8'],
];

test('sha512Crypt equals openssl passwd -6 (default rounds)', () => {
  for (const [pw, salt] of CASES) {
    const ours = sha512Crypt(pw, salt);
    const theirs = execFileSync('openssl', ['passwd', '-6', '-salt', salt, pw], { encoding: 'utf8' }).trim();
    assert.is(ours, theirs, `${JSON.stringify(pw)} / ${salt}`);
  }
});

test('sha512Crypt equals glibc crypt for explicit rounds, clamping and salt truncation', () => {
  for (const [pw, salt, rounds] of [['pw', 'r1000', 1000], ['pw', 'r5000', 5000], ['Hello world!', 'saltstringsaltstring', 10000], ['y', 'abc', 1234], ['z', 'big', 20000]] as const) {
    const setting = `$6$rounds=${rounds}$${salt}`;
    assert.is(sha512Crypt(pw, salt, { rounds }), glibcCrypt(pw, setting), setting);
  }
  assert.is(sha512Crypt('pw', 'x'.repeat(30)), glibcCrypt('pw', `$6$${'x'.repeat(30)}`), 'salt cut at 16');
  assert.is(sha512Crypt('', 'salt'), glibcCrypt('', '$6$salt'), 'empty password');
  // The spec clamps rounds below 1000 up to 1000 (libxcrypt refuses such settings instead, so no oracle here).
  assert.is(sha512Crypt('x', 'low', { rounds: 10 }), sha512Crypt('x', 'low', { rounds: 1000 }));
  const h = sha512Crypt('secret', 'abc');
  assert.ok(verifySha512Crypt('secret', h));
  assert.not.ok(verifySha512Crypt('Secret', h));
});

test('account files round-trip byte for byte (the host files, written by shadow-utils)', () => {
  for (const k of ['passwd', 'group', 'shadow', 'gshadow'] as const) {
    const text = readFileSync(`/etc/${k}`, 'utf8');
    assert.is(AccountFile.parse(k, text).toString(), text, k);
  }
  assert.throws(() => AccountFile.parse('passwd', 'root:x:0:0:root:/root\n', 'p'), (e: Error) => /p:1/.test(e.message));
  assert.throws(() => AccountFile.parse('group', 'wheel:x:ten:\n', 'g'), /id is not a number/);
  const defs = parseLoginDefs(readFileSync('/etc/login.defs', 'utf8'));
  assert.is(defs.uidMin, 1000);
});

/** A Fedora-`setup`-like starting point. */
const SETUP = {
  passwd: 'root:x:0:0:Super User:/root:/bin/bash\nbin:x:1:1:bin:/bin:/sbin/nologin\ndaemon:x:2:2:daemon:/sbin:/sbin/nologin\nadm:x:3:4:adm:/var/adm:/sbin/nologin\nnobody:x:65534:65534:Kernel Overflow User:/:/sbin/nologin\n',
  shadow: 'root:*::0:99999:7:::\nbin:*:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\nadm:*:19000:0:99999:7:::\nnobody:*:19000:0:99999:7:::\n',
  group: 'root:x:0:\nbin:x:1:\ndaemon:x:2:\nsys:x:3:\nadm:x:4:\nwheel:x:10:\nusers:x:100:\nnobody:x:65534:\n',
  gshadow: 'root:::\nbin:::\ndaemon:::\nsys:::\nadm:::\nwheel:::\nusers:::\nnobody:::\n',
  'login.defs': 'UID_MIN 1000\nUID_MAX 60000\nSYS_UID_MIN 201\nSYS_UID_MAX 999\nGID_MIN 1000\nGID_MAX 60000\nSYS_GID_MIN 201\nSYS_GID_MAX 999\n',
};

/** Lay the tree's account files, homes and shells out under `root` for pwck/grpck. */
async function materialize(tree: StagingTree, acc: Accounts, root: string): Promise<void> {
  for (const k of ['passwd', 'shadow', 'group', 'gshadow']) {
    const n = tree.lookup(`/etc/${k}`)!;
    mkdirSync(join(root, 'etc'), { recursive: true });
    writeFileSync(join(root, 'etc', k), await readAll(n.content!));
    chmodSync(join(root, 'etc', k), n.mode);
  }
  for (const f of acc.passwd.entries()) {
    const home = join(root, f[5]!);
    mkdirSync(home, { recursive: true });
    const shell = join(root, f[6]!);
    mkdirSync(dirname(shell), { recursive: true });
    writeFileSync(shell, '#!/bin/true\n', { mode: 0o755 });
  }
  for (const { path, inode } of tree.walk()) {
    if (!path.startsWith('/home/')) continue;
    const p = join(root, path);
    if (inode.type === 'dir') mkdirSync(p, { recursive: true });
    else if (inode.type === 'file') writeFileSync(p, await readAll(inode.content!));
    chmodSync(p, inode.mode);
    chownSync(p, inode.uid, inode.gid);
  }
}

function checkTool(tool: string, root: string): { code: number; out: string } {
  const r = spawnSync(tool, ['-r', '-R', root], { encoding: 'utf8' });
  return { code: r.status ?? -1, out: (r.stdout + r.stderr).trim() };
}

async function buildImageAccounts(): Promise<{ tree: StagingTree; acc: Accounts; created: string[] }> {
  const tree = new StagingTree();
  for (const [k, v] of Object.entries(SETUP)) tree.addFile(`/etc/${k}`, BufferContent.of(v), { mode: k.includes('shadow') ? 0 : 0o644 });
  tree.addFile('/etc/skel/.bashrc', BufferContent.of('# .bashrc\n'), { mode: 0o644 });
  // Real sysusers.d files (Debian's systemd) as a package would install them.
  for (const f of readdirSync('/usr/lib/sysusers.d')) tree.addFile(`/usr/lib/sysusers.d/${f}`, BufferContent.of(readFileSync(`/usr/lib/sysusers.d/${f}`)));
  tree.addFile('/etc/sysusers.d/local.conf', BufferContent.of('g builders -\nu builder - "Build user" /var/lib/builder\nm builder wheel\n'));
  const acc = await Accounts.load(tree, { epochDays: 19700 });
  const created = applySysusers(acc, await readSysusersDir(tree));
  // Real %pre scriptlets of fixture packages.
  for (const p of ['dotnet-packaging/tomcat-8.0.44-1.fc27.noarch.rpm', 'rpmlint/ngircd-22-2.fc22.x86_64.rpm', 'rpm-rs/test_assets/monkeysphere-0.37-1.el7.noarch.rpm']) {
    const pre = execFileSync('rpm', ['-qp', '--nosignature', '--qf', '%{PREIN}', join(SHARED, 'fixtures/rpms', p)], { encoding: 'utf8' });
    const parsed = accountCommandsFromScriptlet(pre);
    assert.ok(parsed.commands.length > 0, `account commands in ${p}`);
    applyAccountCommands(acc, parsed.commands);
  }
  setRootPassword(acc, { plain: 'hunter2' }, { seed: 'test-seed' });
  await createLoginUser(tree, acc, { name: 'alice', groups: ['wheel'], gecos: 'Alice', passwordSpec: { plain: 'wonderland', lock: true }, sshKeys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample alice@example'] }, { seed: 'test-seed' });
  acc.save(tree);
  return { tree, acc, created };
}

test('sysusers.d, package scriptlets, root password and a login user give files pwck and grpck accept', async () => {
  const { tree, acc, created } = await buildImageAccounts();
  assert.ok(created.includes('user messagebus') && created.includes('user systemd-network'), created.join(','));
  // Existing entries kept in place and order.
  const passwd = (await readAll(tree.lookup('/etc/passwd')!.content!)).toString();
  assert.ok(passwd.startsWith(SETUP.passwd), 'setup entries first, unchanged');
  // Ids from the packages' scriptlets / sysusers lines, auto ids from the top of the system range.
  assert.is(acc.uid('tomcat'), 91);
  assert.is(acc.gid('tomcat'), 91);
  assert.is(acc.uid('sync'), 4);
  assert.is(acc.passwd.get('sync')![3], '65534', 'uid:gid uses the existing group');
  const auto = ['messagebus', 'polkitd', 'systemd-network', 'systemd-timesync', 'builder', 'ngircd'].map((n) => acc.uid(n)!);
  for (const id of auto) assert.ok(id >= 201 && id <= 999, `system id ${id}`);
  assert.is(new Set(auto).size, auto.length);
  assert.is(acc.uid('alice'), 1000);
  assert.equal(acc.resolveOwner('tomcat', 'tomcat'), { uid: 91, gid: 91 });
  assert.throws(() => acc.resolveOwner('nosuchuser', 'root', 'pkg-1.0'), /unknown user/);
  assert.ok(acc.group.get('wheel')![3]!.split(',').includes('alice') && acc.group.get('wheel')![3]!.split(',').includes('builder'));
  // Root's hash is what glibc computes for the password and salt; alice is locked.
  const rootHash = acc.shadowPassword('root')!;
  assert.is(glibcCrypt('hunter2', rootHash), rootHash);
  assert.match(acc.shadowPassword('alice')!, /^!\$6\$/);
  // Home from /etc/skel, .ssh modes and owners.
  const home = tree.lookup('/home/alice')!;
  assert.is(home.mode, 0o700); assert.is(home.uid, 1000);
  assert.is(tree.lookup('/home/alice/.bashrc')!.uid, 1000);
  const keys = tree.lookup('/home/alice/.ssh/authorized_keys')!;
  assert.is(keys.mode, 0o600); assert.is(keys.uid, 1000); assert.is(tree.lookup('/home/alice/.ssh')!.mode, 0o700);
  assert.is(tree.lookup('/etc/shadow')!.mode, 0);

  const root = join(work, 'root');
  await materialize(tree, acc, root);
  const pw = checkTool('pwck', root);
  assert.is(pw.out, '', pw.out);
  assert.is(pw.code, 0);
  const gr = checkTool('grpck', root);
  assert.is(gr.out, '', gr.out);
  assert.is(gr.code, 0);
  // The oracle can fail: a user whose primary group is missing is reported.
  writeFileSync(join(root, 'etc/passwd'), `${readFileSync(join(root, 'etc/passwd'), 'utf8')}ghost:x:4242:4242::/:/sbin/nologin\n`);
  assert.is.not(checkTool('pwck', root).code, 0);
});

test('same inputs give byte-identical account files', async () => {
  const a = await buildImageAccounts();
  const b = await buildImageAccounts();
  for (const k of ['passwd', 'shadow', 'group', 'gshadow']) {
    assert.ok((await readAll(a.tree.lookup(`/etc/${k}`)!.content!)).equals(await readAll(b.tree.lookup(`/etc/${k}`)!.content!)), k);
  }
});

test('scriptlet parsing: common forms, long options, continuation lines; other commands reported', () => {
  const s = accountCommandsFromScriptlet(`
getent group kvm >/dev/null || groupadd -f -g 36 -r kvm
getent passwd qemu >/dev/null || \\
  useradd -r -u 107 -g qemu -G kvm -d / -s /sbin/nologin \\
    -c "qemu user" qemu
/usr/sbin/useradd --system --no-create-home --shell=/usr/sbin/nologin --home-dir /run/x --comment 'X Y' xy 2>&1 || :
usermod -a -G kvm qemu
/usr/bin/systemctl daemon-reload >/dev/null 2>&1 || :
exit 0
`);
  assert.equal(s.commands[0], { kind: 'groupadd', name: 'kvm', system: true, gid: 36 });
  assert.equal(s.commands[1], { kind: 'useradd', name: 'qemu', system: true, uid: 107, group: 'qemu', groups: ['kvm'], home: '/', shell: '/sbin/nologin', gecos: 'qemu user', createHome: false, userGroup: false });
  assert.equal(s.commands[2], { kind: 'useradd', name: 'xy', system: true, uid: undefined, group: undefined, groups: [], home: '/run/x', shell: '/usr/sbin/nologin', gecos: 'X Y', createHome: false, userGroup: true });
  assert.equal(s.commands[3], { kind: 'usermod', name: 'qemu', appendGroups: ['kvm'] });
  assert.equal(s.other, ['/usr/bin/systemctl daemon-reload']);
  assert.is(accountCommandsFromScriptlet('useradd -r "$USER"').commands.length, 0, 'unexpanded variables are not guessed');
});

test('sysusers parsing errors name file and line', () => {
  assert.throws(() => parseSysusers('u ok - "x"\nq bad\n', '/usr/lib/sysusers.d/x.conf'), /x\.conf:2/);
  assert.throws(() => parseSysusers('u "unterminated\n', 'f.conf'), /f\.conf:1/);
  const r = parseSysusers('r - 500-900\nu! locked -\n', 'r.conf');
  assert.equal(r.map((l) => l.type), ['r', 'u']);
});

test.after(() => rmSync(work, { recursive: true, force: true }));
test.run();
