// Oracle: the same request installed by Debian's dnf into a directory
// (`--installroot`, `tsflags=noscripts`) against the image ingot builds, read
// back with debugfs: same paths, types, permission bits, owners, sizes,
// contents and link targets. What differs must be what ingot's configuration
// step reports it wrote, or package-manager state.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixtureRepo } from '../fixtures/repo.js';
import { ingot } from './helpers/cli.js';
import { requireTool } from './helpers/tools.js';

const PACKAGES = ['ingot-base', 'ingot-marker', 'busybox-static', 'kernel'];
/** Package-manager state, not package content. */
const STATE = /^\/(var\/lib\/(dnf|rpm)|var\/cache|var\/log|etc\/dnf|usr\/lib\/sysimage|root\/\.rpmdb|lost\+found)(\/|$)/;
const dir = mkdtempSync(join(tmpdir(), 'ingot-dnf-'));

function walk(root: string, rel = ''): Map<string, string> {
  const out = new Map<string, string>();
  for (const name of readdirSync(join(root, rel))) {
    const p = `${rel}/${name}`;
    if (STATE.test(p)) continue;
    const st = lstatSync(join(root, p));
    // debugfs rdump drops setuid/setgid/sticky: permission bits are compared.
    const meta = `${(st.mode & 0o777).toString(8)} ${st.uid}:${st.gid}`;
    if (st.isDirectory()) { out.set(p, `dir ${meta}`); for (const [k, v] of walk(root, p)) out.set(k, v); }
    else if (st.isSymbolicLink()) out.set(p, `link -> ${readlinkSync(join(root, p))}`);
    else if (st.isFile()) out.set(p, `file ${meta} ${st.size} ${createHash('sha256').update(readFileSync(join(root, p))).digest('hex')}`);
    else out.set(p, `special ${meta}`);
  }
  return out;
}

function compare(excludeDocs: boolean): void {
  requireTool('debugfs');
  requireTool('sfdisk');
  const dnf = '/usr/bin/dnf';
  if (spawnSync('sh', ['-c', `test -x ${dnf}`]).status !== 0) requireTool('dnf');
  const tag = excludeDocs ? 'nodocs' : 'docs';
  const root = join(dir, `dnfroot-${tag}`);
  const r = spawnSync(dnf, ['--setopt=reposdir=/dev/null', `--repofrompath=f,${fixtureRepo()}`, '--repo=f', `--installroot=${root}`,
    '--releasever=1', '--forcearch=x86_64', '--nogpgcheck', `--setopt=tsflags=noscripts${excludeDocs ? ',nodocs' : ''}`, '--setopt=install_weak_deps=False',
    '-q', '-y', 'install', ...PACKAGES], { encoding: 'utf8', env: { ...process.env, PATH: `/usr/bin:${process.env.PATH}` } });
  assert.is(r.status, 0, r.stderr);

  const spec = join(dir, `spec-${tag}.json`);
  writeFileSync(spec, JSON.stringify({
    name: 'img', repositories: [{ name: 'f', baseurl: [fixtureRepo()] }],
    packages: { include: PACKAGES, core: false, weakDeps: false, excludeDocs },
    disk: { table: 'gpt', partitions: [{ mount: '/', size: '64MiB', fs: 'ext4', grow: true }] },
    bootloader: { kind: 'none', firmware: 'bios' }, selinux: 'disabled', outputs: [{ format: 'raw' }],
  }));
  const out = join(dir, `out-${tag}`);
  const b = ingot(['build', spec, '-o', out, '-q']);
  assert.is(b.code, 0, b.stderr);
  const raw = join(out, 'img.raw');
  const part = (JSON.parse(execFileSync('sfdisk', ['--json', raw], { encoding: 'utf8' })) as { partitiontable: { partitions: { start: number; size: number }[] } }).partitiontable.partitions[0]!;
  const fs = join(dir, `root-${tag}.ext4`);
  execFileSync('dd', [`if=${raw}`, `of=${fs}`, 'bs=512', `skip=${part.start}`, `count=${part.size}`, 'status=none', 'conv=sparse']);
  const mine = join(dir, `ingot-${tag}`);
  mkdirSync(mine);
  execFileSync('debugfs', ['-R', `rdump / ${mine}`, fs], { stdio: 'ignore' });

  const report = JSON.parse(readFileSync(join(out, 'img.report.json'), 'utf8')) as { configured: string[] };
  const configured = new Set(report.configured);
  const want = walk(root);
  const got = walk(mine);
  let compared = 0;
  for (const [p, v] of want) {
    if (configured.has(p)) continue;
    assert.is(got.get(p), v, p);
    compared++;
  }
  const extra = [...got.keys()].filter((p) => !want.has(p) && !configured.has(p));
  assert.equal(extra, [], 'paths only ingot wrote, not reported as configured');
  assert.ok(compared > 1000, `compared ${compared} paths`);
}

test('ingot installs what dnf --installroot installs, file for file', () => compare(false));
test('--excludedocs drops what dnf tsflags=nodocs drops', () => compare(true));

test.after(() => rmSync(dir, { recursive: true, force: true }));
test.run();
