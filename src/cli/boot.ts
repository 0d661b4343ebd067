import type { Command } from 'commander';
import { UsageError } from '../errors.js';
import { BootError, bootImage, type Accel, type DiskBus, type Firmware, type GuestArch } from '../qemu/runner.js';
import { parseDiskFormat } from '../qemu/format.js';

interface BootCliOptions {
  firmware: string; arch: string; expect?: string; timeout: string; memory: string; serialLog?: string;
  format?: string; bus: string; accel: string; json?: boolean; quiet?: boolean;
}

function oneOf<T extends string>(name: string, value: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value)) throw new UsageError(`--${name} must be one of ${allowed.join(', ')} (got ${JSON.stringify(value)})`);
  return value as T;
}

function positive(name: string, value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`--${name} must be a positive number (got ${JSON.stringify(value)})`);
  return n;
}

function usage<T>(f: () => T): T {
  try { return f(); } catch (e) { throw new UsageError((e as Error).message); }
}

export function registerBoot(program: Command): void {
  program
    .command('boot')
    .description('boot a disk image in qemu through its own firmware and bootloader; succeed when the console shows --expect')
    .argument('<image>', 'disk image: raw, qcow2, vmdk or vhd')
    .option('--firmware <fw>', 'bios or uefi', 'bios')
    .option('--arch <arch>', 'x86_64 or i686', 'x86_64')
    .option('--expect <regex>', 'console text meaning success', 'INGOT-BOOT-OK')
    .option('--timeout <s>', 'seconds before giving up', '120')
    .option('--memory <mb>', 'guest memory in MiB', '512')
    .option('--serial-log <file>', 'write the whole console output here')
    .option('--format <fmt>', 'image format (raw, qcow2, vmdk, vhd); detected when absent')
    .option('--bus <bus>', 'disk bus: virtio, ide, scsi, nvme', 'virtio')
    .option('--accel <a>', 'auto (KVM when it works, else TCG), kvm or tcg', 'auto')
    .option('--json', 'print the result as JSON')
    .option('-q, --quiet', 'do not echo the console')
    .action(async (image: string, o: BootCliOptions) => {
      let expect: RegExp;
      try { expect = new RegExp(o.expect ?? 'INGOT-BOOT-OK'); } catch (e) { throw new UsageError(`--expect is not a regular expression: ${(e as Error).message}`); }
      const echo = !o.json && !o.quiet;
      const result = await bootImage({
        image,
        firmware: oneOf<Firmware>('firmware', o.firmware, ['bios', 'uefi']),
        arch: oneOf<GuestArch>('arch', o.arch, ['x86_64', 'i686']),
        expect,
        timeout: positive('timeout', o.timeout),
        memoryMB: positive('memory', o.memory),
        serialLog: o.serialLog,
        format: o.format ? usage(() => parseDiskFormat(o.format!)) : undefined,
        bus: oneOf<DiskBus>('bus', o.bus, ['virtio', 'ide', 'scsi', 'nvme']),
        accel: oneOf<Accel>('accel', o.accel, ['auto', 'kvm', 'tcg']),
        onLine: echo ? (l) => process.stderr.write(`| ${l}\n`) : undefined,
      });
      if (o.json) {
        process.stdout.write(`${JSON.stringify({ ok: result.ok, outcome: result.outcome, matchedLine: result.matchedLine, seconds: result.seconds, accel: result.accel, tail: result.tail, exitCode: result.exitCode })}\n`);
      }
      if (!result.ok) {
        if (!echo && !o.json) for (const l of result.tail.slice(-20)) process.stderr.write(`| ${l}\n`);
        const why = result.outcome === 'timeout' ? `no ${expect} within ${o.timeout} s`
          : result.outcome === 'panic' ? 'kernel panic'
            : `qemu exited (status ${result.exitCode}) before ${expect}${result.qemuStderr ? `: ${result.qemuStderr.trim().split('\n').pop()}` : ''}`;
        throw new BootError(`boot failed: ${why} (${result.seconds.toFixed(1)} s, ${result.accel})`, result);
      }
      if (!o.json) process.stdout.write(`boot ok: ${result.matchedLine} (${result.seconds.toFixed(1)} s, ${result.accel})\n`);
    });
}
