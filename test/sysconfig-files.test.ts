import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync, symlinkSync, linkSync, chmodSync, readdirSync, lstatSync, readlinkSync, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StagingTree, BufferContent } from '../src/tree/tree.js';
import { applyExtraFiles, unpackTar } from '../src/install/extrafiles.js';
import { readInodeBytes, readTreeText } from '../src/install/treetext.js';
import { PathEscapeError } from '../src/errors.js';
import { requireTool } from './helpers/tools.js';

async function rejects(f: () => Promise<unknown>, check: RegExp | ((e: unknown) => boolean)): Promise<void> {
  try { await f(); } catch (e) {
    assert.ok(check instanceof RegExp ? check.test((e as Error).message) : check(e), (e as Error).message);
    return;
  }
  assert.unreachable('expected a rejection');
}

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex').slice(0, 16);

/** A source directory with every member kind tar carries. */
function sourceDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'ovsrc-'));
  const deep = join(d, 'etc', 'a'.repeat(60), 'b'.repeat(60));
  mkdirSync(deep, { recursive: true });
  writeFileSync(join(deep, `${'c'.repeat(90)}.conf`), 'long name\n');
  writeFileSync(join(d, 'etc/motd'), 'hello\n');
  chmodSync(join(d, 'etc/motd'), 0o640);
  mkdirSync(join(d, 'usr/local/bin'), { recursive: true });
  writeFileSync(join(d, 'usr/local/bin/tool'), Buffer.alloc(70000, 7));
  chmodSync(join(d, 'usr/local/bin/tool'), 0o4755);
  symlinkSync('../../etc/motd', join(d, 'usr/local/motd-link'));
  linkSync(join(d, 'etc/motd'), join(d, 'etc/motd.hard'));
  mkdirSync(join(d, 'srv/empty'), { recursive: true });
  chmodSync(join(d, 'srv/empty'), 0o1777);
  writeFileSync(join(d, 'srv/ünïcode ñame.txt'), 'utf8\n');
  return d;
}

function diskListing(root: string): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    for (const n of readdirSync(join(root, rel)).sort()) {
      const r = `${rel}/${n}`;
      const st = lstatSync(join(root, r));
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isSymbolicLink()) out.push(`${r} l ${readlinkSync(join(root, r))}`);
      else if (st.isDirectory()) { out.push(`${r} d ${mode}`); walk(r); }
      else out.push(`${r} f ${mode} ${sha(readFileSync(join(root, r)))}`);
    }
  };
  walk('');
  return out.sort();
}

async function treeListing(tree: StagingTree, base: string): Promise<string[]> {
  const node = tree.lookup(base)!;
  const out: string[] = [];
  for (const { path, inode } of tree.walk(node, '')) {
    if (inode.type === 'symlink') out.push(`${path} l ${inode.target}`);
    else if (inode.type === 'dir') out.push(`${path} d ${inode.mode.toString(8)}`);
    else out.push(`${path} f ${inode.mode.toString(8)} ${sha(await readInodeBytes(inode, path))}`);
  }
  return out.sort();
}

test('tar overlays (gnu, pax, gzip): same files, modes, links and contents as GNU tar -x', async () => {
  requireTool('tar');
  const src = sourceDir();
  for (const [fmt, gz] of [['gnu', false], ['pax', false], ['ustar', true]] as const) {
    const work = mkdtempSync(join(tmpdir(), 'ov-'));
    const archive = join(work, `o.tar${gz ? '.gz' : ''}`);
    // ustar cannot hold the 200+ byte path: leave that file out for it.
    const args = ['-C', src, `--format=${fmt}`, ...(gz ? ['-z'] : []), '-cf', archive, ...(fmt === 'ustar' ? ['--exclude=etc/aaaa*'] : []), '.'];
    const r = spawnSync('tar', args, { encoding: 'utf8' });
    assert.is(r.status, 0, r.stderr);
    const out = join(work, 'x');
    mkdirSync(out);
    execFileSync('tar', ['-C', out, '-xpf', archive]);
    const tree = new StagingTree();
    await applyExtraFiles(tree, [{ kind: 'overlay', path: '/overlay', archive, format: 'tar' }], work);
    assert.equal(await treeListing(tree, '/overlay'), diskListing(out), fmt);
    assert.is(tree.lookup('/overlay/etc/motd.hard'), tree.lookup('/overlay/etc/motd'), 'hard link shares the inode');
  }
});

test('zip overlays: same as unzip', async () => {
  requireTool('unzip');
  requireTool('zip');
  const src = sourceDir();
  const work = mkdtempSync(join(tmpdir(), 'ovz-'));
  const archive = join(work, 'o.zip');
  execFileSync('zip', ['-qry', archive, '.'], { cwd: src });
  const out = join(work, 'x');
  mkdirSync(out);
  execFileSync('unzip', ['-qK', archive, '-d', out]);
  const tree = new StagingTree();
  await applyExtraFiles(tree, [{ kind: 'overlay', path: '/', archive: 'o.zip', format: 'zip' }], work);
  const ours = (await treeListing(tree, '/')).filter((l) => !/ d /.test(l));
  assert.equal(ours, diskListing(out).filter((l) => !/ d /.test(l)));
});

test('inline and host files; owners resolved through the image passwd; escapes refused', async () => {
  const tree = new StagingTree();
  tree.addFile('/etc/passwd', BufferContent.of('root:x:0:0::/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/bash\n'));
  tree.addFile('/etc/group', BufferContent.of('root:x:0:\nwheel:x:10:alice\n'));
  const dir = mkdtempSync(join(tmpdir(), 'host-'));
  writeFileSync(join(dir, 'id_rsa.pub'), 'ssh-rsa AAAA\n');
  await applyExtraFiles(tree, [
    { kind: 'inline', path: '/etc/motd', content: 'aGk=', encoding: 'base64', mode: 0o600, owner: 'alice', group: 'wheel' },
    { kind: 'host', path: '/home/alice/.ssh/authorized_keys', source: 'id_rsa.pub', mode: 0o600, owner: '1000' },
  ], dir);
  const motd = tree.lookup('/etc/motd')!;
  assert.equal([motd.mode, motd.uid, motd.gid], [0o600, 1000, 10]);
  assert.is(await readTreeText(tree, '/etc/motd'), 'hi');
  assert.is(await readTreeText(tree, '/home/alice/.ssh/authorized_keys'), 'ssh-rsa AAAA\n');
  await rejects(() => applyExtraFiles(tree, [{ kind: 'inline', path: '/x', content: '', encoding: 'utf8', owner: 'bob' }], dir), /owner bob is not in the image's \/etc\/passwd/);
  await rejects(() => applyExtraFiles(tree, [{ kind: 'host', path: '/x', source: 'nope' }], dir), /source file not found/);
  // A tar member "../../etc/shadow" must not land outside the overlay root.
  const evil = join(dir, 'evil.tar');
  const py = `import tarfile,io\nt=tarfile.open('${evil}','w')\ni=tarfile.TarInfo('../../etc/shadow');d=b'x';i.size=1\nt.addfile(i,io.BytesIO(d));t.close()`;
  execFileSync('/usr/bin/python3', ['-c', py]);
  await rejects(() => unpackTar(new StagingTree(), evil, '/srv'), (e: unknown) => e instanceof PathEscapeError);
});

test.run();
