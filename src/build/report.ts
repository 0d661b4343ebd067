/**
 * The files a build leaves beside its images, each written atomically: the
 * build report (JSON), the package manifest, the CycloneDX 1.5 SBOM
 * (`NAME.cdx.json`) and a CHECKSUM file in the format Fedora composes use
 * (`SHA256 (name) = hex`, which `sha256sum -c` also reads) covering every
 * image the build wrote.
 *
 * The manifest, SBOM and CHECKSUM are byte-identical across rebuilds of the
 * same inputs; the report also holds wall-clock stage timings and absolute
 * output paths (docs/reproducibility.md).
 */
import { existsSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { atomicOutput } from '../util/atomic.js';
import { cyclonedxBom } from '../provenance/cyclonedx.js';
import type { BuildReport } from './pipeline.js';

export function checksumLines(files: { path: string; sha256: string }[]): string {
  return files.map((f) => `# ${basename(f.path)}\nSHA256 (${basename(f.path)}) = ${f.sha256}\n`).join('');
}

let version: string | undefined;

/** ingot's own version (package.json above this module, in the source tree and in dist/). */
export function ingotVersion(): string {
  if (version) return version;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++, dir = dirname(dir)) {
    const p = join(dir, 'package.json');
    if (!existsSync(p)) continue;
    const j = JSON.parse(readFileSync(p, 'utf8')) as { name?: string; version?: string };
    if (j.name === 'ingot' && j.version) return (version = j.version);
  }
  return (version = '0.0.0');
}

/** The installed-package manifest: NEVRA, SHA-256 of the RPM, source RPM, license, repository. */
export function manifestOf(report: BuildReport): { nevra: string; sha256: string; sourcerpm: string | null; license: string; repo: string }[] {
  return report.packages.map((p) => ({ nevra: p.nevra, sha256: p.sha256, sourcerpm: p.sourcerpm, license: p.license, repo: p.repo }));
}

export function sbomOf(report: BuildReport): Record<string, unknown> {
  return cyclonedxBom({
    name: report.name, arch: report.arch, seed: report.seed, sourceDateEpoch: report.sourceDateEpoch,
    os: report.os, packages: report.packages, tool: { name: 'ingot', version: ingotVersion() },
  });
}

const json = (v: unknown) => JSON.stringify(v, null, 2) + '\n';

async function put(path: string, text: string): Promise<void> {
  await atomicOutput(path, (tmp) => writeFile(tmp, text));
}

export async function writeReportFiles(outDir: string, report: BuildReport): Promise<string> {
  const reportPath = join(outDir, `${report.name}.report.json`);
  await put(reportPath, json(report));
  await put(join(outDir, `${report.name}.manifest.json`), json(manifestOf(report)));
  await put(join(outDir, `${report.name}.cdx.json`), json(sbomOf(report)));
  await put(join(outDir, 'CHECKSUM'), checksumLines(report.outputs));
  return reportPath;
}
