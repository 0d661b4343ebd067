import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StagingTree, BufferContent } from '../src/tree/tree.js';
import { FileContexts, labelTree, literalPrefix, type FileKind } from '../src/install/selinux.js';
import { requireTool, aptInstall } from './helpers/tools.js';

const POLICY_DIR = '/etc/selinux/default/contexts/files';

/** Debian's selinux-policy-default ships a real file_contexts (refpolicy, ~5300 specs + homedirs + subs_dist). */
function policy(): { dir: string; fc: FileContexts } {
  requireTool('matchpathcon');
  if (!existsSync(`${POLICY_DIR}/file_contexts`)) aptInstall(['selinux-policy-default']);
  assert.ok(existsSync(`${POLICY_DIR}/file_contexts`), 'selinux-policy-default provides file_contexts');
  // Text files only: matchpathcon would otherwise prefer the compiled .bin.
  const dir = mkdtempSync(join(tmpdir(), 'fc-'));
  const read = (s: string): string | undefined => (existsSync(`${POLICY_DIR}/file_contexts${s}`) ? readFileSync(`${POLICY_DIR}/file_contexts${s}`, 'utf8') : undefined);
  const src = { fileContexts: read('')!, homedirs: read('.homedirs'), subsDist: read('.subs_dist'), path: join(dir, 'file_contexts') };
  writeFileSync(join(dir, 'file_contexts'), src.fileContexts);
  if (src.homedirs) writeFileSync(join(dir, 'file_contexts.homedirs'), src.homedirs);
  if (src.subsDist) writeFileSync(join(dir, 'file_contexts.subs_dist'), src.subsDist);
  return { dir, fc: new FileContexts(src as ConstructorParameters<typeof FileContexts>[0]) };
}

const MODE_ARG: Record<FileKind, string> = { file: 'file', dir: 'dir', lnk_file: 'lnk_file', chr_file: 'chr_file', blk_file: 'blk_file', fifo_file: 'pipe', sock_file: 'sock_file' };

/** matchpathcon -f FC -m KIND path… → context per path ("<<none>>" kept). */
function oracle(dir: string, kind: FileKind | undefined, paths: string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (let i = 0; i < paths.length; i += 2000) {
    const batch = paths.slice(i, i + 2000);
    const args = ['-f', join(dir, 'file_contexts'), ...(kind ? ['-m', MODE_ARG[kind]] : []), ...batch];
    const r = spawnSync('matchpathcon', args, { encoding: 'utf8', maxBuffer: 1 << 28 });
    for (const line of r.stdout.split('\n')) {
      const tab = line.lastIndexOf('\t');
      if (tab > 0) out.set(line.slice(0, tab), line.slice(tab + 1));
    }
  }
  return out;
}

/** Sample paths a regex spec matches, by replacing common constructs with concrete text. */
function samples(regex: string): string[] {
  const fill = (s: string, star: string): string => s
    .replace(/\(\/\.\*\)\?/g, `/${star}/sub`).replace(/\(\.\*\)\?/g, star).replace(/\[\^\/\]\+/g, 'q1').replace(/\[\^\/\]\*/g, 'q2')
    .replace(/\.\*/g, star).replace(/\.\+/g, 'zz').replace(/\[0-9\]\+/g, '42').replace(/\[0-9\]\*/g, '7').replace(/\[0-9\]/g, '3')
    .replace(/\(([^()|]*)\|[^()]*\)\??/g, '$1').replace(/\(([^()]*)\)\?/g, '$1').replace(/\\\./g, '.').replace(/\?/g, '');
  return [fill(regex, 'a'), fill(regex, 'lib/x.so'), regex.replace(/\(\/\.\*\)\?$/, '')].filter((p) => p.startsWith('/') && !/[\s\\[\](){}^$*+|]/.test(p));
}

test('lookups agree with matchpathcon (libselinux 3.4) on host paths, every literal spec and samples of every regex spec', () => {
  const { dir, fc } = policy();
  const specs = readFileSync(join(dir, 'file_contexts'), 'utf8').split('\n').filter((l) => l.trim() && !l.startsWith('#')).map((l) => l.trim().split(/\s+/)[0]!);
  // Default run: every literal spec, samples of every regex spec and a 1-in-40 sample of host paths with
  // the two common kinds, and a 1000-path subset with the other kinds (matchpathcon needs ~1 ms a path).
  // INGOT_LONG=1: every host path under /usr /etc /var /opt /root /boot (depth 5) with all kinds.
  const long = process.env.INGOT_LONG === '1';
  const host = execFileSync('find', ['/usr', '/etc', '/var', '/opt', '/root', '/boot', '-xdev', '-maxdepth', '5'], { maxBuffer: 1 << 28 }).toString().split('\n');
  const candidates = new Set<string>();
  host.forEach((p, i) => { if (p && !/\s/.test(p) && (long || i % 40 === 0)) candidates.add(p); });
  for (const s of specs) for (const p of samples(s)) candidates.add(p);
  for (const p of ['/', '/bin/bash', '/lib/systemd/systemd', '/var/run/x', '/etc/systemd/system/a.service', '/home/alice/.ssh/authorized_keys', '/root/.ssh', '//usr//bin/', '/lib64/ld-linux-x86-64.so.2']) candidates.add(p);
  const paths = [...candidates];
  const subset = paths.filter((_, i) => long || i % Math.ceil(paths.length / 1000) === 0);
  let compared = 0;
  const mismatches: string[] = [];
  const runs: [FileKind | undefined, string[]][] = [
    ['file', paths], ['dir', paths], ['lnk_file', subset], ['chr_file', subset], ['sock_file', subset],
    // Without -m matchpathcon lstat()s paths that exist on the host, so only absent paths are compared kind-less.
    [undefined, subset.filter((p) => !existsSync(p))],
  ];
  for (const [kind, list] of runs) {
    const theirs = oracle(dir, kind, list);
    for (const p of list) {
      const t = theirs.get(p);
      if (t === undefined) continue; // matchpathcon printed an error (no match at all)
      const ours = fc.lookup(p, kind);
      compared++;
      if ((ours === null ? '<<none>>' : ours) !== t) mismatches.push(`${kind ?? 'any'} ${p}: ours ${ours} theirs ${t}`);
    }
  }
  console.log(`selinux: ${fc.specCount} specs, ${paths.length} paths, ${compared} lookups compared with matchpathcon, ${mismatches.length} differ`);
  assert.equal(mismatches.slice(0, 20), []);
  assert.ok(compared > 10000);
});

test('labelTree sets NUL-terminated security.selinux like matchpathcon, skips <<none>>; no policy → /.autorelabel', async () => {
  const { dir } = policy();
  const t = new StagingTree();
  t.mkdirp(POLICY_DIR);
  for (const s of ['', '.homedirs', '.subs_dist']) t.addFile(`${POLICY_DIR}/file_contexts${s}`, BufferContent.of(readFileSync(join(dir, `file_contexts${s}`))));
  t.addFile('/etc/selinux/config', BufferContent.of('SELINUX=enforcing\nSELINUXTYPE=default\n'));
  t.addFile('/usr/bin/bash', BufferContent.of('x'), { mode: 0o755 });
  t.symlink('/bin', 'usr/bin');
  t.addFile('/etc/shadow', BufferContent.of(''), { mode: 0 });
  t.mknod('/dev/null', 'chardev', { major: 1, minor: 3 });
  t.mkdirp('/run/lock');
  t.mkdirp('/run/xyz');
  t.mkdirp('/home/alice/.ssh');
  const r = await labelTree(t);
  assert.is(r.policy, 'default');
  assert.is(r.autorelabel, false);
  const kinds: [string, FileKind][] = [['/usr/bin/bash', 'file'], ['/bin', 'lnk_file'], ['/etc/shadow', 'file'], ['/dev/null', 'chr_file'], ['/home/alice/.ssh', 'dir'], ['/', 'dir']];
  for (const [p, k] of kinds) {
    const want = oracle(dir, k, [p]).get(p)!;
    const got = t.lookup(p, { follow: false })!.xattrs.get('security.selinux');
    assert.ok(got, p);
    assert.is(Buffer.from(got!).toString('utf8'), `${want}\0`, p);
  }
  assert.is(oracle(dir, 'dir', ['/run/xyz']).get('/run/xyz'), '<<none>>');
  assert.not.ok(t.lookup('/run/xyz')!.xattrs.has('security.selinux'), '/run/.* is <<none>>');
  assert.is(Buffer.from(t.lookup('/run/lock')!.xattrs.get('security.selinux')!).toString(), `${oracle(dir, 'dir', ['/run/lock']).get('/run/lock')}\0`, 'subs_dist: /run/lock is labelled as /var/lock');
  assert.ok(r.none >= 1);
  const bare = new StagingTree();
  bare.addFile('/usr/bin/true', BufferContent.of(''));
  const b = await labelTree(bare);
  assert.ok(b.autorelabel);
  assert.ok(bare.lookup('/.autorelabel'));
  assert.not.ok(bare.lookup('/usr/bin/true')!.xattrs.has('security.selinux'));
});

test('ordering rules, .local, .subs and kinds on a synthetic policy: same as matchpathcon', () => {
  requireTool('matchpathcon');
  const dir = mkdtempSync(join(tmpdir(), 'fcs-'));
  const fcText = [
    '/.*\t\tsystem_u:object_r:default_t:s0',
    '/srv(/.*)?\t\tsystem_u:object_r:var_t:s0',
    '/srv/www(/.*)?\t\tsystem_u:object_r:httpd_sys_content_t:s0',
    '/srv/www/cgi-bin(/.*)?\t--\tsystem_u:object_r:httpd_sys_script_exec_t:s0',
    '/srv/www/exact\t-d\tsystem_u:object_r:etc_t:s0',
    '/srv/www/exact\t\tsystem_u:object_r:bin_t:s0',
    '/srv/www/[^/]*\\.log\t--\tsystem_u:object_r:var_log_t:s0',
    '/srv/www/x\\.log\t--\tsystem_u:object_r:lib_t:s0',
    '/srv/www/cgi-bin/.*\\.sh\t\tsystem_u:object_r:shell_exec_t:s0',
    '/srv/sock/.*\t-s\tsystem_u:object_r:var_run_t:s0',
    '/srv/sock/.*\t-p\tsystem_u:object_r:etc_t:s0',
    '/srv/sock/.*\t-l\tsystem_u:object_r:bin_t:s0',
    '/srv/sock/.*\t-c\tsystem_u:object_r:device_t:s0',
    '/srv/sock/.*\t-b\tsystem_u:object_r:fixed_disk_device_t:s0',
    '/srv/none(/.*)?\t\t<<none>>',
    '/opt/(.*/)?bin(/.*)?\t\tsystem_u:object_r:bin_t:s0',
    '/opt/a|/opt/b\t\tsystem_u:object_r:etc_t:s0',
    '/opt/d[0-9]+\t-d\tsystem_u:object_r:usr_t:s0',
    '/opt/lit\\.conf\t\tsystem_u:object_r:etc_t:s0',
    '/opt/lit\\.conf\t--\tsystem_u:object_r:lib_t:s0',
  ].join('\n') + '\n';
  const local = '/srv/www/cgi-bin(/.*)?\t\tsystem_u:object_r:usr_t:s0\n/opt/lit\\.conf\t--\tsystem_u:object_r:var_t:s0\n';
  const subs = '/web /srv/www\n/alias/deep /srv/sock\n';
  const subsDist = '/var/www /srv/www\n/web /opt\n';
  writeFileSync(join(dir, 'file_contexts'), fcText);
  writeFileSync(join(dir, 'file_contexts.local'), local);
  writeFileSync(join(dir, 'file_contexts.subs'), subs);
  writeFileSync(join(dir, 'file_contexts.subs_dist'), subsDist);
  const fc = new FileContexts({ fileContexts: fcText, local, subs, subsDist });
  const paths = [
    '/srv', '/srv/x', '/srv/www', '/srv/www/index.html', '/srv/www/cgi-bin', '/srv/www/cgi-bin/run', '/srv/www/cgi-bin/run.sh', '/srv/www/exact',
    '/srv/www/a.log', '/srv/www/x.log', '/srv/www/sub/a.log', '/srv/sock/s', '/srv/sock/deep/x', '/srv/none', '/srv/none/x', '/opt/bin', '/opt/q/r/bin/tool',
    '/opt/a', '/opt/b', '/opt/ab', '/opt/d12', '/opt/d', '/opt/lit.conf', '/opt/litxconf', '/web', '/web/x.log', '/web/cgi-bin/a.sh', '/var/www/exact',
    '/alias/deep/s', '/alias/deeper/s', '/etc/passwd', '//srv//www/', '/srv/www/exact/',
  ];
  let n = 0;
  for (const kind of ['file', 'dir', 'lnk_file', 'chr_file', 'blk_file', 'fifo_file', 'sock_file'] as FileKind[]) {
    const theirs = oracle(dir, kind, paths);
    for (const p of paths) {
      const t = theirs.get(p);
      if (t === undefined) continue;
      const ours = fc.lookup(p, kind);
      assert.is(ours === null ? '<<none>>' : ours, t, `${kind} ${p}`);
      n++;
    }
  }
  assert.ok(n >= 200, `${n} lookups compared`);
});

test('literal prefixes: escapes, quantifiers, alternation', () => {
  assert.equal(literalPrefix('/usr/lib/libfoo\\.so'), { prefix: '/usr/lib/libfoo.so', literal: true });
  assert.equal(literalPrefix('/usr/lib(64)?/x'), { prefix: '/usr/lib', literal: false });
  assert.equal(literalPrefix('/dev/ttyS?'), { prefix: '/dev/tty', literal: false });
  assert.equal(literalPrefix('/a|/b'), { prefix: '', literal: false });
  assert.equal(literalPrefix('/x\\d'), { prefix: '/x', literal: false });
});

test('bad file_contexts lines are typed errors with file and line', () => {
  assert.throws(() => new FileContexts({ fileContexts: '/ok system_u:object_r:x:s0\n/bad -z ctx\n', path: 'fc' }), /fc:2: unknown file type -z/);
  assert.throws(() => new FileContexts({ fileContexts: '/a(b ctx\n', path: 'fc' }), /fc:1: invalid regex/);
});

test.run();
