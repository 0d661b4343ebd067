/** Run the ingot CLI from source in a child process. */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const ROOT = join(fileURLToPath(import.meta.url), '..', '..', '..');
export const SHARED = join(ROOT, '..', 'shared');

export interface CliResult { code: number; stdout: string; stderr: string }

export function ingot(args: string[], opts: { cwd?: string; input?: string; env?: Record<string, string> } = {}): CliResult {
  // tsx's loader by absolute URL: `--import tsx` would resolve from the child's cwd.
  const loader = pathToFileURL(join(ROOT, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href;
  const r = spawnSync(process.execPath, ['--import', loader, join(ROOT, 'src/cli/main.ts'), ...args], {
    cwd: opts.cwd ?? ROOT, encoding: 'utf8', input: opts.input, maxBuffer: 1 << 30,
    env: { ...process.env, ...opts.env },
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}
