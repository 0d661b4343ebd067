/**
 * Boot Loader Specification type 1 entries (UAPI group, "Boot Loader
 * Specification", Type #1 Boot Loader Entry Keys): one `key value` per line,
 * `#` comments. systemd-boot reads them from the ESP; Fedora's GRUB reads them
 * from /boot/loader/entries with its `blscfg` command (a Fedora patch: Debian's
 * GRUB has no blscfg module). kernel-install writes them in both layouts.
 */
import type { StagingTree } from '../tree/tree.js';
import { readAll } from './depmod.js';

export interface BlsEntry {
  title: string;
  version?: string;
  machineId?: string;
  /** Kernel and initrd paths, from the root of the file system the entry is read from. */
  linux: string;
  initrd?: string;
  options?: string;
  /** UEFI architecture name (`x64`, `ia32`): only on the ESP, where one partition may serve several. */
  architecture?: string;
}

/** The entry's file text, keys in the order the specification lists them. */
export function blsEntryText(e: BlsEntry): string {
  const lines = [`title ${e.title}`];
  if (e.version) lines.push(`version ${e.version}`);
  if (e.machineId) lines.push(`machine-id ${e.machineId}`);
  lines.push(`linux ${e.linux}`);
  if (e.initrd) lines.push(`initrd ${e.initrd}`);
  if (e.options) lines.push(`options ${e.options}`);
  if (e.architecture) lines.push(`architecture ${e.architecture}`);
  return `${lines.join('\n')}\n`;
}

/** Parse an entry: unknown keys are ignored, as the specification asks; repeated `options` are joined. */
export function parseBlsEntry(text: string): BlsEntry | undefined {
  const e: Partial<BlsEntry> = {};
  const options: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^(\S+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const [, key, value] = m as unknown as [string, string, string];
    switch (key) {
      case 'title': e.title = value; break;
      case 'version': e.version = value; break;
      case 'machine-id': e.machineId = value; break;
      case 'linux': e.linux = value; break;
      case 'initrd': e.initrd ??= value; break;
      case 'options': options.push(value); break;
      case 'architecture': e.architecture = value; break;
      default: break;
    }
  }
  if (!e.linux) return undefined;
  if (options.length) e.options = options.join(' ');
  return { title: e.title ?? e.version ?? 'Linux', ...e } as BlsEntry;
}

/** The entry file name kernel-install uses: ENTRY-TOKEN-KVER.conf. */
export function blsEntryName(token: string, kernelVersion: string): string {
  return `${token}-${kernelVersion}.conf`;
}

/** /etc/machine-id when the image has a real one (not empty, not "uninitialized"). */
export async function machineId(tree: StagingTree): Promise<string | undefined> {
  const n = tree.lookup('/etc/machine-id');
  if (n?.type !== 'file') return undefined;
  const id = Buffer.from(await readAll(n, '/etc/machine-id')).toString('latin1').trim();
  return /^[0-9a-f]{32}$/.test(id) ? id : undefined;
}

/** Does the image's GRUB for a platform (module directory, e.g. /usr/lib/grub/i386-pc) have the blscfg module? */
export function grubHasBlscfg(tree: StagingTree, platformDir: string): boolean {
  return tree.lookup(`${platformDir}/blscfg.mod`)?.type === 'file';
}

/** Does a prebuilt GRUB EFI image have blscfg linked in? Its embedded module list names it ("blscfg" + NUL). */
export function grubImageHasBlscfg(image: Uint8Array): boolean {
  return Buffer.from(image.buffer, image.byteOffset, image.length).indexOf('blscfg\0', 0, 'latin1') >= 0;
}
