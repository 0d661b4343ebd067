/**
 * Boot pieces against the native tools on the same input, same run:
 *   initramfs (ours, gzip -9) vs GNU cpio + gzip -9 of the same files,
 *   modules.dep/alias (ours) vs depmod, GRUB core.img (ours) vs grub-mkimage,
 *   and the time to the boot marker of an extlinux BIOS image under qemu.
 * and the figure: `ingot build` (the default image) from start to the second boot marker
 * (BIOS, then UEFI), with the build report's split per stage.
 * Run: node --import tsx bench/boot.ts   (needs the fixture repo, qemu, OVMF, kmod, grub-common, cpio)
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { kernelVersion, stagedFixtureRoot, syslinuxFatImage, markerRootExt4 } from '../fixtures/images.js';
import { treeFromDir } from '../fixtures/tree.js';
import { buildInitramfs } from '../src/boot/initramfs.js';
import { indexModules, modulesAliasText, modulesDepText } from '../src/boot/depmod.js';
import { CORE_MODULES, coreImageFor, grubPcFromTree } from '../src/boot/grub-bios.js';
import { bootImage } from '../src/qemu/runner.js';

const dir = mkdtempSync(join(tmpdir(), 'ingot-bench-boot-'));
const sh = (s: string, args: string[] = [], cwd?: string) => {
  const r = spawnSync('bash', ['-ec', s, 'sh', ...args], { cwd, encoding: 'utf8', maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`${s}: ${r.stderr}`);
  return r.stdout;
};
async function time<T>(f: () => Promise<T> | T, runs = 3): Promise<{ ms: number; value: T }> {
  let best = Infinity, value!: T;
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    value = await f();
    best = Math.min(best, performance.now() - t0);
  }
  return { ms: best, value };
}
const rows: string[] = [];
const row = (what: string, ours: number, theirs: number, tool: string) => {
  rows.push(`| ${what} | ${ours.toFixed(0)} ms | ${theirs.toFixed(0)} ms (${tool}) | ${(ours / theirs).toFixed(2)} |`);
  console.log(rows[rows.length - 1]);
};

try {
  const root = stagedFixtureRoot();
  const kver = kernelVersion(root);
  const tree = treeFromDir(root);

  const ir = await time(() => buildInitramfs(tree, { compression: 'gzip' }));
  const x = join(dir, 'x');
  mkdirSync(x);
  writeFileSync(join(dir, 'ours.cpio.gz'), ir.value.image);
  sh('gzip -dc ../ours.cpio.gz | cpio -idm --quiet', [], x);
  const host = await time(() => { sh('find . | LC_ALL=C sort | cpio -o -H newc --quiet | gzip -9 > ../host.cpio.gz', [], x); });
  row(`initramfs (${ir.value.loadOrder.length} modules + busybox, ${(ir.value.image.length / 1e6).toFixed(2)} MB)`, ir.ms, host.ms, 'cpio | gzip -9, files already extracted');

  const base = join(dir, 'depmod');
  mkdirSync(join(base, 'lib/modules'), { recursive: true });
  cpSync(join(root, 'usr/lib/modules', kver), join(base, 'lib/modules', kver), { recursive: true });
  const dm = await time(async () => { const i = await indexModules(tree, kver); return modulesDepText(i).length + modulesAliasText(i).length; });
  const dmHost = await time(() => { sh('depmod -b "$1" "$2"', [base, kver]); });
  row(`modules.dep + modules.alias (${kver})`, dm.ms, dmHost.ms, 'depmod, all indexes');

  const grub = grubPcFromTree(tree);
  const gm = await time(() => coreImageFor(grub, { bootFsUuid: '00000000-0000-4000-8000-000000000000' }));
  writeFileSync(join(dir, 'load.cfg'), 'search.fs_uuid 00000000-0000-4000-8000-000000000000 root\n');
  const gmHost = await time(() => { sh(`grub-mkimage -d "$1" -O i386-pc -o "$2" -c "$3" -p /boot/grub ${CORE_MODULES.join(' ')}`, [join(root, 'usr/lib/grub/i386-pc'), join(dir, 'core.img'), join(dir, 'load.cfg')]); });
  row(`GRUB i386-pc core.img (${CORE_MODULES.length} modules + deps, ${(gm.value.length / 1024).toFixed(0)} KiB)`, gm.ms, gmHost.ms, 'grub-mkimage');

  const uuid = '11111111-2222-4333-8444-555555555555';
  markerRootExt4(join(dir, 'root.ext4'), { uuid });
  writeFileSync(join(dir, 'initrd'), ir.value.image);
  syslinuxFatImage(join(dir, 'disk.img'), { kernel: join(root, 'boot', `vmlinuz-${kver}`), initrd: join(dir, 'initrd'), append: `console=ttyS0 quiet root=UUID=${uuid}`, rootImage: join(dir, 'root.ext4') });
  const b = await bootImage({ image: join(dir, 'disk.img'), timeout: 180 });
  console.log(`boot to marker (SYSLINUX → kernel → ingot initramfs → ext4 root): ${b.seconds.toFixed(1)} s, ${b.accel}, ${b.ok ? 'ok' : b.outcome}`);
  rows.push('', `Boot to marker (BIOS, SYSLINUX → kernel → ingot initramfs → ext4 root, qemu ${b.accel}): ${b.seconds.toFixed(1)} s.`);

  // The default image end to end: `ingot build` → BIOS marker → UEFI marker, wall and CPU (GNU time).
  const load0 = loadavg()[0]!;
  const out = join(dir, 'default');
  const t0 = performance.now();
  const tv = sh('/usr/bin/time -f "%U %S %M" node "$1" build -o "$2" --timeout 300 -q 2>&1 >/dev/null | tail -1', [join(process.cwd(), 'bin/ingot.js'), out], dir).trim().split(' ').map(Number);
  const wall = (performance.now() - t0) / 1000;
  const report = JSON.parse(readFileSync(join(out, 'ingot-default.report.json'), 'utf8')) as { timings: Record<string, number>; bootTests: { firmware: string; seconds: number; ok: boolean }[] };
  const split = Object.entries(report.timings).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(', ');
  const boots = report.bootTests.map((b) => `${b.firmware} ${b.seconds.toFixed(1)} s${b.ok ? '' : ' FAILED'}`).join(', ');
  rows.push(`\n\`ingot build\` (default image) → second boot marker: ${wall.toFixed(1)} s wall, ${(tv[0]! + tv[1]!).toFixed(1)} s CPU (ingot + qemu), peak RSS ${(tv[2]! / 1024).toFixed(0)} MB; per stage (s): ${split}; boots: ${boots}; load average ${load0.toFixed(1)} → ${loadavg()[0]!.toFixed(1)}.`);
  console.log('\n' + ['| step | ingot | native | ratio |', '| --- | --- | --- | --- |', ...rows].join('\n'));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
