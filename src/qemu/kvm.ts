/**
 * Whether qemu can use KVM here. /dev/kvm existing is not enough (nested or
 * restricted hosts open it and then fail to run a vCPU), so a probe guest is
 * booted: a one-sector BIOS boot program that writes "K" to COM1 and halts.
 * KVM counts as usable only when that character arrives. The answer is
 * cached for the process; INGOT_ACCEL=tcg|kvm overrides it.
 */
import { spawn } from 'node:child_process';
import { constants, accessSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const cache = new Map<string, Promise<boolean>>();

/** mov dx,0x3f8; mov al,'K'; out dx,al; mov al,10; out dx,al; hlt; jmp $-1 — then the boot signature. */
export function probeBootSector(): Uint8Array {
  const s = new Uint8Array(512);
  s.set([0xba, 0xf8, 0x03, 0xb0, 0x4b, 0xee, 0xb0, 0x0a, 0xee, 0xf4, 0xeb, 0xfd]);
  s[510] = 0x55; s[511] = 0xaa;
  return s;
}

export function kvmUsable(qemu: string, timeoutMs = 5000): Promise<boolean> {
  const forced = process.env.INGOT_ACCEL;
  if (forced === 'tcg') return Promise.resolve(false);
  if (forced === 'kvm') return Promise.resolve(true);
  let p = cache.get(qemu);
  if (!p) {
    p = probe(qemu, timeoutMs);
    cache.set(qemu, p);
  }
  return p;
}

async function probe(qemu: string, timeoutMs: number): Promise<boolean> {
  try {
    accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
  } catch {
    return false;
  }
  const dir = await mkdtemp(join(tmpdir(), 'ingot-kvm-'));
  try {
    const img = join(dir, 'probe.img');
    await writeFile(img, probeBootSector());
    return await new Promise<boolean>((resolve) => {
      const child = spawn(qemu, ['-nodefaults', '-no-user-config', '-display', 'none', '-serial', 'stdio', '-monitor', 'none',
        '-accel', 'kvm', '-cpu', 'host', '-m', '32', '-drive', `file=${img},format=raw,if=ide`], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
      let out = '';
      let stderr = '';
      const done = (ok: boolean) => {
        clearTimeout(timer);
        try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* gone */ }
        resolve(ok);
      };
      const timer = setTimeout(() => done(false), timeoutMs);
      child.stdout.on('data', (d: Buffer) => { out += d.toString('latin1'); if (out.includes('K')) done(!/KVM internal error|kvm run failed/i.test(stderr)); });
      child.stderr.on('data', (d: Buffer) => { stderr += d.toString('utf8'); if (/KVM internal error|kvm run failed|failed to initialize kvm/i.test(stderr)) done(false); });
      child.on('error', () => done(false));
      child.on('close', () => done(out.includes('K')));
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
