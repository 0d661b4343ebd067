import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileSource } from '../src/disk/index.js';
import { openFat, FatError, type FatFilesystem } from '../src/fs/fat/index.js';
import { IngotError } from '../src/errors.js';
import { requireTool } from './helpers/tools.js';
import { IMAGES, run } from './helpers/disk.js';

const dir = mkdtempSync(join(tmpdir(), 'ingot-fatrd-'));
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const DOSFS = join(IMAGES, 'dosfstools');

requireTool('mdir');
requireTool('fsck.vfat');
requireTool('xxd', 'xxd');

/** Rebuild an xxd dump as a (sparse) image. */
function rebuild(name: string): string {
  const out = join(dir, `${name}.img`);
  execFileSync('sh', ['-c', `xxd -r '${join(DOSFS, name)}' > '${out}'`]);
  return out;
}

interface Listing { paths: string[]; files: { path: string; size: number }[]; label?: string }

/** Everything our reader sees, reading every file through its cluster chain. */
async function readAll(path: string): Promise<Listing & { contents: Map<string, string> }> {
  const src = await FileSource.open(path);
  try {
    const fs: FatFilesystem = await openFat(src, { file: path });
    const paths: string[] = [];
    const files: { path: string; size: number }[] = [];
    const contents = new Map<string, string>();
    for await (const { path: p, entry } of fs.walk()) {
      paths.push(entry.isDirectory ? `${p}/` : p);
      if (!entry.isDirectory) {
        files.push({ path: p, size: entry.size });
        const parts: Uint8Array[] = [];
        for await (const b of fs.readStream(entry)) parts.push(b);
        contents.set(p, sha(Buffer.concat(parts)));
      }
    }
    return { paths: paths.sort(), files, contents, label: (await fs.info()).label };
  } finally {
    await src.close();
  }
}

const images = readdirSync(DOSFS).filter((f) => /\.(xxd|fsck)$/.test(f)).sort();

test(`dosfstools sample images (${images.length}): valid ones read exactly as mtools reads them, corrupt ones as typed errors`, async () => {
  let compared = 0, refused = 0;
  for (const name of images) {
    const img = rebuild(name);
    const fsck = run('fsck.vfat', ['-n', img]);
    const mdir = spawnSync('mdir', ['-/', '-b', '-a', '-i', img, '::'], { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C.UTF-8' } });
    let ours: Awaited<ReturnType<typeof readAll>> | undefined;
    let err: unknown;
    try { ours = await readAll(img); } catch (e) { err = e; }
    if (err !== undefined) {
      // Only typed errors, and only where a reference tool also gives up or reports the damage.
      assert.ok(err instanceof FatError, `${name}: ${String(err)}`);
      assert.ok(fsck.code !== 0, `${name}: fsck accepts what we refused: ${String(err)}`);
      refused++;
      continue;
    }
    if (fsck.code !== 0) continue; // damaged, but readable: nothing to compare against
    // fsck.fat counts every entry (files, directories, the volume label).
    const n = Number(/: (\d+) files,/.exec(fsck.stdout)?.[1]);
    assert.is(ours!.paths.length + (ours!.label !== undefined ? 1 : 0), n, `${name}: fsck file count`);
    // mdir -b fails with 'File "::" not found' on an empty root; it refuses FAT32 with < 65525 clusters (fsck accepts).
    const empty = mdir.status !== 0 && /File "::" not found/.test(mdir.stderr);
    if (mdir.status !== 0 && !empty) continue;
    const listed = (empty ? '' : mdir.stdout).split('\n').filter(Boolean).map((l) => l.replace(/^::/, '')).sort();
    assert.equal(ours!.paths, listed, name);
    for (const { path } of ours!.files) {
      const t = spawnSync('mtype', ['-i', img, `::${path}`], { env: { ...process.env, LC_ALL: 'C.UTF-8' }, maxBuffer: 1 << 26 });
      assert.is(ours!.contents.get(path), sha(t.stdout), `${name}:${path}`);
    }
    compared++;
  }
  console.log(`dosfstools images: ${compared} compared with mtools+fsck, ${refused} refused with typed errors`);
  assert.ok(compared >= 25, `only ${compared} images compared with mtools`);
  assert.ok(refused >= 4, `only ${refused} refused`);
});

test('corrupt chains and volumes: the specific typed errors', async () => {
  const code = async (name: string, f: (fs: FatFilesystem) => Promise<unknown>) => {
    const src = await FileSource.open(rebuild(name));
    try {
      await f(await openFat(src));
      return 'ok';
    } catch (e) {
      assert.ok(e instanceof IngotError, String(e));
      return (e as IngotError).code;
    } finally { await src.close(); }
  };
  assert.is(await code('check-circular_chain.fsck', (fs) => fs.readFile('/TEST4CLS.TXT')), 'FAT_CHAIN_LOOP');
  assert.is(await code('check-circular_chain.xxd', (fs) => fs.readFile('/TEST4CLS.TXT')), 'ok');
  for (const t of ['fat12', 'fat16', 'fat32']) assert.is(await code(`check-${t}_first_cluster.fsck`, async () => 0), 'FAT_BAD_FAT');
  assert.is(await code('check-huge.fsck', async () => 0), 'FAT_TRUNCATED');
  // A file whose chain runs into a free cluster is read up to its size when the chain covers it (fsck: "Assuming EOF").
  assert.is(await code('check-chain_to_free_cluster.fsck', async (fs) => assert.is(Buffer.from(await fs.readFile('/TEST.TXT')).toString(), 'test\n')), 'ok');
});

test('volume labels match fatlabel\'s expected output; serials match blkid', async () => {
  requireTool('blkid');
  const labels = readdirSync(DOSFS).filter((f) => f.endsWith('.label'));
  assert.is(labels.length, 18);
  for (const l of labels) {
    const img = rebuild(l.replace(/\.label$/, '.xxd'));
    const src = await FileSource.open(img);
    const info = await (await openFat(src)).info();
    await src.close();
    assert.is(info.label ?? '', readFileSync(join(DOSFS, l), 'utf8').replace(/\n$/, ''), l);
    const uuid = run('blkid', ['-p', '-o', 'value', '-s', 'UUID', img]).stdout.trim();
    assert.is(info.uuid, uuid, l);
  }
});

test('libblkid FAT probe images: label and UUID as blkid\'s expected results say', async () => {
  for (const n of ['fat', 'fat32_label_64MB', 'small-fat32']) {
    const img = join(dir, `${n}.img`);
    writeFileSync(img, execFileSync('bzcat', [join(IMAGES, 'e2fsprogs/lib-blkid', `${n}.img.bz2`)], { maxBuffer: 1 << 28 }));
    const expect = Object.fromEntries(readFileSync(join(IMAGES, 'e2fsprogs/lib-blkid', `${n}.results`), 'utf8').trim().split('\n')
      .map((l) => /^(\w+)='(.*)'$/.exec(l)!.slice(1, 3) as [string, string]));
    const src = await FileSource.open(img);
    const info = await (await openFat(src)).info();
    await src.close();
    assert.is(info.uuid, expect.UUID, n);
    // blkid falls back to the boot-sector label when the root has none
    assert.is(info.label ?? info.bootSectorLabel, expect.LABEL, n);
  }
});

test.after(() => rmSync(dir, { recursive: true, force: true }));
test.run();
