/** UEFI firmware (OVMF) for qemu, from the locations distributions install it to. */
import { existsSync } from 'node:fs';
import { IngotError } from '../errors.js';
import type { GuestArch } from './runner.js';

export interface OvmfFiles { code: string; vars: string }

export class FirmwareMissingError extends IngotError {
  constructor(arch: GuestArch, searched: string[]) {
    const pkg = arch === 'i686' ? 'ovmf-ia32' : 'ovmf';
    super('FIRMWARE_MISSING', `no OVMF UEFI firmware for ${arch} (searched ${searched.join(', ')}): install the Debian package '${pkg}' (Fedora: edk2-ovmf)`);
  }
}

/** Code + variable-store templates, in order of preference (Debian 4M builds, Debian 2M, Fedora, Arch). */
const CANDIDATES: Record<GuestArch, OvmfFiles[]> = {
  x86_64: [
    { code: '/usr/share/OVMF/OVMF_CODE_4M.fd', vars: '/usr/share/OVMF/OVMF_VARS_4M.fd' },
    { code: '/usr/share/OVMF/OVMF_CODE.fd', vars: '/usr/share/OVMF/OVMF_VARS.fd' },
    { code: '/usr/share/edk2/ovmf/OVMF_CODE.fd', vars: '/usr/share/edk2/ovmf/OVMF_VARS.fd' },
    { code: '/usr/share/edk2/x64/OVMF_CODE.fd', vars: '/usr/share/edk2/x64/OVMF_VARS.fd' },
  ],
  i686: [
    { code: '/usr/share/OVMF/OVMF32_CODE_4M.fd', vars: '/usr/share/OVMF/OVMF32_VARS_4M.fd' },
    { code: '/usr/share/edk2/ovmf-ia32/OVMF_CODE.fd', vars: '/usr/share/edk2/ovmf-ia32/OVMF_VARS.fd' },
  ],
};

export function findOvmf(arch: GuestArch, candidates: OvmfFiles[] = CANDIDATES[arch]): OvmfFiles {
  for (const c of candidates) if (existsSync(c.code) && existsSync(c.vars)) return c;
  throw new FirmwareMissingError(arch, candidates.map((c) => c.code));
}
