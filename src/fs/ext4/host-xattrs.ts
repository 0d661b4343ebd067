/**
 * Extended attributes of a whole host directory in one `getfattr` run (Node
 * has no xattr syscalls): the map feeds importDirectory's `readXattrs`, so
 * `mkfs ext4 --from-dir --xattrs` keeps SELinux labels and file capabilities.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { Ext4Error } from './errors.js';

/** getfattr escapes unusual bytes in names as \ooo (octal) and backslash as \\. */
function unescape(s: string): string {
  const bytes: number[] = [];
  const raw = Buffer.from(s, 'utf8');
  for (let i = 0; i < raw.length; i++) {
    if (raw[i] === 0x5c && i + 3 < raw.length + 0 && /^[0-7]{3}$/.test(raw.subarray(i + 1, i + 4).toString('latin1'))) {
      bytes.push(parseInt(raw.subarray(i + 1, i + 4).toString('latin1'), 8));
      i += 3;
    } else if (raw[i] === 0x5c && raw[i + 1] === 0x5c) {
      bytes.push(0x5c);
      i += 1;
    } else {
      bytes.push(raw[i]!);
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/** All xattrs under `dir` (absolute path) by absolute host path, not following symlinks. */
export async function readHostXattrs(dir: string): Promise<Map<string, Map<string, Uint8Array>>> {
  const out = new Map<string, Map<string, Uint8Array>>();
  const child = spawn('getfattr', ['-R', '-P', '-d', '-m', '-', '-e', 'hex', '--absolute-names', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  const failed = new Promise<never>((_, reject) => child.on('error', (e: NodeJS.ErrnoException) => reject(
    new Ext4Error('EXT4_NO_GETFATTR', `cannot read extended attributes: getfattr ${e.code === 'ENOENT' ? 'is not installed (Debian/Fedora package "attr")' : e.message}`),
  )));
  let current: Map<string, Uint8Array> | undefined;
  const lines = (async () => {
    for await (const line of createInterface({ input: child.stdout })) {
      if (line.startsWith('# file: ')) {
        current = new Map();
        out.set(unescape(line.slice(8)), current);
      } else if (current && line.includes('=')) {
        const eq = line.indexOf('=');
        const v = line.slice(eq + 1);
        current.set(line.slice(0, eq), v.startsWith('0x') ? Buffer.from(v.slice(2), 'hex') : Buffer.from(v.replace(/^"|"$/g, ''), 'utf8'));
      }
    }
  })();
  await Promise.race([lines, failed]);
  const code: number = await new Promise((r) => (child.exitCode !== null ? r(child.exitCode) : child.on('close', (c) => r(c ?? 1))));
  if (code !== 0 && out.size === 0 && stderr) throw new Ext4Error('EXT4_XATTR_READ', `getfattr failed: ${stderr.split('\n')[0]}`, { file: dir });
  return out;
}
