/**
 * Packages built with Debian's rpmbuild for what the corpus lacks: every
 * payload compressor, hard links, file capabilities, device nodes, set-id
 * bits, odd file names, scriptlets with interpreters, triggers and file
 * triggers, every dependency kind with rich dependencies.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { requireTool } from './tools.js';

export const SPEC = `Name: ingottest
Version: 1.0
Release: 1
Epoch: 3
Summary: ingot reader test package
License: MIT
BuildArch: noarch
Requires(pre): /bin/sh
Requires: (foo >= 1.0 or bar)
Recommends: baz
Suggests: qux >= 2
Supplements: (a and b)
Enhances: e
Provides: ingot-virtual = 3
Conflicts: oldthing < 1
Obsoletes: ancient <= 0.9

%description
test package built by the ingot tests

%install
mkdir -p %{buildroot}/opt/t/dir %{buildroot}/opt/t/emptydir
echo hello > %{buildroot}/opt/t/file
echo linked > %{buildroot}/opt/t/h1
ln %{buildroot}/opt/t/h1 %{buildroot}/opt/t/h2
ln %{buildroot}/opt/t/h1 %{buildroot}/opt/t/h3
ln -s file %{buildroot}/opt/t/sym
ln -s dir %{buildroot}/opt/t/dirlink
echo s > "%{buildroot}/opt/t/with space & (parens)"
echo u > "%{buildroot}/opt/t/ünïcødé-ファイル"
echo n > "%{buildroot}/opt/t/new@line"
echo cap > %{buildroot}/opt/t/capped
echo conf > %{buildroot}/opt/t/conf
echo suid > %{buildroot}/opt/t/suid
: > %{buildroot}/opt/t/empty
yes ingot | head -c 300000 > %{buildroot}/opt/t/big

%pre -p /bin/sh
echo pre
%post
echo post
%postun -p <lua>
print("lua")
%triggerin -- bash
echo trig
%filetriggerin -- /opt
echo ft

%files
%dir /opt/t
%dir /opt/t/dir
%dir /opt/t/emptydir
/opt/t/file
/opt/t/h1
/opt/t/h2
/opt/t/h3
/opt/t/sym
/opt/t/dirlink
"/opt/t/with space & (parens)"
/opt/t/ünïcødé-ファイル
/opt/t/new@line
/opt/t/empty
/opt/t/big
%caps(cap_net_raw=ep) /opt/t/capped
%config(noreplace) /opt/t/conf
%attr(4755,root,root) /opt/t/suid
%ghost /opt/t/ghost
%dev(c,1,3) /opt/t/devnull
%dev(b,7,0) /opt/t/blockdev
`;

/** rpmbuild's payload io modes → the compressor ingot must detect. */
export const PAYLOADS: Record<string, string> = {
  'w.ufdio': 'none', 'w9.gzdio': 'gzip', 'w9.bzdio': 'bzip2', 'w6.xzdio': 'xz', 'w6.lzdio': 'lzma', 'w19.zstdio': 'zstd',
};

/** Build the test package once per payload mode under `dir`; returns mode → package path. */
export function buildTestPackages(dir: string): Record<string, string> {
  requireTool('rpmbuild');
  mkdirSync(dir, { recursive: true });
  const spec = join(dir, 'ingottest.spec');
  writeFileSync(spec, SPEC);
  const out: Record<string, string> = {};
  for (const mode of Object.keys(PAYLOADS)) {
    const r = spawnSync('rpmbuild', ['-bb', '--quiet', '--define', `_topdir ${dir}/top`, '--define', `_binary_payload ${mode}`,
      '--define', `_rpmfilename ingottest-${mode}.rpm`, spec], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`rpmbuild (${mode}) failed: ${r.stderr}`);
    out[mode] = join(dir, 'top', 'RPMS', `ingottest-${mode}.rpm`);
  }
  return out;
}
