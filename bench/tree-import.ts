/**
 * Staging-tree importers against the native tools on the same input, same run:
 *   importDirectory(DIR)          vs  find DIR -printf (a full lstat walk, the least any reader does)
 *   importTar(DIR.tar)  (spans)   vs  tar -xf DIR.tar -C tmp
 *   importTar(DIR.tar.zst)        vs  tar --zstd -xf DIR.tar.zst -C tmp
 * Usage: node --import tsx bench/tree-import.ts [DIR]   (default /usr/share)
 * Each side runs in its own process under /usr/bin/time for wall time and peak RSS.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const self = fileURLToPath(import.meta.url);

async function child(mode: string, arg: string): Promise<void> {
  const { StagingTree } = await import('../src/tree/tree.js');
  const tree = new StagingTree();
  if (mode === 'dir') {
    const { importDirectory } = await import('../src/tree/import-dir.js');
    const r = await importDirectory(tree, arg);
    console.error(JSON.stringify({ files: r.files, dirs: r.dirs, bytes: r.bytes }));
  } else {
    const { importTar } = await import('../src/tree/import-tar.js');
    const { ContentStore } = await import('../src/tree/content-store.js');
    const store = ContentStore.create();
    const r = await importTar(tree, arg, { store });
    console.error(JSON.stringify({ files: r.files, stored: store.bytesStored }));
    await store.dispose();
  }
}

function timed(cmd: string[]): { wall: number; cpu: number; rssMB: number } {
  const r = spawnSync('/usr/bin/time', ['-f', '%e %U %S %M', ...cmd], { encoding: 'utf8', maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(`${cmd.join(' ')} failed: ${r.stderr}`);
  const [wall, user, sys, rss] = r.stderr.trim().split('\n').pop()!.split(' ');
  return { wall: Number(wall), cpu: Math.round((Number(user) + Number(sys)) * 100) / 100, rssMB: Math.round(Number(rss) / 1024) };
}

async function main(): Promise<void> {
  const dir = process.argv[2] ?? '/usr/share';
  const work = mkdtempSync(join(tmpdir(), 'ingot-bench-tree-'));
  try {
    const tarFile = join(work, 'in.tar');
    execFileSync('tar', ['-C', dir, '-cf', tarFile, '.'], { stdio: 'ignore' });
    execFileSync('zstd', ['-q', '-T0', '-3', tarFile, '-o', `${tarFile}.zst`]);
    const node = [process.execPath, '--import', 'tsx', self];
    type T = ReturnType<typeof timed>;
    const rows: [string, T, T][] = [];
    rows.push(['importDirectory vs find -printf', timed([...node, '--child', 'dir', dir]),
      timed(['sh', '-c', `find "$0" -printf '%p %m %U %G %s %T@ %l\\n' > /dev/null`, dir])]);
    const x1 = mkdtempSync(join(work, 'x'));
    rows.push(['importTar .tar (spans) vs tar -xf', timed([...node, '--child', 'tar', tarFile]), timed(['tar', '-C', x1, '-xf', tarFile])]);
    const x2 = mkdtempSync(join(work, 'x'));
    rows.push(['importTar .tar.zst vs tar --zstd -xf', timed([...node, '--child', 'tar', `${tarFile}.zst`]), timed(['tar', '-C', x2, '--zstd', '-xf', `${tarFile}.zst`])]);
    console.log(`input: ${dir}, tar ${Math.round(statSync(tarFile).size / 2 ** 20)} MiB`);
    console.log('| case | ingot wall s | native wall s | wall ratio | ingot CPU s | native CPU s | ingot peak RSS MB | native peak RSS MB |');
    console.log('|---|---|---|---|---|---|---|---|');
    for (const [name, a, b] of rows) {
      console.log(`| ${name} | ${a.wall} | ${b.wall} | ${(a.wall / b.wall).toFixed(2)} | ${a.cpu} | ${b.cpu} | ${a.rssMB} | ${b.rssMB} |`);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--child') await child(process.argv[3]!, process.argv[4]!);
else await main();
