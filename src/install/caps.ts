/**
 * File capabilities: rpm stores them as libcap text (`cap_net_raw=ep`); the
 * filesystem wants the `security.capability` xattr as a little-endian
 * `vfs_cap_data` (linux/capability.h, revision 2: magic_etc, then permitted
 * and inheritable words for capabilities 0–31 and 32–63).
 */
import { IngotError } from '../errors.js';

/** Capability numbers, linux/capability.h order. */
export const CAPABILITIES = [
  'chown', 'dac_override', 'dac_read_search', 'fowner', 'fsetid', 'kill', 'setgid', 'setuid', 'setpcap',
  'linux_immutable', 'net_bind_service', 'net_broadcast', 'net_admin', 'net_raw', 'ipc_lock', 'ipc_owner',
  'sys_module', 'sys_rawio', 'sys_chroot', 'sys_ptrace', 'sys_pacct', 'sys_admin', 'sys_boot', 'sys_nice',
  'sys_resource', 'sys_time', 'sys_tty_config', 'mknod', 'lease', 'audit_write', 'audit_control', 'setfcap',
  'mac_override', 'mac_admin', 'syslog', 'wake_alarm', 'block_suspend', 'audit_read', 'perfmon', 'bpf',
  'checkpoint_restore',
] as const;

const VFS_CAP_REVISION_2 = 0x02000000;
const VFS_CAP_FLAGS_EFFECTIVE = 0x000001;

export class CapabilityTextError extends IngotError {
  constructor(text: string, path: string, why: string) {
    super('BAD_CAPS', `bad file capabilities '${text}': ${why}`, { file: path, field: 'FILECAPS' });
  }
}

/** Parse libcap's text form (cap_from_text) into the vfs_cap_data xattr value. */
export function encodeFileCaps(text: string, path = ''): Uint8Array {
  let permitted = 0n, inheritable = 0n, effective = 0n;
  const all = (1n << BigInt(CAPABILITIES.length)) - 1n;
  for (const clause of text.trim().split(/\s+/).filter(Boolean)) {
    const m = /^([a-z_0-9,]*)([=+-].*)$/i.exec(clause);
    if (!m) throw new CapabilityTextError(text, path, `cannot parse '${clause}'`);
    let set = 0n;
    const names = m[1]!.toLowerCase();
    if (names === '' || names === 'all') set = all;
    else {
      for (const n of names.split(',')) {
        const idx = CAPABILITIES.indexOf(n.replace(/^cap_/, '') as (typeof CAPABILITIES)[number]);
        if (idx < 0) throw new CapabilityTextError(text, path, `unknown capability ${n}`);
        set |= 1n << BigInt(idx);
      }
    }
    // Operator groups: `=flags`, `+flags`, `-flags`, possibly chained (`+e-i`).
    for (const op of m[2]!.match(/[=+-][eip]*/gi) ?? []) {
      const flags = op.slice(1).toLowerCase();
      if (op[0] === '=') { permitted &= ~set; inheritable &= ~set; effective &= ~set; }
      const apply = (cur: bigint, f: string): bigint => !flags.includes(f) ? cur : op[0] === '-' ? cur & ~set : cur | set;
      permitted = apply(permitted, 'p');
      inheritable = apply(inheritable, 'i');
      effective = apply(effective, 'e');
    }
  }
  if (effective !== 0n && effective !== (permitted | inheritable)) {
    throw new CapabilityTextError(text, path, 'the effective set must be empty or equal permitted|inheritable (Linux vfs_cap_data has one effective bit)');
  }
  const out = Buffer.alloc(20);
  out.writeUInt32LE(VFS_CAP_REVISION_2 | (effective !== 0n ? VFS_CAP_FLAGS_EFFECTIVE : 0), 0);
  out.writeUInt32LE(Number(permitted & 0xffffffffn), 4);
  out.writeUInt32LE(Number(inheritable & 0xffffffffn), 8);
  out.writeUInt32LE(Number(permitted >> 32n), 12);
  out.writeUInt32LE(Number(inheritable >> 32n), 16);
  return out;
}
