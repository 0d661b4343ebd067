/**
 * bench/sysconfig: ingot's system-configuration steps against the native tool
 * on the same input, same run (ratios, not timed tests):
 * - SELinux lookups: FileContexts.lookup vs `matchpathcon -f` (Debian refpolicy)
 * - ld.so.cache: writeLdSoCache vs `ldconfig -r` on the same library tree
 * - presets: SystemdUnits.presetAll vs `systemctl --root preset-all`
 * Run: node --import tsx bench/sysconfig.ts
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, readdirSync, lstatSync, readlinkSync, copyFileSync, symlinkSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileContexts } from '../src/install/selinux.js';
import { writeLdSoCache } from '../src/install/ldconfig.js';
import { SystemdUnits } from '../src/install/systemd.js';
import { StagingTree, BufferContent } from '../src/tree/tree.js';

const time = <T>(f: () => T): [T, number] => { const t = process.hrtime.bigint(); const r = f(); return [r, Number(process.hrtime.bigint() - t) / 1e6]; };
const timeAsync = async <T>(f: () => Promise<T>): Promise<[T, number]> => { const t = process.hrtime.bigint(); const r = await f(); return [r, Number(process.hrtime.bigint() - t) / 1e6]; };

function loadDir(root: string): StagingTree {
  const tree = new StagingTree();
  const walk = (rel: string): void => {
    for (const name of readdirSync(join(root, rel))) {
      const r = `${rel}/${name}`;
      const st = lstatSync(join(root, r));
      if (st.isSymbolicLink()) tree.symlink(r, readlinkSync(join(root, r)));
      else if (st.isDirectory()) { tree.mkdirp(r); walk(r); }
      else if (st.isFile()) tree.addFile(r, BufferContent.of(readFileSync(join(root, r))));
    }
  };
  walk('');
  return tree;
}

async function main(): Promise<void> {
  const rows: string[] = [];
  // SELinux
  const d = '/etc/selinux/default/contexts/files';
  const [fc, loadMs] = time(() => new FileContexts({ fileContexts: readFileSync(`${d}/file_contexts`, 'utf8'), homedirs: readFileSync(`${d}/file_contexts.homedirs`, 'utf8'), subsDist: readFileSync(`${d}/file_contexts.subs_dist`, 'utf8') }));
  const paths = execFileSync('find', ['/usr', '-xdev'], { maxBuffer: 1 << 28 }).toString().split('\n').filter((p) => p && !/\s/.test(p)).slice(0, 5000);
  const [, oursMs] = time(() => { for (const p of paths) fc.lookup(p, 'file'); });
  const fcDir = mkdtempSync(join(tmpdir(), 'fcb-'));
  for (const s of ['', '.homedirs', '.subs_dist']) copyFileSync(`${d}/file_contexts${s}`, join(fcDir, `file_contexts${s}`));
  const [, nativeMs] = time(() => execFileSync('matchpathcon', ['-N', '-f', join(fcDir, 'file_contexts'), '-m', 'file', ...paths], { maxBuffer: 1 << 28 }));
  rows.push(`| SELinux: ${paths.length} lookups (${fc.specCount} specs) | ${(loadMs + oursMs).toFixed(0)} ms (load ${loadMs.toFixed(0)}) | matchpathcon ${nativeMs.toFixed(0)} ms | ${((loadMs + oursMs) / nativeMs).toFixed(3)}× |`);

  // ld.so.cache
  const root = mkdtempSync(join(tmpdir(), 'ldb-'));
  mkdirSync(join(root, 'usr/lib64'), { recursive: true });
  mkdirSync(join(root, 'etc'));
  let n = 0;
  for (const name of readdirSync('/usr/lib/x86_64-linux-gnu').sort()) {
    const src = join('/usr/lib/x86_64-linux-gnu', name);
    const st = lstatSync(src);
    if (!/^lib.*\.so/.test(name)) continue;
    if (st.isSymbolicLink() && !readlinkSync(src).includes('/') && name.endsWith('.so')) symlinkSync(readlinkSync(src), join(root, 'usr/lib64', name));
    else if (st.isFile() && st.size < 4 << 20) { copyFileSync(src, join(root, 'usr/lib64', name)); n++; }
  }
  const tree = loadDir(root);
  const copy = mkdtempSync(join(tmpdir(), 'ldb2-'));
  cpSync(root, copy, { recursive: true, verbatimSymlinks: true });
  const [ld, ldOurs] = await timeAsync(() => writeLdSoCache(tree));
  const [, ldNative] = time(() => spawnSync('ldconfig', ['-r', copy], { encoding: 'utf8' }));
  rows.push(`| ld.so.cache: ${n} libraries, ${ld.entries.length} entries | ${ldOurs.toFixed(0)} ms | ldconfig -r ${ldNative.toFixed(0)} ms | ${(ldOurs / ldNative).toFixed(2)}× |`);

  // presets
  const sd = mkdtempSync(join(tmpdir(), 'sdb-'));
  mkdirSync(join(sd, 'usr/lib/systemd'), { recursive: true });
  cpSync('/usr/lib/systemd/system', join(sd, 'usr/lib/systemd/system'), { recursive: true, verbatimSymlinks: true });
  cpSync('/usr/lib/systemd/system-preset', join(sd, 'usr/lib/systemd/system-preset'), { recursive: true });
  mkdirSync(join(sd, 'etc/systemd/system'), { recursive: true });
  const sdTree = loadDir(sd);
  const [, psOurs] = await timeAsync(() => new SystemdUnits(sdTree).presetAll());
  const [, psNative] = time(() => spawnSync('systemctl', [`--root=${sd}`, 'preset-all'], { encoding: 'utf8' }));
  rows.push(`| preset-all: ${readdirSync('/usr/lib/systemd/system').length} unit files | ${psOurs.toFixed(0)} ms | systemctl --root ${psNative.toFixed(0)} ms | ${(psOurs / psNative).toFixed(2)}× |`);
  console.log('| step | ingot | native | ratio |\n|---|---|---|---|\n' + rows.join('\n'));
}

main().catch((e) => { console.error(e); process.exit(1); });
