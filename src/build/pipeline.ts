/**
 * The build pipeline: image spec → resolved transaction → unpacked and
 * configured staging tree → partitioned sparse disk with ext4/FAT → boot
 * loader → output formats → optional boot test. Every output is written to a
 * temporary name and renamed on success; a failure or abort leaves nothing.
 */
import { sha256File } from '../util/hash.js';
import { createHash } from 'node:crypto';
import { mkdirSync, rmSync, statSync } from 'node:fs';
import { rename } from 'node:fs/promises';
import { dirname, join, resolve as resolvePath } from 'node:path';
import { AbortedError, IngotError } from '../errors.js';
import { loadRepos, type LoadOptions, type RepoConfig, type RepoSet } from '../repo/index.js';
import { resolve as resolveDeps, type PackageRef } from '../solve/index.js';
import { openRpm, type RpmPackage } from '../rpm/reader.js';
import { ContentStore } from '../tree/content-store.js';
import { StagingTree } from '../tree/tree.js';
import { Unpacker, type UnpackedPackage } from '../install/unpack.js';
import { configureSystem, type MountedFilesystem } from '../install/sysconfig.js';
import { applyExtraFiles } from '../install/extrafiles.js';
import { installRpmdb } from '../install/rpmdb/index.js';
import { normalizeSpec, type ImageSpec, type OutputFormat } from '../spec/model.js';
import { loadSpec } from '../spec/index.js';
import { SparseFileTarget } from '../disk/target.js';
import { removeOnSignal, tempPathFor } from '../util/atomic.js';
import { writeImage, parseFormatName, type FormatName } from '../../formats/index.js';
import { AccountTracker } from './accounts.js';
import { configureAccounts } from './configure.js';
import { collectScriptlets } from './scriptlets.js';
import { labelTree } from '../install/selinux.js';
import { defaultSpecInput } from './default-spec.js';
import { planDisk, writeDisk, type DiskPlan } from './disk.js';
import { prepareBoot, finishBoot, type BootPrep } from './boot-stage.js';
import { readOsRelease, type OsRelease } from '../provenance/os-release.js';
import { writeAppliance, diskFileName } from './appliance.js';
import type { ProvenancePackage } from '../provenance/cyclonedx.js';

export class BuildError extends IngotError {}

export type Stage = 'spec' | 'resolve' | 'download' | 'unpack' | 'configure' | 'bootloader' | 'disk' | 'output' | 'boot-test';

export interface ProgressEvent {
  stage: Stage;
  /** Items (packages, files, outputs) or bytes done and total, when known. */
  done?: number;
  total?: number;
  message?: string;
}

export interface Logger {
  info(msg: string): void;
  warn(msg: string): void;
  debug?(msg: string): void;
}

export interface BuildOptions {
  /** Path of a .ks/.tdl/.xml/.json spec, an ImageSpec object, or undefined for the embedded default image. */
  spec?: string | ImageSpec;
  /** Directory receiving the outputs (created). */
  outputDir: string;
  /** Output formats (override the spec's). */
  formats?: string[];
  /** Extra repositories (directories or URLs) added to the spec's. */
  repos?: string[];
  arch?: string;
  /** Kickstart leniency for unknown commands. */
  lenient?: boolean;
  /** Deterministic timestamps (default: SOURCE_DATE_EPOCH env, else the newest package's build time). */
  sourceDateEpoch?: number;
  /** Seed for UUIDs and serials (default: derived from the spec and package set, so rebuilds are identical). */
  seed?: string;
  /** Repository metadata and package cache. */
  cacheDir?: string;
  /** Scratch space for the content store and the raw disk (default: the output directory). */
  workDir?: string;
  /** Boot each output's disk in qemu and wait for this marker. */
  bootTest?: { expect: RegExp; timeout?: number; serialLog?: string };
  signal?: AbortSignal;
  onProgress?: (e: ProgressEvent) => void;
  logger?: Logger;
  /** Unknown file owners become root with a warning instead of failing the build. */
  lenientOwners?: boolean;
  /** Repository directory for the default image (the fixture repository); required when `spec` is undefined. */
  defaultRepo?: string;
  /** Directory that relative paths of an ImageSpec object (extra files) are resolved against (default: the spec file's, else the cwd). */
  specDir?: string;
  /** Hooks through which several builds (a compose) share metadata, downloads and unpacked payloads. */
  sharing?: BuildSharing;
}

/**
 * What a compose shares between the images it builds. Every hook is
 * optional; a plain build uses none and behaves as if each did the obvious
 * thing (load, fetch, open, store privately).
 */
export interface BuildSharing {
  /** Repository sets, loaded once per distinct configuration and architecture. */
  loadRepos?(configs: RepoConfig[], opts: LoadOptions): Promise<RepoSet>;
  /** Run `fn` with exclusive use of `repos` (dependency resolution may extend its pool). */
  exclusive?<T>(repos: RepoSet, fn: () => Promise<T>): Promise<T>;
  /** Open a downloaded package; may return one whose payload replays from a compose-wide content cache. */
  openPackage?(path: string): Promise<RpmPackage>;
  /** The store the unpacker puts payload contents into (may hand back contents already cached). */
  unpackStore?(store: ContentStore): ContentStore;
}

export interface OutputFile { format: string; path: string; size: number; sha256: string }

export interface BuildReport {
  name: string;
  arch: string;
  sourceDateEpoch: number;
  seed: string;
  /** The distribution the image holds (its os-release), when it has one: the SBOM's purl namespace. */
  os?: OsRelease;
  packages: (ProvenancePackage & { checksum: string; files: number; bytes: number })[];
  order: string[];
  disk: { table: string; size: number; partitions: { index: number; mount?: string; fs: string; start: number; size: number; uuid?: string; label?: string }[] };
  outputs: OutputFile[];
  bootTests: { format: string; firmware: string; ok: boolean; seconds: number; outcome: string }[];
  /** Paths the configuration step created or rewrote. */
  configured: string[];
  scriptlets: { package: string; kind: string; interpreter: string; handled: string; reasons?: string[] }[];
  scripts: { phase: string; interpreter: string; file?: string; line?: number; note: string }[];
  warnings: string[];
  timings: Record<string, number>;
}

export interface BuildResult { report: BuildReport; outputs: OutputFile[]; reportPath: string }

const EXTENSION: Record<string, string> = {
  raw: 'raw', qcow2: 'qcow2', vhd: 'vhd', vmdk: 'vmdk', ova: 'ova', 'raw.xz': 'raw.xz', 'raw.gz': 'raw.gz', 'raw.zst': 'raw.zst',
  'tar.gz': 'tar.gz', 'tar.xz': 'tar.xz', appliance: 'tar.gz',
};

function check(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AbortedError('build aborted');
}

function repoConfigs(spec: ImageSpec, extra: string[]): RepoConfig[] {
  const out: RepoConfig[] = spec.repositories.filter((r) => !r.iso).map((r) => ({
    id: r.name, baseurl: r.baseurl, mirrorlist: r.mirrorlist, metalink: r.metalink, cost: r.cost,
    includepkgs: r.includepkgs, exclude: r.excludepkgs, gpgcheck: r.gpgcheck, gpgkey: r.gpgkey,
  }));
  extra.forEach((u, i) => out.push({ id: `cli-${i + 1}`, baseurl: [/^[a-z]+:\/\//.test(u) ? u : resolvePath(u)] }));
  if (out.length === 0) throw new BuildError('NO_REPOS', 'the spec names no repository: add one (kickstart `repo`/`url`, TDL <repositories>) or pass --repo');
  return out;
}

function requestSpecs(spec: ImageSpec, repos: RepoSet, warnings: string[]): string[] {
  const p = spec.packages;
  const specs = [...p.include];
  // The implicit @core (kickstart without --nocore, TDL) only where the repositories define it.
  if (p.core && !p.groups.some((g) => g.name === 'core')) {
    if (repos.comps.groups.has('core')) specs.push('@core');
    else warnings.push('the repositories have no comps group "core": the implicit @core is skipped');
  }
  for (const g of p.groups) specs.push(`@${g.name}`);
  if (p.environment) specs.push(`@^${p.environment}`);
  for (const x of p.exclude) specs.push(`-${x}`);
  return specs;
}

export async function buildImage(opts: BuildOptions): Promise<BuildResult> {
  const log = opts.logger ?? { info: () => {}, warn: () => {} };
  const progress = (e: ProgressEvent) => opts.onProgress?.(e);
  const timings: Record<string, number> = {};
  let t0 = Date.now();
  const lap = (stage: string) => { const t = Date.now(); timings[stage] = (t - t0) / 1000; t0 = t; };
  const signal = opts.signal;
  const warnings: string[] = [];

  // Spec.
  progress({ stage: 'spec' });
  let spec: ImageSpec;
  if (typeof opts.spec === 'string') spec = loadSpec(opts.spec, { lenient: opts.lenient });
  else if (opts.spec) spec = opts.spec;
  else {
    if (!opts.defaultRepo) throw new BuildError('NO_SPEC', 'no spec given and no default repository');
    spec = normalizeSpec(defaultSpecInput(opts.defaultRepo, opts.arch), '(default image)');
  }
  if (opts.arch) spec = { ...spec, arch: opts.arch as ImageSpec['arch'] };
  warnings.push(...spec.warnings);
  const formats: (FormatName | 'appliance')[] = (opts.formats?.length ? opts.formats : spec.outputs.map((o) => o.format as string)).map((f) => {
    if (f.toLowerCase() === 'appliance') return 'appliance';
    try { return parseFormatName(f); } catch { throw new BuildError('BAD_FORMAT', `unsupported output format ${f}`, { field: 'outputs' }); }
  });
  if (formats.length === 0) formats.push('qcow2');
  if (formats.includes('appliance') && formats.includes('tar.gz')) {
    throw new BuildError('BAD_FORMAT', `formats appliance and tar.gz both write ${spec.name}.tar.gz: build them separately`, { field: 'outputs' });
  }
  lap('spec');

  // Resolve.
  check(signal);
  progress({ stage: 'resolve' });
  const sharing = opts.sharing ?? {};
  const loadOpts: LoadOptions = { arch: spec.arch, cacheDir: opts.cacheDir, releasever: spec.os?.version };
  const configs = repoConfigs(spec, opts.repos ?? []);
  const repos: RepoSet = await (sharing.loadRepos ? sharing.loadRepos(configs, loadOpts) : loadRepos(configs, loadOpts));
  const solve = () => resolveDeps(repos, {
    specs: requestSpecs(spec, repos, warnings), arch: spec.arch, weakDeps: spec.packages.weakDeps,
    groupPackageTypes: spec.packages.groups.some((g) => g.optional) ? ['mandatory', 'default', 'optional'] : undefined,
  });
  const resolution = await (sharing.exclusive ? sharing.exclusive(repos, solve) : solve());
  const byNevra = new Map(resolution.install.map((p) => [p.nevra, p]));
  const ordered: PackageRef[] = resolution.order.map((n) => byNevra.get(n)!).filter(Boolean);
  log.info(`resolved ${ordered.length} packages`);
  lap('resolve');

  // Download (or locate) and open every package.
  const paths = new Map<string, string>();
  let n = 0;
  for (const p of ordered) {
    check(signal);
    paths.set(p.nevra, await repos.fetchPackage(p.id));
    progress({ stage: 'download', done: ++n, total: ordered.length });
  }
  lap('download');

  const sourceDateEpoch = opts.sourceDateEpoch
    ?? (process.env.SOURCE_DATE_EPOCH ? Number(process.env.SOURCE_DATE_EPOCH) : undefined);
  if (sourceDateEpoch !== undefined && !(Number.isInteger(sourceDateEpoch) && sourceDateEpoch >= 0)) {
    throw new BuildError('BAD_EPOCH', 'SOURCE_DATE_EPOCH must be a whole number of seconds since 1970', { field: 'SOURCE_DATE_EPOCH', actual: String(process.env.SOURCE_DATE_EPOCH ?? opts.sourceDateEpoch) });
  }
  const outDir = resolvePath(opts.outputDir);
  mkdirSync(outDir, { recursive: true });
  const workDir = resolvePath(opts.workDir ?? outDir);
  mkdirSync(workDir, { recursive: true });
  const store = ContentStore.create({ dir: workDir });
  const rawTmp = tempPathFor(join(outDir, `${spec.name}.raw`));
  const finished: string[] = [];
  // A signal mid-build removes the scratch files; outputs appear only by rename.
  const guards = [removeOnSignal(rawTmp), removeOnSignal(store.dir)];
  try {
    // Unpack in transaction order.
    const tree = new StagingTree();
    const pkgs: RpmPackage[] = [];
    let epoch = sourceDateEpoch ?? 0;
    for (const p of ordered) {
      const file = paths.get(p.nevra)!;
      const pkg = await (sharing.openPackage ? sharing.openPackage(file) : openRpm(file));
      pkgs.push(pkg);
      if (sourceDateEpoch === undefined) epoch = Math.max(epoch, pkg.info.buildtime ?? 0);
    }
    tree.defaultTime = { sec: epoch, nsec: 0 };
    const accounts = new AccountTracker(tree, Math.floor(epoch / 86400));
    const unpacker = new Unpacker(tree, sharing.unpackStore ? sharing.unpackStore(store) : store, () => accounts.resolver(), {
      excludeDocs: spec.packages.excludeDocs, instLangs: spec.packages.instLangs, sourceDateEpoch: epoch,
      deferOwners: true, lenientOwners: opts.lenientOwners ?? false,
    });
    const unpacked: UnpackedPackage[] = [];
    n = 0;
    for (const pkg of pkgs) {
      check(signal);
      await accounts.beforePackage(pkg);
      unpacked.push(await unpacker.install(pkg));
      await accounts.afterPackage(pkg);
      unpacker.settleOwners();
      progress({ stage: 'unpack', done: ++n, total: pkgs.length, message: pkg.info.nevra });
    }
    warnings.push(...unpacker.warnings, ...accounts.warnings);
    lap('unpack');

    // Identity: a seed from the spec and the exact package set, so rebuilds are byte-identical.
    const seed = opts.seed ?? createHash('sha256')
      .update(JSON.stringify({ name: spec.name, arch: spec.arch, disk: spec.disk, epoch }))
      .update(ordered.map((p) => `${p.nevra}:${p.checksum.value}`).join('\n'))
      .digest('hex').slice(0, 32);

    // Disk plan first: filesystem UUIDs are needed by fstab, the boot loader config and the initramfs.
    const plan: DiskPlan = planDisk(spec, seed);
    const mounted: MountedFilesystem[] = plan.filesystems();

    // Configure (what it rewrites is reported: rpm -V will rightly flag those package files).
    check(signal);
    progress({ stage: 'configure' });
    const before = snapshot(tree);
    // Scriptlets are never run: each is classified, the common ones done natively (ldconfig, alternatives,
    // presets); accounts they create were applied during the unpack.
    const configured0 = await configureSystem(tree, spec, { filesystems: mounted, scriptlets: collectScriptlets(pkgs), seed });
    const scriptletReport = configured0.scriptlets;
    warnings.push(...configured0.warnings.filter((w) => !spec.warnings.includes(w)));
    await configureAccounts(tree, await accounts.accounts(), spec, seed);
    accounts.finish();
    await applyExtraFiles(tree, spec.files, opts.specDir ?? (typeof opts.spec === 'string' ? dirname(resolvePath(opts.spec)) : process.cwd()));
    const configured = changedPaths(before, tree);
    lap('configure');

    // Boot loader files and initramfs into the tree.
    check(signal);
    progress({ stage: 'bootloader' });
    const boot: BootPrep = await prepareBoot(tree, spec, plan, { store, seed, epoch });
    warnings.push(...boot.warnings);

    // The rpmdb goes in last, after every change packages would have made.
    await installRpmdb(tree, pkgs.map((pkg, i) => ({
      main: pkg.headerBlob(), signature: pkg.signature.blob(), name: pkg.info.nevra,
      fileStates: unpackedStates(pkg, unpacked[i]!.skipped > 0, spec),
    })), { store, installTime: epoch, arch: spec.arch });
    // Labels last: every file is in place (setfiles' view of the finished tree).
    const labels = await labelTree(tree, { mode: spec.selinux });
    if (labels.autorelabel) warnings.push('no SELinux policy in the image: /.autorelabel makes the first boot label it');
    lap('bootloader');

    // Disk.
    check(signal);
    progress({ stage: 'disk' });
    const layout = await writeDisk(tree, plan, rawTmp, { epoch, seed, contiguous: boot.contiguous, store });
    await finishBoot(layout, boot, plan, tree);
    lap('disk');

    // Outputs.
    const outputs: OutputFile[] = [];
    n = 0;
    for (const fmt of formats) {
      check(signal);
      const path = join(outDir, `${spec.name}.${EXTENSION[fmt] ?? fmt}`);
      progress({ stage: 'output', done: n, total: formats.length, message: path });
      if (fmt === 'raw' && formats.indexOf('raw') === formats.length - 1) {
        // The last user of the raw file may take it by rename: no copy.
        await layout.target.close();
        layout.closed = true;
        await rename(rawTmp, path);
      } else if (fmt === 'appliance') {
        await writeAppliance(path, [{ file: diskFileName(spec.name, 0), source: layout.target }], {
          name: spec.name, arch: spec.arch, description: spec.description, interfaces: spec.network.length, mtime: epoch,
        });
      } else {
        await writeImage(layout.target, path, { format: fmt, seed, name: spec.name, epoch });
      }
      finished.push(path);
      outputs.push({ format: fmt, path, size: statSync(path).size, sha256: await sha256File(path) });
      progress({ stage: 'output', done: ++n, total: formats.length, message: path });
    }
    if (!layout.closed) await layout.target.close();
    lap('output');

    // Boot test.
    const bootTests: BuildReport['bootTests'] = [];
    if (opts.bootTest) {
      const { bootImage } = await import('../qemu/runner.js');
      const fws = spec.bootloader.firmware === 'hybrid' ? ['bios', 'uefi'] as const : [spec.bootloader.firmware] as const;
      const out = outputs.find((o) => ['qcow2', 'raw', 'vmdk', 'vhd'].includes(o.format));
      if (!out) throw new BuildError('BOOT_TEST_FORMAT', 'boot test needs a raw, qcow2, vmdk or vhd output');
      for (const fw of fws) {
        check(signal);
        progress({ stage: 'boot-test', message: `${out.format} ${fw}` });
        const r = await bootImage({ image: out.path, firmware: fw, arch: spec.arch === 'i686' || spec.arch === 'i386' ? 'i686' : 'x86_64', expect: opts.bootTest.expect, timeout: opts.bootTest.timeout, serialLog: opts.bootTest.serialLog });
        bootTests.push({ format: out.format, firmware: fw, ok: r.ok, seconds: r.seconds, outcome: r.outcome });
        if (!r.ok) {
          throw new BuildError('BOOT_TEST_FAILED', `boot test (${fw}) failed: ${r.outcome}; last console lines: ${r.tail.slice(-8).join(' | ')}`);
        }
      }
      lap('boot-test');
    }

    const os = await readOsRelease(tree);
    const report: BuildReport = {
      name: spec.name, arch: spec.arch, sourceDateEpoch: epoch, seed, ...(os ? { os } : {}),
      packages: await Promise.all(pkgs.map(async (pkg, i) => {
        const ref = byNevra.get(pkg.info.nevra) ?? ordered[i]!;
        const { name, epoch: pe, version, release, arch, url, vendor } = pkg.info;
        return {
          nevra: pkg.info.nevra, name, epoch: pe, version, release, arch, url, vendor, repo: ref.repo, checksum: `${ref.checksum.type}:${ref.checksum.value}`,
          files: unpacked[i]!.files, bytes: unpacked[i]!.bytes, license: pkg.info.license, sourcerpm: pkg.info.sourcerpm,
          sha256: ref.checksum.type === 'sha256' ? ref.checksum.value : await sha256File(paths.get(pkg.info.nevra)!),
        };
      })),
      order: resolution.order,
      disk: { table: plan.table, size: layout.diskSize, partitions: layout.partitions },
      outputs, bootTests,
      configured,
      scriptlets: scriptletReport.scriptlets.map((x) => ({
        package: x.package, kind: x.phase, interpreter: x.interpreter, handled: x.disposition,
        ...(x.reasons.length ? { reasons: x.reasons } : {}),
      })),
      scripts: spec.scripts.map((s) => ({ phase: s.phase, interpreter: s.interpreter, file: s.file, line: s.line, note: 'not run: ingot runs no command inside or outside the image' })),
      warnings, timings,
    };
    const { writeReportFiles } = await import('./report.js');
    const reportPath = await writeReportFiles(outDir, report);
    return { report, outputs, reportPath };
  } catch (e) {
    for (const f of finished) rmSync(f, { force: true });
    throw e;
  } finally {
    rmSync(rawTmp, { force: true });
    await store.dispose();
    for (const g of guards) g.release();
  }
}

function snapshot(tree: StagingTree): Map<string, unknown> {
  const m = new Map<string, unknown>();
  for (const { path, inode } of tree.walk()) m.set(path, inode.type === 'file' ? inode.content : inode.type === 'symlink' ? inode.target : inode);
  return m;
}

function changedPaths(before: Map<string, unknown>, tree: StagingTree): string[] {
  const out: string[] = [];
  for (const { path, inode } of tree.walk()) {
    if (inode.type === 'dir' && before.has(path)) continue;
    const now = inode.type === 'file' ? inode.content : inode.type === 'symlink' ? inode.target : inode;
    if (before.get(path) !== now) out.push(path);
  }
  return out;
}

/** FILESTATES for the rpmdb: files dropped by --excludedocs/--instLangs are NOTINSTALLED, as rpm records them. */
function unpackedStates(pkg: RpmPackage, anySkipped: boolean, spec: ImageSpec): number[] | undefined {
  if (!anySkipped) return undefined;
  const DOC = 1 << 1, LICENSE = 1 << 7;
  const langs = spec.packages.instLangs;
  return pkg.files.map((f) => {
    if (spec.packages.excludeDocs && f.flags & DOC && !(f.flags & LICENSE)) return 2;
    if (langs && f.lang !== '' && f.lang !== 'C' && !langs.some((l) => f.lang === l || f.lang.startsWith(`${l}_`))) return 2;
    return 0;
  });
}

export type { OutputFormat };
