// End-to-end build from the fixture repository (boot loader none: the
// bootable images are tested in boot-e2e), checked by outside tools only:
// sgdisk/sfdisk for the table, e2fsck/debugfs for ext4, fsck.vfat for the ESP,
// blkid for swap, rpm --root for the rpmdb, qemu-img for the outputs, and a
// second build for determinism.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixtureRepo } from '../fixtures/repo.js';
import { ingot } from './helpers/cli.js';
import { requireTool } from './helpers/tools.js';

const work = mkdtempSync(join(tmpdir(), 'ingot-build-'));
const MiB = 1024 * 1024;

function spec(name: string): string {
  const p = join(work, `${name}.json`);
  writeFileSync(p, JSON.stringify({
    name,
    repositories: [{ name: 'fixtures', baseurl: [fixtureRepo()] }],
    packages: { include: ['ingot-base', 'ingot-marker', 'busybox-static', 'kernel'], core: false, weakDeps: false },
    disk: {
      table: 'gpt', partitions: [
        { mount: '/boot/efi', size: '32MiB', fs: 'efi', label: 'ESP' },
        { mount: '/', size: '64MiB', fs: 'ext4', grow: true, label: 'root' },
        { size: '16MiB', fs: 'swap' },
      ],
    },
    hostname: 'ingot-test',
    bootloader: { kind: 'none', firmware: 'uefi' },
    outputs: [{ format: 'qcow2' }, { format: 'raw' }],
  }));
  return p;
}

function partitions(raw: string): { start: number; size: number; type: string }[] {
  const j = JSON.parse(execFileSync('sfdisk', ['--json', raw], { encoding: 'utf8' })) as { partitiontable: { partitions: { start: number; size: number; type: string }[] } };
  return j.partitiontable.partitions.map((p) => ({ start: p.start * 512, size: p.size * 512, type: p.type }));
}

function extract(raw: string, p: { start: number; size: number }, out: string): string {
  execFileSync('dd', [`if=${raw}`, `of=${out}`, 'bs=1M', `skip=${p.start / MiB}`, `count=${p.size / MiB}`, 'status=none', 'conv=sparse']);
  return out;
}

let outA = '';

test('build writes a GPT disk whose table, filesystems and outputs outside tools accept', () => {
  for (const t of ['sgdisk', 'sfdisk', 'e2fsck', 'debugfs', 'fsck.vfat', 'qemu-img', 'rpm']) requireTool(t);
  requireTool('blkid', 'util-linux');
  outA = join(work, 'a');
  const r = ingot(['build', spec('img'), '-o', outA, '-q'], { env: { SOURCE_DATE_EPOCH: '1700000000' } });
  assert.is(r.code, 0, r.stderr);
  const raw = join(outA, 'img.raw');
  assert.ok(existsSync(join(outA, 'img.qcow2')));
  assert.match(execFileSync('sgdisk', ['-v', raw], { encoding: 'utf8' }), /No problems found/);
  const parts = partitions(raw);
  assert.is(parts.length, 3);
  assert.is(parts[0]!.type, 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B'); // ESP
  assert.is(parts[1]!.type, '4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709'); // root-x86-64 (Discoverable Partitions)
  assert.is(parts[2]!.type, '0657FD6D-A4AB-43C4-84E5-0933C84B4F4F'); // swap
  const esp = extract(raw, parts[0]!, join(work, 'esp.img'));
  const root = extract(raw, parts[1]!, join(work, 'root.img'));
  const swap = extract(raw, parts[2]!, join(work, 'swap.img'));
  const fsck = spawnSync('e2fsck', ['-fn', root], { encoding: 'utf8' });
  assert.is(fsck.status, 0, fsck.stdout + fsck.stderr);
  const vfat = spawnSync('fsck.vfat', ['-n', esp], { encoding: 'utf8' });
  assert.is(vfat.status, 0, vfat.stdout);
  const blk = (f: string) => execFileSync('blkid', ['-o', 'export', f], { encoding: 'utf8' });
  assert.match(blk(swap), /TYPE=swap/);
  // fstab names each filesystem by the UUID blkid finds on it.
  const fstab = execFileSync('debugfs', ['-R', 'cat /etc/fstab', root], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  for (const f of [root, esp, swap]) {
    const uuid = /^UUID=(.*)$/m.exec(blk(f))![1]!;
    assert.ok(fstab.includes(`UUID=${uuid}`), `fstab lacks ${uuid}:\n${fstab}`);
  }
  assert.match(execFileSync('debugfs', ['-R', 'cat /etc/hostname', root], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }), /^ingot-test$/m);
  // ingot info on the qcow2 agrees with sfdisk (table) and blkid (filesystems) on the raw.
  const info = JSON.parse(ingot(['info', '--json', join(outA, 'img.qcow2')]).stdout) as { table: string; partitions: { start: number; size: number; type: string; fs: string; fsUuid: string }[] };
  assert.is(info.table, 'gpt');
  assert.equal(info.partitions.map((p) => [p.start, p.size, p.type]), parts.map((p) => [p.start, p.size, p.type]));
  const blkFs = [esp, root, swap].map((f) => {
    const e = blk(f);
    return [/^TYPE=(.*)$/m.exec(e)![1], /^UUID=(.*)$/m.exec(e)![1]];
  });
  assert.equal(info.partitions.map((p) => [p.fs, p.fsUuid]), blkFs);
  // ls/cat read through the qcow2 container and the partition table: same bytes as debugfs reads from the partition.
  assert.is(ingot(['cat', join(outA, 'img.qcow2'), '/etc/fstab']).stdout, fstab);
  assert.match(ingot(['ls', '--partition', '2', join(outA, 'img.qcow2'), '/etc']).stdout, /^hostname$/m);
  const cmp = spawnSync('qemu-img', ['compare', '-f', 'raw', '-F', 'qcow2', raw, join(outA, 'img.qcow2')], { encoding: 'utf8' });
  assert.is(cmp.status, 0, cmp.stdout + cmp.stderr);
  const chk = spawnSync('qemu-img', ['check', join(outA, 'img.qcow2')], { encoding: 'utf8' });
  assert.is(chk.status, 0, chk.stdout);
  // CHECKSUM covers every image, in the format sha256sum -c does not read but Fedora's tools do: check by hand.
  const sums = readFileSync(join(outA, 'CHECKSUM'), 'utf8');
  for (const f of ['img.raw', 'img.qcow2']) {
    const want = execFileSync('sha256sum', [join(outA, f)], { encoding: 'utf8' }).split(' ')[0];
    assert.ok(sums.includes(`SHA256 (${f}) = ${want}`), `CHECKSUM line for ${f}`);
  }
});

test('the image rpmdb lists exactly the installed packages and rpm -V finds the files intact', () => {
  const root = join(work, 'root.img');
  const tree = join(work, 'tree');
  rmSync(tree, { recursive: true, force: true });
  execFileSync('mkdir', ['-p', tree]);
  execFileSync('debugfs', ['-R', `rdump / ${tree}`, root], { stdio: 'ignore' });
  const report = JSON.parse(readFileSync(join(outA, 'img.report.json'), 'utf8')) as { packages: { nevra: string }[]; configured: string[] };
  assert.ok(report.configured.includes('/etc/hostname') && report.configured.includes('/etc/fstab'), 'configured files are reported');
  const qa = execFileSync('rpm', ['--root', tree, '--dbpath', '/var/lib/rpm', '-qa', '--qf', '%{NEVRA}\n'], { encoding: 'utf8' }).trim().split('\n').sort();
  assert.equal(qa, report.packages.map((p) => p.nevra).sort());
  const va = spawnSync('rpm', ['--root', tree, '--dbpath', '/var/lib/rpm', '-Va', '--nodeps'], { encoding: 'utf8' });
  // debugfs rdump does not restore setuid/setgid/sticky bits: a mode-only finding is checked against the image itself.
  for (const line of va.stdout.split('\n').filter(Boolean)) {
    const m = /^(\S+)\s+(?:[a-z]\s+)?(\/.*)$/.exec(line);
    // Files the configuration step rewrote on purpose (hostname, fstab, …) differ from their packages' versions.
    if (m && report.configured.includes(m[2]!)) continue;
    assert.ok(m && m[1] === '.M.......', `rpm -Va: ${line}`);
    const stat = execFileSync('debugfs', ['-R', `stat ${m![2]}`, root], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const mode = /Mode:\s+(\d+)/.exec(stat)![1]!;
    const want = execFileSync('rpm', ['--root', tree, '--dbpath', '/var/lib/rpm', '-qf', '--qf', `[%{FILEMODES:octal} %{FILENAMES}\\n]`, m![2]!], { encoding: 'utf8' })
      .split('\n').find((l) => l.endsWith(` ${m![2]}`))!.split(' ')[0]!;
    assert.is(Number.parseInt(mode, 8) & 0o7777, Number.parseInt(want, 8) & 0o7777, `mode of ${m![2]}`);
  }
});

test('a second build of the same spec and SOURCE_DATE_EPOCH is byte-identical', () => {
  const outB = join(work, 'b');
  const r = ingot(['build', spec('img'), '-o', outB, '-q'], { env: { SOURCE_DATE_EPOCH: '1700000000' } });
  assert.is(r.code, 0, r.stderr);
  for (const f of ['img.raw', 'img.qcow2']) {
    const a = execFileSync('sha256sum', [join(outA, f)], { encoding: 'utf8' }).split(' ')[0];
    const b = execFileSync('sha256sum', [join(outB, f)], { encoding: 'utf8' }).split(' ')[0];
    assert.is(b, a, f);
  }
});

test('a partition too small for its content fails naming the size needed, leaving no output', () => {
  const p = join(work, 'small.json');
  const s = JSON.parse(readFileSync(spec('small'), 'utf8'));
  s.disk.partitions[1] = { mount: '/', size: '8MiB', fs: 'ext4' };
  writeFileSync(p, JSON.stringify(s));
  const out = join(work, 'c');
  const r = ingot(['build', p, '-o', out]);
  assert.is(r.code, 1);
  assert.match(r.stderr, /needs \d+ MiB/);
  assert.equal(existsSync(out) ? readdirSync(out) : [], []);
});

test.after(() => rmSync(work, { recursive: true, force: true }));
test.run();
