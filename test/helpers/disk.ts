/** Oracles for partition tables: sfdisk's JSON dump, compared field by field with ingot's reader. */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, SHARED } from './cli.js';
import * as assert from 'uvu/assert';
import { requireTool } from './tools.js';
import { FileSource, readPartitionTable, SparseFileTarget, writePartitionTable, type PartitionTable, type PartitionTableInfo } from '../../src/disk/index.js';

export interface SfdiskPartition {
  node: string; start: number; size: number; type: string; uuid?: string; name?: string; attrs?: string; bootable?: boolean;
}
export interface SfdiskTable {
  label: 'gpt' | 'dos'; id: string; sectorsize?: number; firstlba?: number; lastlba?: number; partitions?: SfdiskPartition[];
}

export function run(cmd: string, args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 28 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

export function sfdiskJson(path: string): { table: SfdiskTable | undefined; stderr: string; code: number } {
  requireTool('sfdisk');
  const r = run('sfdisk', ['--json', path]);
  return { table: r.code === 0 && r.stdout.trim() ? (JSON.parse(r.stdout).partitiontable as SfdiskTable) : undefined, stderr: r.stderr, code: r.code };
}

/** ingot's attribute names in sfdisk's spelling (libfdisk gpt.c attribute names; bits 48–63 as GUID:n). */
export function sfdiskAttrs(names: readonly string[]): string | undefined {
  const bits: Record<string, number> = { 'required': 0, 'no-block-io': 1, 'legacy-bios-bootable': 2, 'grow-fs': 59, 'read-only': 60, 'shadow-copy': 61, 'hidden': 62, 'no-automount': 63 };
  const words: string[] = [];
  const guid: number[] = [];
  for (const n of names) {
    const b = bits[n] ?? Number(/^bit:(\d+)$/.exec(n)?.[1]);
    if (b === 0) words.push('RequiredPartition');
    else if (b === 1) words.push('NoBlockIOProtocol');
    else if (b === 2) words.push('LegacyBIOSBootable');
    else if (b >= 48) guid.push(b);
    else words.push(`bit:${b}`);
  }
  if (guid.length) words.push(`GUID:${guid.sort((a, b) => a - b).join(',')}`);
  return words.length ? words.join(' ') : undefined;
}

/** Every field sfdisk reports must match ingot's reading of the same disk. */
export function assertMatchesSfdisk(ours: PartitionTableInfo, sf: SfdiskTable, what: string): void {
  assert.is(ours.type === 'mbr' ? 'dos' : ours.type, sf.label, `${what}: label`);
  assert.is(ours.diskId?.toLowerCase(), sf.id.toLowerCase(), `${what}: disk id`);
  const ss = sf.sectorsize ?? 512;
  const theirs = sf.partitions ?? [];
  assert.equal(ours.partitions.map((p) => p.index), theirs.map((p) => Number(/(\d+)$/.exec(p.node)![1])), `${what}: partition numbers`);
  ours.partitions.forEach((p, i) => {
    const t = theirs[i]!;
    const at = `${what} p${p.index}`;
    assert.is(p.start / ss, t.start, `${at} start`);
    assert.is(p.size / ss, t.size, `${at} size`);
    assert.is(p.type.toLowerCase(), t.type.toLowerCase(), `${at} type`);
    if (sf.label === 'gpt') {
      assert.is(p.uuid, t.uuid, `${at} uuid`);
      assert.is(p.name || undefined, t.name, `${at} name`);
      assert.is(sfdiskAttrs(p.attrs), t.attrs, `${at} attrs`);
    } else {
      assert.is(p.bootable, t.bootable ?? false, `${at} bootable`);
    }
  });
}

/** `shared/` beside the checkout, or beside its parent (git worktrees live one level deeper). */
export function sharedDir(): string {
  for (const c of [process.env.INGOT_SHARED, SHARED, join(ROOT, '..', '..', 'shared')]) if (c && existsSync(c)) return c;
  throw new Error(`shared fixtures not found (looked beside ${ROOT}); set INGOT_SHARED`);
}
export const IMAGES = join(sharedDir(), 'fixtures/images');

/** Write a partition table into a new sparse image file under `dir`. */
export async function writeTableImage(dir: string, name: string, size: number, table: PartitionTable): Promise<{ path: string; info: PartitionTableInfo }> {
  const path = join(dir, name);
  const t = await SparseFileTarget.create(path, size);
  try {
    return { path, info: await writePartitionTable(t, table) };
  } finally {
    await t.close();
  }
}

/** ingot's reading of an image file's partition table. */
export async function readTableFile(path: string): Promise<PartitionTableInfo> {
  const src = await FileSource.open(path);
  try { return await readPartitionTable(src, { file: path }); } finally { await src.close(); }
}
