/** `ingot rpm info|ls|extract|verify`: thin wrappers over src/rpm. */
import type { Command } from 'commander';
import { resolve } from 'node:path';
import { openRpm, extractRpm, verifyRpm, packageSignatures, fileFlagNames, type FileInfo, type RpmPackage } from '../rpm/index.js';

const out = (s: string) => process.stdout.write(s);

/** A closed pipe (`ingot rpm ls x | head`) ends the listing quietly. */
function quietEpipe(): void {
  process.stdout.on('error', (e: NodeJS.ErrnoException) => { if (e.code === 'EPIPE') process.exit(0); else throw e; });
}

/** The `rpm info --json` object. */
export async function infoJson(pkg: RpmPackage) {
  return { ...pkg.info, payloadCompression: pkg.compression, signatures: await packageSignatures(pkg), fileCount: pkg.files.length };
}

function modeString(mode: number): string {
  const t = { 0o040000: 'd', 0o120000: 'l', 0o020000: 'c', 0o060000: 'b', 0o010000: 'p', 0o140000: 's' }[mode & 0o170000] ?? '-';
  const rwx = (bits: number, special: boolean, ch: string) =>
    `${bits & 4 ? 'r' : '-'}${bits & 2 ? 'w' : '-'}${special ? (bits & 1 ? ch : ch.toUpperCase()) : bits & 1 ? 'x' : '-'}`;
  return t + rwx((mode >> 6) & 7, !!(mode & 0o4000), 's') + rwx((mode >> 3) & 7, !!(mode & 0o2000), 's') + rwx(mode & 7, !!(mode & 0o1000), 't');
}

export function fileJson(f: FileInfo) {
  return {
    path: f.path, mode: f.mode, user: f.user, group: f.group, size: f.size, mtime: f.mtime,
    digest: f.digest, digestAlgo: f.digestAlgo, linkTo: f.linkTo, flags: f.flags, flagNames: fileFlagNames(f.flags),
    verifyFlags: f.verifyFlags, rdev: f.rdev, inode: f.inode, device: f.device, lang: f.lang, caps: f.caps,
  };
}

export function registerRpm(program: Command): void {
  const rpm = program.command('rpm').description('read RPM packages: metadata, file lists, payload extraction, verification');

  rpm.command('info')
    .description('package metadata (NEVRA, dependencies, scriptlets, triggers, signatures)')
    .argument('<file>', 'RPM package')
    .option('--json', 'machine-readable JSON')
    .action(async (file: string, opts: { json?: boolean }) => {
      quietEpipe();
      const pkg = await openRpm(file);
      const info = pkg.info;
      const obj = await infoJson(pkg);
      const signatures = obj.signatures;
      if (opts.json) { out(JSON.stringify(obj, null, 2) + '\n'); return; }
      const lines: [string, string | number | null][] = [
        ['Name', info.name], ['Epoch', info.epoch], ['Version', info.version], ['Release', info.release],
        ['Architecture', info.arch], ['Source RPM', info.sourcerpm], ['Summary', info.summary], ['License', info.license],
        ['Build time', info.buildtime === null ? null : new Date(info.buildtime * 1000).toISOString()],
        ['Payload', `${info.payloadFormat ?? '(none)'} / ${info.payloadCompressor ?? '(none)'} (detected ${pkg.compression ?? 'unknown'})`],
        ['Files', pkg.files.length],
      ];
      for (const [k, v] of lines) out(`${k.padEnd(13)}: ${v ?? '(none)'}\n`);
      for (const kind of ['requires', 'provides', 'conflicts', 'obsoletes', 'recommends', 'suggests', 'supplements', 'enhances'] as const) {
        for (const d of info[kind]) out(`${kind.padEnd(13)}: ${d.name}${d.version ? ` ${cmp(d.flags)} ${d.version}` : ''}\n`);
      }
      for (const [k, s] of Object.entries(info.scripts)) out(`script       : %${k} (${s.interpreter ?? '/bin/sh'})\n`);
      for (const t of info.triggers) out(`trigger      : %${t.type} ${t.conditions.map((c) => c.name).join(', ')}\n`);
      for (const s of signatures) out(`signature    : ${s.algorithm}, key ID ${s.keyId || '(none)'}\n`);
    });

  rpm.command('ls')
    .description('list the files of a package (from its header)')
    .argument('<file>', 'RPM package')
    .option('--json', 'machine-readable JSON')
    .action(async (file: string, opts: { json?: boolean }) => {
      quietEpipe();
      const pkg = await openRpm(file);
      if (opts.json) { out(JSON.stringify(pkg.files.map(fileJson), null, 2) + '\n'); return; }
      for (const f of pkg.files) {
        const when = new Date(f.mtime * 1000).toISOString().slice(0, 16).replace('T', ' ');
        out(`${modeString(f.mode)} ${f.user.padEnd(8)} ${f.group.padEnd(8)} ${String(f.size).padStart(10)} ${when} ${f.path}${f.linkTo ? ` -> ${f.linkTo}` : ''}\n`);
      }
    });

  rpm.command('extract')
    .description('extract the payload into DIR (as rpm2cpio | cpio -idm; owners only when root); DIR must not exist')
    .argument('<file>', 'RPM package')
    .argument('<dir>', 'destination directory (created)')
    .option('--json', 'machine-readable JSON summary')
    .action(async (file: string, dir: string, opts: { json?: boolean }) => {
      const r = await extractRpm(file, resolve(dir));
      if (opts.json) out(JSON.stringify(r) + '\n');
      else out(`extracted ${r.files} files, ${r.dirs} directories, ${r.symlinks} symlinks, ${r.hardlinks} hard links (${r.bytes} bytes) into ${dir}\n`);
    });

  rpm.command('verify')
    .description('check header and payload digests and OpenPGP signatures; exit 0 only if all required checks pass')
    .argument('<file>', 'RPM package')
    .option('--keyring <file>', 'armored OpenPGP public key file (repeatable); signatures must then verify', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--require-signature', 'fail unless at least one signature verifies')
    .option('--json', 'machine-readable JSON report')
    .action(async (file: string, opts: { keyring: string[]; requireSignature?: boolean; json?: boolean }) => {
      const rep = await verifyRpm(file, { keyFiles: opts.keyring, requireSignature: opts.requireSignature });
      if (opts.json) out(JSON.stringify(rep, null, 2) + '\n');
      else {
        for (const d of rep.digests) out(`${d.name}: ${d.status.toUpperCase()}${d.status === 'bad' ? ` (expected ${d.expected}, got ${d.actual})` : ''}\n`);
        for (const s of rep.signatures) out(`${s.name}: V${s.version} ${s.algorithm}, key ID ${s.keyId}: ${s.status.toUpperCase()} (${s.detail})\n`);
        for (const k of rep.keyErrors) out(`key not usable: ${k}\n`);
        out(`${file}: ${rep.ok ? 'OK' : 'NOT OK'}\n`);
      }
      if (!rep.ok) process.exitCode = 1;
    });
}

function cmp(flags: number): string {
  return `${flags & 2 ? '<' : ''}${flags & 4 ? '>' : ''}${flags & 8 ? '=' : ''}`;
}
