/**
 * The files a build leaves beside its images: the build report (JSON), the
 * package manifest, and a CHECKSUM file in the format Fedora composes use
 * (`SHA256 (name) = hex`), each written atomically.
 */
import { writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { atomicOutput } from '../util/atomic.js';
import type { BuildReport } from './pipeline.js';

export function checksumLines(files: { path: string; sha256: string }[]): string {
  return files.map((f) => `# ${basename(f.path)}\nSHA256 (${basename(f.path)}) = ${f.sha256}\n`).join('');
}

export async function writeReportFiles(outDir: string, report: BuildReport): Promise<string> {
  const reportPath = join(outDir, `${report.name}.report.json`);
  await atomicOutput(reportPath, (tmp) => writeFile(tmp, JSON.stringify(report, null, 2) + '\n'));
  const manifest = join(outDir, `${report.name}.manifest.json`);
  await atomicOutput(manifest, (tmp) => writeFile(tmp, JSON.stringify(report.packages.map((p) => ({
    nevra: p.nevra, sha256: p.sha256, sourcerpm: p.sourcerpm, license: p.license, repo: p.repo,
  })), null, 2) + '\n'));
  await atomicOutput(join(outDir, 'CHECKSUM'), (tmp) => writeFile(tmp, checksumLines(report.outputs)));
  return reportPath;
}
