import { Option, type Command } from 'commander';
import { UsageError } from '../errors.js';
import { loadRepos, type RepoConfig } from '../repo/index.js';
import { resolve } from '../solve/index.js';
import { Provides } from '../solve/deps.js';
import { matchSpec } from '../solve/select.js';

const collect = (v: string, prev: string[]) => [...prev, v];

function repoConfigs(repos: string[]): RepoConfig[] {
  if (!repos.length) throw new UsageError('at least one --repo URL|DIR is required');
  return repos.map((r, i) => {
    const eq = /^([A-Za-z0-9_.-]+)=(.+)$/.exec(r);
    return eq && !/^[a-z]+:\/\//i.test(r) ? { id: eq[1], baseurl: eq[2] } : { id: `repo${i}`, baseurl: r };
  });
}

interface CommonOpts { repo: string[]; arch: string; releasever?: string; cacheDir?: string; cache?: string; json?: boolean }

/** `ingot repo query` and `ingot repo resolve`. */
export function registerRepo(program: Command): void {
  const repo = program.command('repo').description('read yum/dnf repositories and resolve package requests');

  repo.command('query')
    .description('list packages matching names, provides or file paths (all packages without arguments)')
    .option('--repo <URL|DIR|id=URL>', 'repository (repeatable)', collect, [])
    .option('--arch <arch>', 'target architecture', 'x86_64')
    .option('--releasever <ver>', 'value of $releasever')
    .option('--cache-dir <dir>', 'repository metadata and package cache (same as build)')
    .addOption(new Option('--cache <dir>').hideHelp())
    .option('--json', 'machine-readable output')
    .argument('[specs...]')
    .action(async (specs: string[], o: CommonOpts) => {
      const set = await loadRepos(repoConfigs(o.repo), { arch: o.arch, releasever: o.releasever, cacheDir: o.cacheDir ?? o.cache });
      const pool = set.pool;
      const paths = specs.filter((s) => s.startsWith('/'));
      if (paths.length) await set.ensureFileProviders(paths);
      const provides = new Provides(pool, () => true);
      let ids: number[];
      if (!specs.length) ids = Array.from({ length: pool.count }, (_, i) => i);
      else ids = [...new Set(specs.flatMap((s) => matchSpec(pool, provides, s, () => true).flat()))].sort((a, b) => a - b);
      const infos = ids.map((p) => pool.info(p));
      if (o.json) process.stdout.write(`${JSON.stringify(infos.map(({ id: _id, ...rest }) => rest), null, 2)}\n`);
      else for (const i of infos) process.stdout.write(`${i.nevra}\t${i.repo}\t${i.location}\n`);
      if (specs.length && !ids.length) process.exitCode = 1;
    });

  repo.command('resolve')
    .description('resolve package specs (names, globs, NEVRAs, provides, /paths, @group, @^environment, -exclusions) as dnf would')
    .option('--repo <URL|DIR|id=URL>', 'repository (repeatable)', collect, [])
    .option('--arch <arch>', 'target architecture (x86_64, i686, …)', 'x86_64')
    .option('--no-weak-deps', 'do not install Recommends/Supplements')
    .option('--releasever <ver>', 'value of $releasever')
    .option('--cache-dir <dir>', 'repository metadata and package cache (same as build)')
    .addOption(new Option('--cache <dir>').hideHelp())
    .option('--json', 'machine-readable output')
    .argument('<specs...>')
    .action(async (specs: string[], o: CommonOpts & { weakDeps: boolean }) => {
      const set = await loadRepos(repoConfigs(o.repo), { arch: o.arch, releasever: o.releasever, cacheDir: o.cacheDir ?? o.cache });
      const r = await resolve(set, { specs, arch: o.arch, weakDeps: o.weakDeps });
      if (o.json) {
        const install = r.install.map(({ id: _id, ...rest }) => rest);
        process.stdout.write(`${JSON.stringify({ install, order: r.order }, null, 2)}\n`);
      } else {
        for (const n of r.order) process.stdout.write(`${n}\n`);
        process.stderr.write(`${r.install.length} packages, ${r.install.reduce((s, p) => s + p.size, 0)} bytes to download\n`);
      }
    });
}
