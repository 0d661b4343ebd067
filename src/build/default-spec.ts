/**
 * The embedded default image (`ingot build` with no SPEC): the bootable
 * fixture repository's packages on a hybrid GPT disk (BIOS boot partition +
 * ESP + root) that boots on BIOS (GRUB) and UEFI, written as qcow2. For
 * `--arch i686` the fixture repository has no 32-bit EFI GRUB: BIOS (GRUB on
 * GPT) only.
 */
import type { ImageSpecInput } from '../spec/model.js';

export const DEFAULT_BOOT_MARKER = 'INGOT-BOOT-OK';

export function defaultSpecInput(repoDir: string, arch = 'x86_64'): ImageSpecInput {
  const i686 = arch === 'i686' || arch === 'i386';
  return {
    name: 'ingot-default',
    description: `ingot default image: Debian ${i686 ? '686' : 'cloud'} kernel + busybox init that prints a marker and powers off`,
    arch: i686 ? 'i686' : 'x86_64',
    repositories: [{ name: 'fixtures', baseurl: [repoDir] }],
    packages: {
      include: ['ingot-base', 'ingot-marker', 'busybox-static', 'kernel', 'grub-pc-bin', ...(i686 ? [] : ['grub-efi-amd64-bin'])],
      core: false,
      weakDeps: false,
    },
    disk: {
      table: 'gpt',
      partitions: [
        { size: '1MiB', fs: 'biosboot' },
        ...(i686 ? [] : [{ mount: '/boot/efi', size: '64MiB', fs: 'efi' as const, label: 'ESP' }]),
        { mount: '/', size: '256MiB', fs: 'ext4', label: 'root', grow: true },
      ],
    },
    bootloader: { kind: 'grub', timeout: 1, firmware: i686 ? 'bios' : 'hybrid', kernelArgs: ['console=ttyS0', 'panic=-1'] },
    selinux: 'disabled',
    outputs: [{ format: 'qcow2' }],
  };
}
