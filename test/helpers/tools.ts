/**
 * Oracle tools for tests. A test that needs an external program calls
 * `requireTool`: the program is installed from Debian when missing, and the
 * test fails naming the package when that is impossible. Never a skip.
 */
import { spawnSync } from 'node:child_process';
import { MissingToolError } from '../../src/errors.js';

/** Program → Debian package providing it. */
export const TOOL_PACKAGES: Record<string, string> = {
  rpm: 'rpm', rpm2cpio: 'rpm2cpio', rpmbuild: 'rpm', rpmkeys: 'rpm', cpio: 'cpio',
  e2fsck: 'e2fsprogs', debugfs: 'e2fsprogs', mke2fs: 'e2fsprogs', dumpe2fs: 'e2fsprogs', resize2fs: 'e2fsprogs',
  'qemu-img': 'qemu-utils', 'qemu-system-x86_64': 'qemu-system-x86',
  sgdisk: 'gdisk', sfdisk: 'fdisk', fdisk: 'fdisk',
  'fsck.vfat': 'dosfstools', 'mkfs.vfat': 'dosfstools', mdir: 'mtools', mtype: 'mtools', mcopy: 'mtools',
  xz: 'xz-utils', zstd: 'zstd', bzip2: 'bzip2', gzip: 'gzip', tar: 'tar',
  setfattr: 'attr', getfattr: 'attr', setcap: 'libcap2-bin', python3: 'python3', openssl: 'openssl',
  createrepo_c: 'createrepo-c', dnf: 'dnf', pwck: 'passwd', grpck: 'passwd', sqlite3: 'sqlite3',
  jsonschema: 'python3-jsonschema', matchpathcon: 'selinux-utils', systemctl: 'systemd', ldconfig: 'libc-bin', nmcli: 'network-manager', findmnt: 'util-linux', 'update-alternatives': 'dpkg', chroot: 'coreutils', script: 'bsdutils', unzip: 'unzip', zip: 'zip',
  xmllint: 'libxml2-utils', faketime: 'faketime', sha256sum: 'coreutils',
};

export function which(tool: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${JSON.stringify(tool)}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

let updated = false;

/** Install Debian packages (once per process runs `apt-get update`). Returns false on failure. */
export function aptInstall(pkgs: string[]): boolean {
  if (pkgs.length === 0) return true;
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  if (!updated) {
    spawnSync('apt-get', ['update', '-qq'], { stdio: 'ignore', env });
    updated = true;
  }
  const r = spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...pkgs], { stdio: 'ignore', env });
  return r.status === 0;
}

/** Ensure `tool` is on PATH, installing its Debian package if needed; throws MissingToolError otherwise. */
export function requireTool(tool: string, pkg = TOOL_PACKAGES[tool]): string {
  const found = which(tool);
  if (found) return found;
  if (!pkg) throw new Error(`no Debian package known for ${tool}`);
  aptInstall([pkg]);
  const again = which(tool);
  if (!again) throw new MissingToolError(tool, pkg);
  return again;
}
