/**
 * Synthetic yum repositories (createrepo-like primary/filelists/repomd, no
 * real RPMs) with a seeded generator: packages in "source" families
 * (name, name-libs, name-devel), several versions of some names, shared
 * virtual capabilities with competing providers, soname provides, versioned
 * and rich (or/if/unless/with) requires, Requires(pre), file requires that
 * only filelists.xml satisfies, conflicts, obsoletes, recommends and
 * supplements. Used by the fuzz oracle test (dnf must agree) and by
 * bench/resolve.ts at Fedora scale.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createGzip } from 'node:zlib';

export interface SynthOptions {
  packages: number;
  seed: number;
  /** Files per package in filelists (primary keeps only /etc and bin paths, like createrepo). */
  files?: number;
  /** Probability scale for alternatives/conflicts (1 = default). */
  choice?: number;
  /** Share of names that also keep an older version (default 0.25; a released distribution repo has ~0). */
  oldVersions?: number;
  /** Distribution-like graph: requirements go to the core or to nearby packages; only core packages provide virtual capabilities. */
  layered?: boolean;
  /** Exponent skewing requirement targets towards early packages (default 0.7; larger = more layered). */
  skew?: number;
}

export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SYL = ['ab', 'ba', 'co', 'de', 'fi', 'ga', 'ho', 'ix', 'ju', 'ka', 'lo', 'mu', 'ne', 'or', 'pi', 'qu', 'ra', 'si', 'tu', 'vo', 'wy', 'xe', 'yo', 'ze'];

interface Dep { name: string; flags?: string; ver?: string; rel?: string; pre?: boolean }
interface Pkg {
  name: string; arch: string; ver: string; rel: string; epoch: string;
  provides: Dep[]; requires: Dep[]; conflicts: Dep[]; obsoletes: Dep[]; recommends: Dep[]; supplements: Dep[];
  files: string[];
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

function entry(d: Dep): string {
  let s = `<rpm:entry name="${esc(d.name)}"`;
  if (d.flags) s += ` flags="${d.flags}" epoch="0" ver="${esc(d.ver!)}"${d.rel !== undefined ? ` rel="${esc(d.rel)}"` : ''}`;
  if (d.pre) s += ' pre="1"';
  return `${s}/>`;
}

const primaryFile = (f: string) => f.startsWith('/etc/') || f.includes('bin/') || f === '/usr/lib/sendmail';

/** Generate the package list (deterministic for a seed). */
export function synthPackages(o: SynthOptions): Pkg[] {
  const r = rng(o.seed);
  const pick = <T>(a: T[]): T => a[Math.floor(r() * a.length)];
  const choice = o.choice ?? 1;
  const nfiles = o.files ?? 8;
  const pkgs: Pkg[] = [];
  const usedNames = new Set<string>();
  const virtuals: string[] = [];
  const nVirtual = Math.max(4, Math.floor(o.packages / 25));
  for (let i = 0; i < nVirtual; i++) virtuals.push(`cap-${pick(SYL)}${pick(SYL)}${i}`);
  const sonames: string[] = [];
  const provided: string[] = [];
  /** The first packages are a conflict-free "core" (like a distribution's base). */
  const core = Math.min(2000, Math.floor(o.packages / 4));
  const fileOnly: string[] = [];
  let fam = 0;
  while (pkgs.length < o.packages) {
    let base: string;
    let tries = 0;
    do {
      base = `${pick(SYL)}${pick(SYL)}${r() < 0.5 ? pick(SYL) : ''}${tries > 8 ? fam.toString(36) : ''}${fam % 7 === 0 ? `-${pick(['utils', 'tools', 'common', 'data'])}` : ''}`;
      tries++;
    } while (usedNames.has(base));
    usedNames.add(base);
    fam++;
    const members = [base, ...(r() < 0.5 ? [`${base}-libs`] : []), ...(r() < 0.3 ? [`${base}-devel`] : [])];
    const nver = r() < (o.oldVersions ?? 0.25) ? 2 : 1;
    const arch = r() < 0.2 ? 'noarch' : r() < 0.05 ? 'i686' : 'x86_64';
    for (let v = 0; v < nver; v++) {
      const ver = `${1 + Math.floor(r() * 5)}.${v * 2 + Math.floor(r() * 2)}${r() < 0.1 ? '~rc1' : r() < 0.1 ? '^git1' : ''}`;
      const rel = `${1 + Math.floor(r() * 3)}.fc40`;
      for (const name of members) {
        const pArch = name.endsWith('-devel') && arch === 'noarch' ? 'x86_64' : arch;
        const p: Pkg = { name, arch: pArch, ver, rel, epoch: '0', provides: [], requires: [], conflicts: [], obsoletes: [], recommends: [], supplements: [], files: [] };
        p.provides.push({ name, flags: 'EQ', ver, rel });
        if (pArch !== 'noarch') p.provides.push({ name: `${name}(x86-64)`, flags: 'EQ', ver, rel });
        if (name.endsWith('-libs')) {
          const so = `lib${base.replace(/-/g, '')}.so.${1 + v}()(64bit)`;
          p.provides.push({ name: so });
          sonames.push(so);
          p.files.push(`/usr/lib64/lib${base}.so.${1 + v}`);
        }
        if (r() < 0.12 * choice && (!o.layered || pkgs.length < core)) {
          const cap = pick(virtuals);
          if (!provided.includes(cap)) provided.push(cap);
          p.provides.push(r() < 0.5 ? { name: cap } : { name: cap, flags: 'EQ', ver: `${1 + Math.floor(r() * 3)}` });
        }
        if (!name.endsWith('-libs') && !name.endsWith('-devel')) p.files.push(`/usr/bin/${name}`, `/etc/${name}.conf`);
        for (let f = p.files.length; f < nfiles; f++) p.files.push(`/usr/share/${base}/${name}-${f}.dat`);
        if (r() < 0.05) fileOnly.push(p.files[p.files.length - 1]);
        // requirements on earlier packages (keeps the graph mostly layered, with some loops)
        const nreq = pkgs.length ? Math.floor(r() * 7) : 0;
        for (let k = 0; k < nreq; k++) {
          // most requirements point at early ("core") packages, as in a distribution;
          // layered: the rest stay within a package's own neighbourhood (its "stack")
          const t = o.layered
            ? pkgs[r() < 0.7 || pkgs.length <= core ? Math.floor(Math.pow(r(), 2) * Math.min(core, pkgs.length)) : Math.max(0, pkgs.length - 1 - Math.floor(r() * 300))]
            : pkgs[Math.floor(Math.pow(r(), o.skew ?? 0.7) * pkgs.length)];
          const x = r();
          if (x < 0.35) p.requires.push({ name: t.name });
          else if (x < 0.5) p.requires.push({ name: t.name, flags: 'GE', ver: t.ver, rel: '0' });
          else if (x < 0.6 && sonames.length) p.requires.push({ name: pick(sonames) });
          else if (x < 0.68 * choice && provided.length) p.requires.push({ name: pick(provided) });
          else if (x < 0.74) p.requires.push({ name: `(${t.name} or ${pick(pkgs).name})` });
          else if (x < 0.77) p.requires.push({ name: `(${t.name} if ${pick(pkgs).name})` });
          else if (x < 0.79) p.requires.push({ name: o.layered ? t.name : `(${t.name} unless ${pick(pkgs).name})` });
          else if (x < 0.81) { const cap = t.provides.find((c) => c.name.startsWith('cap-'))?.name; p.requires.push({ name: cap ? `(${cap} with ${t.name})` : t.name }); }
          else if (x < 0.84 && fileOnly.length) p.requires.push({ name: pick(fileOnly) });
          else if (x < 0.88) p.requires.push({ name: t.files.find((f) => f.startsWith('/usr/bin/')) ?? t.name, pre: r() < 0.5 });
          else p.requires.push({ name: t.name, pre: true });
        }
        if (members.length > 1 && name !== base) p.requires.push({ name: base, flags: 'EQ', ver, rel });
        if (r() < 0.03 * choice && pkgs.length > core) p.conflicts.push({ name: pick(pkgs).name });
        if (r() < 0.03 * choice && pkgs.length > core) { const t = pick(pkgs); p.conflicts.push({ name: t.name, flags: 'LT', ver: t.ver, rel: t.rel }); }
        if (r() < 0.02 && pkgs.length > core) { const t = pick(pkgs); p.obsoletes.push({ name: t.name, flags: 'LT', ver: '9', rel: '0' }); }
        if (r() < 0.15 && pkgs.length) p.recommends.push({ name: pick(pkgs).name });
        if (r() < 0.05 && provided.length) p.recommends.push({ name: pick(provided) });
        if (r() < 0.03 && pkgs.length) p.supplements.push({ name: pick(pkgs).name });
        pkgs.push(p);
        if (pkgs.length >= o.packages) break;
      }
      if (pkgs.length >= o.packages) break;
    }
  }
  return pkgs;
}

async function writeGz(path: string, chunks: () => Generator<string>): Promise<{ sha: string; size: number; openSha: string; openSize: number }> {
  const gz = createGzip({ level: 1 });
  const out = createWriteStream(path);
  const h = createHash('sha256'), oh = createHash('sha256');
  let size = 0, openSize = 0;
  gz.on('data', (c: Buffer) => { h.update(c); size += c.length; });
  gz.pipe(out);
  const done = new Promise<void>((res, rej) => { out.on('finish', res); out.on('error', rej); });
  let buf = '';
  for (const s of chunks()) {
    buf += s;
    if (buf.length > 1 << 16) {
      const b = Buffer.from(buf); oh.update(b); openSize += b.length;
      if (!gz.write(b)) await new Promise((res) => gz.once('drain', res));
      buf = '';
    }
  }
  const b = Buffer.from(buf); oh.update(b); openSize += b.length;
  gz.end(b);
  await done;
  return { sha: h.digest('hex'), size, openSha: oh.digest('hex'), openSize };
}

/** Write a repository (repodata only; locations point at files that do not exist). */
export async function writeSynthRepo(dir: string, o: SynthOptions): Promise<Pkg[]> {
  const pkgs = synthPackages(o);
  const tmp = `${dir}.tmp`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(join(tmp, 'repodata'), { recursive: true });
  const pkgid = (p: Pkg) => createHash('sha256').update(`${p.name}-${p.ver}-${p.rel}.${p.arch}`).digest('hex');
  const prim = await writeGz(join(tmp, 'repodata/primary.xml.gz'), function* () {
    yield `<?xml version="1.0" encoding="UTF-8"?>\n<metadata xmlns="http://linux.duke.edu/metadata/common" xmlns:rpm="http://linux.duke.edu/metadata/rpm" packages="${pkgs.length}">\n`;
    for (const p of pkgs) {
      let s = `<package type="rpm">\n  <name>${p.name}</name>\n  <arch>${p.arch}</arch>\n  <version epoch="${p.epoch}" ver="${esc(p.ver)}" rel="${p.rel}"/>\n  <checksum type="sha256" pkgid="YES">${pkgid(p)}</checksum>\n  <summary>${p.name} synthetic package</summary>\n  <description>Synthetic package ${p.name} for solver tests and benchmarks.</description>\n  <packager>ingot</packager>\n  <url>https://example.invalid/${p.name}</url>\n  <time file="1700000000" build="1700000000"/>\n  <size package="${1000 + p.files.length * 100}" installed="${5000 + p.files.length * 400}" archive="${6000 + p.files.length * 400}"/>\n  <location href="Packages/${esc(`${p.name}-${p.ver}-${p.rel}.${p.arch}.rpm`)}"/>\n  <format>\n    <rpm:license>MIT</rpm:license>\n    <rpm:vendor>ingot</rpm:vendor>\n    <rpm:group>Unspecified</rpm:group>\n    <rpm:buildhost>synth</rpm:buildhost>\n    <rpm:sourcerpm>${p.name}-${p.ver}-${p.rel}.src.rpm</rpm:sourcerpm>\n    <rpm:header-range start="4504" end="9000"/>\n`;
      for (const [tag, list] of [['provides', p.provides], ['requires', p.requires], ['conflicts', p.conflicts], ['obsoletes', p.obsoletes], ['recommends', p.recommends], ['supplements', p.supplements]] as const) {
        if (!list.length) continue;
        s += `    <rpm:${tag}>\n${list.map((d) => `      ${entry(d)}\n`).join('')}    </rpm:${tag}>\n`;
      }
      for (const f of p.files) if (primaryFile(f)) s += `    <file>${esc(f)}</file>\n`;
      s += '  </format>\n</package>\n';
      yield s;
    }
    yield '</metadata>\n';
  });
  const fl = await writeGz(join(tmp, 'repodata/filelists.xml.gz'), function* () {
    yield `<?xml version="1.0" encoding="UTF-8"?>\n<filelists xmlns="http://linux.duke.edu/metadata/filelists" packages="${pkgs.length}">\n`;
    for (const p of pkgs) {
      yield `<package pkgid="${pkgid(p)}" name="${p.name}" arch="${p.arch}">\n  <version epoch="0" ver="${esc(p.ver)}" rel="${p.rel}"/>\n${p.files.map((f) => `  <file>${esc(f)}</file>\n`).join('')}</package>\n`;
    }
    yield '</filelists>\n';
  });
  const oth = await writeGz(join(tmp, 'repodata/other.xml.gz'), function* () {
    yield `<?xml version="1.0" encoding="UTF-8"?>\n<otherdata xmlns="http://linux.duke.edu/metadata/other" packages="${pkgs.length}">\n`;
    for (const p of pkgs) yield `<package pkgid="${pkgid(p)}" name="${p.name}" arch="${p.arch}">\n  <version epoch="0" ver="${esc(p.ver)}" rel="${p.rel}"/>\n</package>\n`;
    yield '</otherdata>\n';
  });
  const data = (type: string, file: string, d: { sha: string; size: number; openSha: string; openSize: number }) => {
    return `  <data type="${type}">\n    <checksum type="sha256">${d.sha}</checksum>\n    <open-checksum type="sha256">${d.openSha}</open-checksum>\n    <location href="repodata/${d.sha}-${file}"/>\n    <timestamp>1700000000</timestamp>\n    <size>${d.size}</size>\n    <open-size>${d.openSize}</open-size>\n  </data>\n`;
  };
  for (const [f, d] of [['primary.xml.gz', prim], ['filelists.xml.gz', fl], ['other.xml.gz', oth]] as const) {
    await rename(join(tmp, 'repodata', f), join(tmp, 'repodata', `${d.sha}-${f}`));
  }
  await writeFile(join(tmp, 'repodata/repomd.xml'), `<?xml version="1.0" encoding="UTF-8"?>\n<repomd xmlns="http://linux.duke.edu/metadata/repo" xmlns:rpm="http://linux.duke.edu/metadata/rpm">\n  <revision>1700000000</revision>\n${data('primary', 'primary.xml.gz', prim)}${data('filelists', 'filelists.xml.gz', fl)}${data('other', 'other.xml.gz', oth)}</repomd>\n`);
  await rm(dir, { recursive: true, force: true });
  await rename(tmp, dir);
  void readFile;
  return pkgs;
}
