/**
 * The readers behind `info`/`ls`/`cat` on peer images in container formats
 * (opened through formats/): partition tables as sfdisk reads the qemu-img
 * raw conversion, filesystems as blkid/mtools read it.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openImage } from '../formats/index.js';
import { readPartitionTable, describePartitions } from '../src/disk/index.js';
import { openFat } from '../src/fs/fat/index.js';
import { requireTool } from './helpers/tools.js';
import { assertMatchesSfdisk, IMAGES, run, sfdiskJson } from './helpers/disk.js';

const dir = mkdtempSync(join(tmpdir(), 'ingot-dimg-'));

function toRaw(src: string, name: string): string {
  requireTool('qemu-img');
  const out = join(dir, `${name}.raw`);
  execFileSync('qemu-img', ['convert', '-O', 'raw', src, out]);
  return out;
}

test('GPT disks inside virtnbdbackup qcow2 images read as sfdisk reads their raw conversion', async () => {
  for (const f of ['vm1-sda.qcow2.gz', 'vm3-sda.qcow2', 'vm5-sda.qcow2']) {
    const src = join(IMAGES, 'virtnbdbackup', f);
    let path = src;
    if (f.endsWith('.gz')) { path = join(dir, f.replace(/\.gz$/, '')); execFileSync('sh', ['-c', `gzip -dc '${src}' > '${path}'`]); }
    const raw = toRaw(path, f);
    const img = await openImage(path);
    try {
      const ours = await readPartitionTable(img);
      assertMatchesSfdisk(ours, sfdiskJson(raw).table!, f);
      const described = await describePartitions(img);
      for (const p of described.partitions) {
        const b = Object.fromEntries(run('blkid', ['-p', '-O', String(p.start), '-o', 'export', raw]).stdout.trim().split('\n').filter(Boolean).map((l) => l.split('=', 2)));
        if (p.fs) assert.is(p.fs, b.TYPE, `${f} p${p.index}`);
      }
    } finally {
      await img.close();
    }
  }
});

test('the small FAT32 inside go-diskfs file.qcow2 lists as fsck.fat -l walks its raw conversion; every file reads', async () => {
  // mtools refuses FAT32 volumes under 65,525 clusters; fsck.fat (and Linux) accept them, so fsck is the oracle here.
  const path = join(IMAGES, 'go-diskfs/qcow2/file.qcow2');
  const raw = toRaw(path, 'godiskfs');
  const img = await openImage(path);
  try {
    const fs = await openFat(img);
    const info = await fs.info();
    assert.is(info.fatType, 32);
    assert.is(info.uuid, run('blkid', ['-p', '-o', 'value', '-s', 'UUID', raw]).stdout.trim());
    const ours: string[] = [];
    let bytes = 0;
    for await (const { path: p, entry } of fs.walk()) {
      ours.push(p.toUpperCase());
      if (!entry.isDirectory) bytes += (await fs.readFile(p)).length;
    }
    const f = run('fsck.vfat', ['-n', '-l', raw]);
    assert.is(f.code, 0, f.stderr);
    const walked = [...f.stdout.matchAll(/^Checking file (\/.+?)(?: \([^()]*\))?$/gm)].map((m) => m[1]!.toUpperCase()).filter((x) => x !== '/');
    assert.equal(ours.sort(), walked.sort());
    assert.ok(ours.length > 50 && bytes > 0);
    assert.is(Buffer.from(await fs.readFile('/FILE1.TXT')).toString().trim(), 'some random contents');
  } finally {
    await img.close();
  }
});

test.after(() => rmSync(dir, { recursive: true, force: true }));
test.run();
