/**
 * Boot a disk image in qemu through its own firmware and bootloader (never
 * `-kernel`) and watch the serial console for a marker.
 *
 * The console is the first serial port on qemu's stdout. qemu runs in its own
 * process group and is always killed: on success, on timeout, on a kernel
 * panic, and when this process exits.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { access, constants, copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IngotError, MissingToolError } from '../errors.js';
import { detectImageFormat, type QemuDiskFormat } from './format.js';
import { findOvmf } from './firmware.js';
import { kvmUsable } from './kvm.js';

export type Firmware = 'bios' | 'uefi';
export type GuestArch = 'x86_64' | 'i686';
export type Accel = 'auto' | 'kvm' | 'tcg';
export type DiskBus = 'virtio' | 'ide' | 'scsi' | 'nvme';

export interface BootOptions {
  image: string;
  /** Disk format as qemu names it; detected from the file when absent. */
  format?: QemuDiskFormat;
  firmware?: Firmware;
  arch?: GuestArch;
  /** The console text that means success (default: the fixture marker). */
  expect?: RegExp;
  /** Seconds before giving up (default 120). */
  timeout?: number;
  memoryMB?: number;
  /** Copy of everything the console printed. */
  serialLog?: string;
  accel?: Accel;
  bus?: DiskBus;
  /** Each console line as it arrives. */
  onLine?: (line: string) => void;
  /** Number of console lines kept for the result (default 40). */
  tailLines?: number;
}

export type BootOutcome = 'matched' | 'timeout' | 'panic' | 'exited';

export interface BootResult {
  ok: boolean;
  outcome: BootOutcome;
  /** The console line that matched `expect`. */
  matchedLine?: string;
  seconds: number;
  accel: 'kvm' | 'tcg';
  /** The last console lines. */
  tail: string[];
  /** qemu's own stderr (warnings, errors). */
  qemuStderr: string;
  exitCode: number | null;
  command: string[];
}

export class BootError extends IngotError {
  constructor(message: string, readonly result?: BootResult) {
    super('BOOT_FAILED', message);
  }
}

export const DEFAULT_MARKER = /INGOT-BOOT-OK/;
const PANIC = /Kernel panic - not syncing|---\[ end Kernel panic/;
/** Printed by qemu when KVM cannot run the guest. */
const KVM_FAILURE = /KVM internal error|kvm run failed|failed to initialize kvm|Could not access KVM kernel module/i;

function qemuBinary(arch: GuestArch): string {
  return arch === 'i686' ? 'qemu-system-i386' : 'qemu-system-x86_64';
}

/** The qemu command line for a boot test (exported for tests and `--dry-run`-style inspection). */
export function qemuArgs(o: {
  image: string; format: QemuDiskFormat; accel: 'kvm' | 'tcg'; memoryMB: number; bus: DiskBus;
  ovmf?: { code: string; vars: string };
}): string[] {
  const a = ['-nodefaults', '-no-user-config', '-display', 'none', '-serial', 'stdio', '-monitor', 'none',
    '-no-reboot', '-m', String(o.memoryMB), '-accel', o.accel, '-snapshot'];
  if (o.accel === 'kvm') a.push('-cpu', 'host');
  if (o.ovmf) {
    a.push('-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${o.ovmf.code}`);
    a.push('-drive', `if=pflash,format=raw,unit=1,file=${o.ovmf.vars}`);
  }
  const file = `file=${o.image.replace(/,/g, ',,')},format=${o.format}`;
  switch (o.bus) {
    case 'virtio': a.push('-drive', `${file},if=virtio`); break;
    case 'ide': a.push('-drive', `${file},if=ide`); break;
    case 'scsi': a.push('-device', 'virtio-scsi-pci,id=scsi0', '-drive', `${file},if=none,id=d0`, '-device', 'scsi-hd,drive=d0,bus=scsi0.0'); break;
    case 'nvme': a.push('-drive', `${file},if=none,id=d0`, '-device', 'nvme,drive=d0,serial=ingot0'); break;
  }
  return a;
}

/** Boot the image and report what the console showed. Never throws for a failed boot: see `result.ok`. */
export async function bootImage(opts: BootOptions): Promise<BootResult> {
  try {
    await access(opts.image, constants.R_OK);
  } catch (e) {
    throw new BootError(`cannot read the image ${opts.image} (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  const arch = opts.arch ?? 'x86_64';
  const firmware = opts.firmware ?? 'bios';
  const format = opts.format ?? await detectImageFormat(opts.image);
  const bin = qemuBinary(arch);
  const accel = opts.accel === 'kvm' || opts.accel === 'tcg' ? opts.accel : (await kvmUsable(bin)) ? 'kvm' : 'tcg';
  const scratch = await mkdtemp(join(tmpdir(), 'ingot-qemu-'));
  try {
    let ovmf: { code: string; vars: string } | undefined;
    if (firmware === 'uefi') {
      const fw = findOvmf(arch);
      const vars = join(scratch, 'OVMF_VARS.fd');
      await copyFile(fw.vars, vars); // qemu writes NVRAM: never into the system copy
      ovmf = { code: fw.code, vars };
    }
    const args = qemuArgs({ image: opts.image, format, accel, memoryMB: opts.memoryMB ?? 512, bus: opts.bus ?? 'virtio', ovmf });
    const result = await runQemu(bin, args, accel, opts);
    if (accel === 'kvm' && opts.accel !== 'kvm' && !result.ok && KVM_FAILURE.test(result.qemuStderr)) {
      // KVM opened but could not run this guest: the same boot under TCG.
      return await runQemu(bin, qemuArgs({ image: opts.image, format, accel: 'tcg', memoryMB: opts.memoryMB ?? 512, bus: opts.bus ?? 'virtio', ovmf }), 'tcg', opts);
    }
    return result;
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

const live = new Set<ChildProcess>();
let exitHook = false;

function killGroup(child: ChildProcess): void {
  if (child.pid === undefined) return;
  try { process.kill(-child.pid, 'SIGKILL'); } catch { /* already gone */ }
}

function runQemu(bin: string, args: string[], accel: 'kvm' | 'tcg', opts: BootOptions): Promise<BootResult> {
  const expect = opts.expect ?? DEFAULT_MARKER;
  const timeoutMs = Math.max(1, opts.timeout ?? 120) * 1000;
  const keep = opts.tailLines ?? 40;
  if (!exitHook) {
    exitHook = true;
    process.on('exit', () => { for (const c of live) killGroup(c); });
    // qemu has its own process group, so a terminal's ^C does not reach it: pass it on, then die as asked.
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
      const onSignal = () => {
        for (const c of live) killGroup(c);
        process.removeListener(sig, onSignal);
        process.kill(process.pid, sig);
      };
      process.on(sig, onSignal);
    }
  }
  return new Promise<BootResult>((resolve, reject) => {
    const t0 = performance.now();
    const tail: string[] = [];
    let partial = '';
    let stderr = '';
    let log: WriteStream | undefined;
    if (opts.serialLog) log = createWriteStream(opts.serialLog);
    let child: ChildProcess;
    try {
      child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    } catch (e) {
      reject(e);
      return;
    }
    live.add(child);
    let settled = false;
    let panicTimer: NodeJS.Timeout | undefined;
    let partialTimer: NodeJS.Timeout | undefined;
    const finish = (outcome: BootOutcome, matchedLine?: string, exitCode: number | null = null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (panicTimer) clearTimeout(panicTimer);
      if (partialTimer) clearTimeout(partialTimer);
      killGroup(child);
      live.delete(child);
      if (partial) pushLine(partial);
      const done = () => resolve({
        ok: outcome === 'matched', outcome, matchedLine, seconds: (performance.now() - t0) / 1000, accel,
        tail: tail.slice(-keep), qemuStderr: stderr, exitCode, command: [bin, ...args],
      });
      if (log) log.end(done); else done();
    };
    const pushLine = (raw: string) => {
      const line = raw.replace(/\r/g, '').replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');
      tail.push(line);
      if (tail.length > keep * 4) tail.splice(0, tail.length - keep);
      opts.onLine?.(line);
      if (settled) return;
      if (expect.test(line)) finish('matched', line);
      else if (PANIC.test(line) && !panicTimer) panicTimer = setTimeout(() => finish('panic'), 500); // let the trace follow
    };
    const timer = setTimeout(() => finish('timeout'), timeoutMs);
    child.stdout!.on('data', (d: Buffer) => {
      log?.write(d);
      const text = partial + d.toString('latin1');
      const lines = text.split('\n');
      partial = lines.pop() ?? '';
      for (const l of lines) pushLine(l);
      // A marker printed without a newline (e.g. a bootloader prompt) still
      // counts, after a moment for the rest of its line to arrive.
      if (!settled && partial && !partialTimer && expect.test(partial)) {
        partialTimer = setTimeout(() => { if (partial) { const p = partial; partial = ''; pushLine(p); } }, 300);
      }
    });
    child.stderr!.on('data', (d: Buffer) => {
      if (stderr.length < 65536) stderr += d.toString('utf8');
      if (accel === 'kvm' && KVM_FAILURE.test(stderr)) finish('exited');
    });
    child.on('error', (e: NodeJS.ErrnoException) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      live.delete(child);
      log?.end();
      reject(e.code === 'ENOENT' ? new MissingToolError(bin, 'qemu-system-x86') : e);
    });
    // 'close' comes after the console pipe has delivered its last bytes.
    child.on('close', (code) => finish('exited', undefined, code));
  });
}
