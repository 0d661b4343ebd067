// Shared by the provenance, appliance and reproducibility tests: a small spec
// over the fixture repository, a CLI runner that can vary umask, TZ and the
// wall clock (faketime), and readers that use outside tools only (sfdisk,
// dd, debugfs, rpm, sha256sum).
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { fixtureRepo } from '../fixtures/repo.js';
import { ROOT, type CliResult } from './helpers/cli.js';

const MiB = 1024 * 1024;

/** A GPT image with ESP, ext4 root and swap; `kernel` adds the kernel package (a much larger image). */
export function writeSpec(dir: string, name: string, opts: { kernel?: boolean; network?: number } = {}): string {
  const p = join(dir, `${name}.json`);
  writeFileSync(p, JSON.stringify({
    name,
    description: `ingot test image ${name} <&>`,
    repositories: [{ name: 'fixtures', baseurl: [fixtureRepo()] }],
    packages: { include: ['ingot-base', 'ingot-marker', 'busybox-static', ...(opts.kernel ? ['kernel'] : [])], core: false, weakDeps: false },
    disk: {
      table: 'gpt', partitions: [
        { mount: '/boot/efi', size: '32MiB', fs: 'efi', label: 'ESP' },
        { mount: '/', size: '48MiB', fs: 'ext4', grow: true, label: 'root' },
        { size: '8MiB', fs: 'swap' },
      ],
    },
    hostname: 'ingot-prov',
    bootloader: { kind: 'none', firmware: 'uefi' },
    network: Array.from({ length: opts.network ?? 0 }, (_, i) => ({ device: `eth${i}`, bootproto: 'dhcp' })),
    outputs: [{ format: 'raw' }],
  }));
  return p;
}

export interface RunOptions { env?: Record<string, string>; umask?: string; fakeTime?: string; cwd?: string; /** taskset CPU list (changes the default encoder thread counts). */ cpus?: string }

/** Run the ingot CLI from source, optionally under another umask and a shifted wall clock. */
export function runIngot(args: string[], o: RunOptions = {}): CliResult {
  const loader = pathToFileURL(join(ROOT, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href;
  const node = [process.execPath, '--import', loader, join(ROOT, 'src/cli/main.ts'), ...args];
  let cmd = o.fakeTime ? ['faketime', o.fakeTime, ...node] : node;
  if (o.cpus) cmd = ['taskset', '-c', o.cpus, ...cmd];
  const r = spawnSync('sh', ['-c', `umask ${o.umask ?? '022'} && exec "$@"`, 'sh', ...cmd], {
    cwd: o.cwd ?? ROOT, encoding: 'utf8', maxBuffer: 1 << 28, env: { ...process.env, ...o.env },
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

export function sha256(path: string): string {
  return execFileSync('sha256sum', [path], { encoding: 'utf8' }).split(' ')[0]!;
}

/** The ext4 root partition of a raw GPT disk (found by sfdisk and blkid), unpacked by debugfs rdump into a directory. */
export function rootTree(raw: string, work: string): string {
  const j = JSON.parse(execFileSync('sfdisk', ['--json', raw], { encoding: 'utf8' })) as { partitiontable: { partitions: { start: number; size: number }[] } };
  for (const [i, p] of j.partitiontable.partitions.entries()) {
    const img = join(work, `part${i}.img`);
    execFileSync('dd', [`if=${raw}`, `of=${img}`, 'bs=512', `skip=${p.start}`, `count=${p.size}`, 'status=none', 'conv=sparse']);
    const type = spawnSync('blkid', ['-o', 'value', '-s', 'TYPE', img], { encoding: 'utf8' }).stdout.trim();
    if (type !== 'ext4') continue;
    const tree = join(work, `tree${i}`);
    mkdirSync(tree, { recursive: true });
    execFileSync('debugfs', ['-R', `rdump / ${tree}`, img], { stdio: 'ignore' });
    return tree;
  }
  throw new Error(`no ext4 partition in ${raw}`);
}

export interface RpmdbEntry { nevra: string; name: string; epoch: number | null; version: string; release: string; arch: string; license: string; sourcerpm: string; sha256?: string }

const QF = '%{NEVRA}\\t%{NAME}\\t%{EPOCH}\\t%{VERSION}\\t%{RELEASE}\\t%{ARCH}\\t%{LICENSE}\\t%{SOURCERPM}\\n';

function parseQf(out: string): RpmdbEntry[] {
  return out.trim().split('\n').filter(Boolean).map((l) => {
    const [nevra, name, epoch, version, release, arch, license, sourcerpm] = l.split('\t') as string[];
    return { nevra: nevra!, name: name!, epoch: epoch === '(none)' ? null : Number(epoch), version: version!, release: release!, arch: arch!, license: license!, sourcerpm: sourcerpm! };
  });
}

/** What rpm itself lists in an unpacked image (`rpm --root TREE -qa`). */
export function rpmQa(tree: string): RpmdbEntry[] {
  return parseQf(execFileSync('rpm', ['--root', tree, '--dbpath', '/var/lib/rpm', '-qa', '--qf', QF], { encoding: 'utf8' }));
}

/** Every RPM file of the fixture repository as rpm reads it, with sha256sum of the file. */
export function repoRpms(): Map<string, RpmdbEntry & { file: string }> {
  const dir = join(fixtureRepo(), 'Packages');
  const files = readdirSync(dir).filter((f) => f.endsWith('.rpm')).map((f) => join(dir, f));
  const entries = parseQf(execFileSync('rpm', ['-qp', '--nosignature', '--qf', QF, ...files], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }));
  return new Map(entries.map((e, i) => [e.nevra, { ...e, file: files[i]!, sha256: sha256(files[i]!) }]));
}

export { MiB };
