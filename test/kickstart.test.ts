import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { loadKickstart, parseKickstart, kickstartIncludes } from '../src/spec/kickstart.js';
import { loadSpec } from '../src/spec/index.js';
import { SpecError } from '../src/spec/model.js';
import { SHARED } from './helpers/cli.js';

// From a worktree (/work/wt/<area>) `../shared` does not exist; the shared data lives at /work/shared.
const KS: string = join(existsSync(SHARED) ? SHARED : '/work/shared', 'fixtures/kickstarts');
const all = execFileSync('find', [KS, '-name', '*.ks']).toString().trim().split('\n').sort();

test('every real kickstart parses (fragments as the section that includes them)', () => {
  // Fragments: files that some fixture includes inside %packages/%post.
  const fragments = new Map<string, 'packages' | 'post' | 'pre'>();
  for (const f of all) {
    for (const inc of kickstartIncludes(f)) if (inc.section && inc.resolved) fragments.set(inc.target, inc.section as 'packages' | 'post');
  }
  let strict = 0, asFragment = 0, lenientOnly = 0;
  const failures: string[] = [];
  for (const f of all) {
    const frag = fragments.get(resolve(f));
    try {
      if (frag) { loadKickstart(f, { fragment: frag }); asFragment++; continue; }
      loadKickstart(f);
      strict++;
    } catch (e) {
      // A file that pulls a fragment in at command level is broken for pykickstart too;
      // the strict error must point into that fragment, and lenient mode must read it.
      const ctx = (e as SpecError).context;
      if (ctx?.file && fragments.has(ctx.file)) {
        try { loadKickstart(f, { lenient: true }); lenientOnly++; continue; } catch (e2) { failures.push(`${f}: ${(e2 as Error).message}`); continue; }
      }
      failures.push(`${f}: ${(e as Error).message}`);
    }
  }
  console.log(`kickstarts: ${all.length} files, ${strict} strict, ${asFragment} fragments, ${lenientOnly} lenient-only`);
  assert.equal(failures, []);
  assert.is(all.length, 88);
  assert.is(strict + asFragment + lenientOnly, all.length);
  assert.ok(lenientOnly <= 1, 'only aos-rawhide.ks includes fragments at command level');
});

test('f43 cloud base: values as written in the file and its includes', () => {
  const s = loadKickstart(join(KS, 'f43/fedora-cloud-base.ks'));
  assert.is(s.locale, 'en_US.UTF-8');
  assert.equal(s.timezone, { name: 'Etc/UTC', utc: true, ntp: true, ntpServers: [] });
  assert.is(s.selinux, 'enforcing');
  assert.equal(s.root.lock, true);
  assert.equal(s.root.password, { hashed: 'locked' });
  assert.is(s.bootloader.timeout, 1);
  assert.equal(s.bootloader.kernelArgs, ['no_timer_check', 'console=tty1', 'console=ttyS0,115200n8']);
  assert.is(s.bootloader.firmware, 'hybrid');
  assert.is(s.disk.table, 'gpt');
  assert.equal(s.disk.partitions.map((p) => [p.mount ?? p.fs, p.size / 2 ** 20]), [['prepboot', 4], ['biosboot', 1], ['/boot/efi', 100], ['/boot', 1000], ['/', 2000]]);
  assert.ok(s.disk.partitions.find((p) => p.mount === '/')!.grow);
  assert.is(s.disk.partitions.find((p) => p.mount === '/')!.label, 'fedora');
  assert.is(s.packages.environment, 'cloud-server-environment');
  assert.equal(s.packages.instLangs, ['en']);
  assert.ok(s.packages.exclude.includes('kernel') && s.packages.exclude.includes('dracut-config-rescue'));
  assert.ok(s.packages.include.includes('kernel-core'));
  assert.ok(s.services.enable.includes('cloud-init'));
  assert.equal(s.firewall, { enabled: false, services: [], ports: [], trust: [] });
  // fedora-repo.ks → fedora-repo-not-rawhide.ks: two repos plus the `url` install source
  assert.equal(s.repositories.map((r) => r.name), ['fedora', 'updates', 'anaconda']);
  assert.is(s.repositories.find((r) => r.name === 'updates')!.mirrorlist, 'https://mirrors.fedoraproject.org/mirrorlist?repo=updates-released-f$releasever&arch=$basearch');
  assert.ok(s.repositories.find((r) => r.name === 'anaconda')!.installSource);
  assert.ok(s.scripts.some((x) => x.phase === 'post' && x.errorOnFail));
  assert.ok(s.ignored.some((i) => i.directive === 'reboot'));
});

test('old-style sections without %end, --nobase, tab-indented includes inside %packages', () => {
  const s = loadKickstart(join(KS, 'appliance-tools/thincrust-2008/aos-f9.ks'));
  assert.ok(s.packages.groups.some((g) => g.name === 'core'), '@core from base-pkgs.ks inside %packages');
  assert.ok(s.packages.excludeDocs);
  // aos-f9 comments out '#%include base-post.ks' inside %post: not followed.
  assert.ok(!s.scripts.some((x) => x.body.includes('localedef')));
  const f8 = loadKickstart(join(KS, 'appliance-tools/thincrust-2008/aos-f8.ks'));
  assert.ok(f8.scripts.some((x) => x.body.includes('localedef --list-archive')), 'base-post.ks included inside %post');
});

test('commented includes are not followed; relative includes chain three deep', () => {
  const inc = kickstartIncludes(join(KS, 'f43/fedora-disk-xfce.ks')).map((i) => i.target.replace(KS + '/', ''));
  assert.ok(inc.includes('f43/fedora-repo-not-rawhide.ks'));
  assert.ok(!inc.includes('f43/fedora-repo-rawhide.ks'));
  const raw = kickstartIncludes(join(KS, 'rawhide/fedora-repo.ks')).map((i) => i.target.replace(KS + '/', ''));
  assert.equal(raw, ['rawhide/fedora-repo-rawhide.ks']);
});

test('space-separated option values as written in real kickstarts', () => {
  const eln = loadKickstart(join(KS, 'f43/fedora-eln-guest.ks'));
  assert.ok(eln.services.disable.includes('kdump') && eln.services.disable.includes('rhsmcertd'), eln.services.disable.join());
  const docker = loadKickstart(join(KS, 'lorax/docs/fedora-docker.ks'));
  assert.equal([docker.packages.core, docker.packages.instLangs], [false, ['en']]);
});

test('absolute installer-time includes are reported, not fatal', () => {
  const s = loadKickstart(join(KS, 'lorax/docs/fedora-minimal.ks'));
  assert.ok(s.ignored.some((i) => i.directive === '%include /tmp/arch-packages.ks'));
  assert.ok(s.scripts.some((x) => x.phase === 'pre' && x.body.includes('/tmp/arch-packages.ks')));
});

test('%post options kept and reported', () => {
  const s = loadKickstart(join(KS, 'f43/fedora-container-base.ks'));
  const nochroot = s.scripts.filter((x) => x.nochroot);
  assert.is(nochroot.length, 1);
  assert.is(nochroot[0]!.log, '/mnt/sysimage/root/anaconda-post-nochroot.log');
  assert.ok(nochroot[0]!.errorOnFail);
  assert.match(nochroot[0]!.file!, /fedora-container-base\.ks$/);
  assert.is(nochroot[0]!.line, 45);
  for (const sc of s.scripts) { assert.ok(sc.file && sc.line! > 0); }
});

function tmpKs(text: string, name = 'x.ks'): string {
  const d = mkdtempSync(join(tmpdir(), 'ks-'));
  const p = join(d, name);
  writeFileSync(p, text);
  return p;
}

test('unknown command → error with file:line and the text; lenient → warning', () => {
  const p = tmpKs('lang en_US.UTF-8\n\nfrobnicate --now\n');
  assert.throws(() => loadKickstart(p), (e: unknown) => e instanceof SpecError && /x\.ks:3: unknown kickstart command "frobnicate": "frobnicate --now"/.test((e as Error).message));
  const s = loadKickstart(p, { lenient: true });
  assert.ok(s.warnings.some((w) => w.includes(':3: unknown command frobnicate')));
});

test('bad option, bad quoting, missing relative include, include loops: file:line', () => {
  const cases: [string, RegExp][] = [
    ['timezone --bogus UTC\n', /:1: unknown option --bogus/],
    ['network --device eth0 --bootproto\n', /:1: --bootproto needs a value/],
    ['rootpw "unterminated\n', /:1: no closing quotation/],
    ['\n%include nope.ks\n', /:2: cannot read included file .*nope\.ks/],
    ['part / --size=abc\n', /:1: --size must be a whole number/],
    ['part / --fstype=ntfs\n', /:1: unsupported --fstype ntfs/],
    ['%packages\n@core --bogus\n%end\n', /:2: unknown group option --bogus/],
    ['%end\n', /:1: %end without a section/],
  ];
  for (const [text, re] of cases) assert.throws(() => loadKickstart(tmpKs(text)), re, text);
  const d = mkdtempSync(join(tmpdir(), 'ks-'));
  writeFileSync(join(d, 'a.ks'), '%include b.ks\n');
  writeFileSync(join(d, 'b.ks'), 'lang C\n%include a.ks\n');
  assert.throws(() => loadKickstart(join(d, 'a.ks')), /b\.ks:2: %include loop/);
});

test('model validation errors point at the kickstart line that set the field', () => {
  assert.throws(() => parseKickstart('lang C\nnetwork --hostname=bad_host!\n', '/v/x.ks'), /\/v\/x\.ks:2: hostname: must match .*"network --hostname=bad_host!"/);
  assert.throws(() => parseKickstart('user --name=Bob\n', '/v/x.ks'), /x\.ks:1: users\[0\]\.name: must match/);
  assert.throws(() => parseKickstart('\npart /boot --size=10\n', '/v/x.ks'), /x\.ks:2: disk\.partitions: no partition is mounted at \//);
});

test('shell quoting, continuations, comments, option spellings', () => {
  const s = parseKickstart([
    'bootloader --location=mbr --append="console=ttyS0,115200 \\"quoted arg\\"" --timeout 3 # trailing comment',
    "user --name=alice --groups=wheel,adm --password='$6$salt$hash' --iscrypted --homedir=/srv/alice",
    'sshkey --username=alice "ssh-ed25519 AAAA alice@host"',
    'services --enabled=sshd,chronyd \\',
    '  --disabled=kdump',
    'keyboard --vckeymap=de-nodeadkeys --xlayouts=\'de (nodeadkeys)\'',
    'network --bootproto=static --device=eth0 --ip=10.0.0.5 --netmask=255.255.255.0 --gateway=10.0.0.1 --nameserver=1.1.1.1,8.8.8.8 --hostname=box.example',
    'rootpw --plaintext s3cret',
    '%packages --nocore --excludedocs --inst-langs=en:de --excludeWeakdeps --ignoremissing',
    '@^minimal-environment',
    '@standard --optional',
    '-@dial-up',
    'vim-enhanced   # editor',
    '-plymouth*',
    '%end',
  ].join('\n') + '\n', '/virtual/x.ks');
  assert.equal(s.bootloader.kernelArgs, ['console=ttyS0,115200', '"quoted', 'arg"']);
  assert.is(s.bootloader.timeout, 3);
  assert.equal(s.users[0], { name: 'alice', groups: ['wheel', 'adm'], home: '/srv/alice', password: { hashed: '$6$salt$hash' }, lock: false, sshKeys: ['ssh-ed25519 AAAA alice@host'] });
  assert.equal(s.services, { enable: ['sshd', 'chronyd'], disable: ['kdump'] });
  assert.equal(s.keyboard, { vconsole: 'de-nodeadkeys', xlayouts: ['de (nodeadkeys)'] });
  assert.is(s.hostname, 'box.example');
  assert.equal(s.network[0]!.nameservers, ['1.1.1.1', '8.8.8.8']);
  assert.is(s.network[0]!.bootproto, 'static');
  assert.equal(s.root, { lock: false, sshKeys: [], password: { plain: 's3cret' } });
  assert.equal([s.packages.core, s.packages.excludeDocs, s.packages.weakDeps, s.packages.ignoreMissing], [false, true, false, true]);
  assert.equal(s.packages.instLangs, ['en', 'de']);
  assert.is(s.packages.environment, 'minimal-environment');
  assert.equal(s.packages.groups, [{ name: 'standard', optional: true }]);
  assert.equal(s.packages.excludeGroups, ['dial-up']);
  assert.equal(s.packages.include, ['vim-enhanced']);
  assert.equal(s.packages.exclude, ['plymouth*']);
});

test('defaults: no disk layout → root grows; autopart and reqpart follow firmware', () => {
  const s = parseKickstart('lang C\n', '/v/a.ks');
  assert.equal(s.disk.partitions.map((p) => p.mount ?? p.fs), ['biosboot', '/']);
  assert.is(s.bootloader.kind, 'grub');
  assert.is(s.root.lock, true, 'root locked without rootpw (Anaconda)');
  const a = parseKickstart('autopart --type=plain --noswap\n', '/v/a.ks');
  assert.ok(a.disk.auto);
  assert.equal(a.disk.partitions.map((p) => p.mount ?? p.fs), ['biosboot', '/boot', '/']);
  const r = parseKickstart('reqpart --add-boot\npart / --size=3000 --grow --fstype=xfs\n', '/v/a.ks');
  assert.equal(r.disk.partitions.map((p) => [p.mount ?? p.fs, p.fs]), [['biosboot', 'biosboot'], ['/boot', 'ext4'], ['/', 'xfs']]);
  const m = parseKickstart('clearpart --all --disklabel=msdos\npart / --size 1024\n', '/v/a.ks');
  assert.is(m.disk.table, 'mbr');
  assert.throws(() => parseKickstart('part /boot --size=500\n', '/v/a.ks'), /no partition is mounted at \//);
});

test('loadSpec picks the kickstart front end by extension and content', () => {
  const d = mkdtempSync(join(tmpdir(), 'ks-'));
  mkdirSync(join(d, 'sub'));
  writeFileSync(join(d, 'sub/inc.ks'), 'timezone Europe/Berlin\n');
  writeFileSync(join(d, 'main'), 'lang de_DE.UTF-8\n%include sub/inc.ks\n');
  const s = loadSpec(join(d, 'main'));
  assert.is(s.timezone.name, 'Europe/Berlin');
  assert.is(s.locale, 'de_DE.UTF-8');
});

test.run();
