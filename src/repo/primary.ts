/**
 * Streaming readers for primary.xml and filelists.xml (createrepo's
 * "common" and "filelists" schemas). Both are parsed with saxes as a stream of
 * tags, never as a document: Fedora's primary is over 100 MB uncompressed and
 * its filelists several times that.
 */
import type { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { SaxesParser, type SaxesTagPlain } from 'saxes';
import { RepoMetadataError, type RepoErrorContext } from './errors.js';
import { DEP_DIR, DEP_GHOST, DEP_PRE, DEP_RICH, DepKind, type PackageBuilder, type Pool } from './pool.js';
import { senseFromRepodata } from '../solve/evr.js';

export interface XmlHandlers {
  open(name: string, attrs: Record<string, string>): void;
  close(name: string): void;
  text(t: string): void;
}

/** Feed a byte stream through saxes; any XML error becomes a RepoMetadataError with line and element. */
export async function streamXml(src: Readable, h: XmlHandlers, ctx: RepoErrorContext): Promise<void> {
  const parser = new SaxesParser({ xmlns: false, position: true });
  const stack: string[] = [];
  let failure: Error | undefined;
  parser.on('opentag', (t: SaxesTagPlain) => {
    stack.push(t.name);
    h.open(t.name, t.attributes as Record<string, string>);
  });
  parser.on('closetag', (t: SaxesTagPlain) => {
    stack.pop();
    h.close(t.name);
  });
  parser.on('text', (t: string) => h.text(t));
  parser.on('error', (e: Error) => {
    failure ??= new RepoMetadataError(`malformed XML: ${e.message.replace(/^(?:[^:]*:)?\d+:\d+: /, '')}`, { ...ctx, line: parser.line, field: stack[stack.length - 1] });
  });
  const dec = new StringDecoder('utf8');
  try {
    for await (const chunk of src) {
      parser.write(dec.write(chunk as Buffer));
      if (failure) throw failure;
    }
    parser.write(dec.end());
    parser.close();
  } catch (e) {
    src.destroy();
    if (failure) throw failure; // the XML error came first; later handler complaints are consequences
    if (e instanceof RepoMetadataError) throw e;
    throw new RepoMetadataError(`cannot read: ${(e as Error).message}`, { ...ctx, line: parser.line }, { cause: e });
  }
  if (failure) throw failure;
}

const DEP_ELEMENTS: Record<string, DepKind> = {
  'rpm:provides': DepKind.Provides, 'rpm:requires': DepKind.Requires, 'rpm:conflicts': DepKind.Conflicts,
  'rpm:obsoletes': DepKind.Obsoletes, 'rpm:recommends': DepKind.Recommends, 'rpm:suggests': DepKind.Suggests,
  'rpm:supplements': DepKind.Supplements, 'rpm:enhances': DepKind.Enhances,
};

/** Format a dependency EVR the way the pool interns EVRs: epoch only when non-zero. */
export function depEvr(epoch: string | undefined, ver: string | undefined, rel: string | undefined): string {
  if (ver === undefined || ver === '') return '';
  return `${epoch && epoch !== '0' ? `${epoch}:` : ''}${ver}${rel !== undefined && rel !== '' ? `-${rel}` : ''}`;
}

interface PendingDep { kind: DepKind; name: string; flags: number; evr: string }

/**
 * Parse primary.xml from `src` into `pool`, tagging packages with `repoIndex`.
 * Source packages (arch src/nosrc) are skipped. `accept` may veto a package
 * by name and arch (exclude / includepkgs). Returns the number of packages added.
 */
export async function parsePrimary(src: Readable, pool: Pool, repoIndex: number, ctx: RepoErrorContext,
  accept: (name: string, arch: string) => boolean = () => true): Promise<number> {
  let pkg: PackageBuilder | undefined;
  let deps: PendingDep[] = [];
  let kind: DepKind | undefined;
  let capture: string | undefined;
  let text = '';
  let fileType = '';
  let added = 0;
  let declared: number | undefined;
  let depth = 0;
  const fail = (msg: string, field: string): never => { throw new RepoMetadataError(msg, { ...ctx, field }); };

  await streamXml(src, {
    open(name, a) {
      depth++;
      if (depth === 1) {
        if (name !== 'metadata') fail(`root element is <${name}>, expected <metadata>`, name);
        if (a.packages !== undefined) declared = Number(a.packages);
        return;
      }
      if (name === 'package') {
        if (pkg) fail('nested <package>', 'package');
        pkg = a.type === undefined || a.type === 'rpm' ? pool.newPackage() : undefined;
        if (pkg) pkg.repo = repoIndex;
        deps = [];
        if (!pkg) capture = '#skip';
        return;
      }
      if (!pkg) return;
      switch (name) {
        case 'name': case 'arch': case 'rpm:sourcerpm': capture = name; text = ''; return;
        case 'checksum':
          if (a.pkgid === 'YES' || !pkg.checksum) { capture = name; text = ''; pkg.checksumType = a.type ?? ''; }
          return;
        case 'version':
          pkg.epoch = a.epoch ?? '0'; pkg.version = a.ver ?? ''; pkg.release = a.rel ?? '';
          if (!a.ver) fail('<version> without ver', 'version');
          return;
        case 'size':
          pkg.sizePackage = Number(a.package ?? 0); pkg.sizeInstalled = Number(a.installed ?? 0);
          return;
        case 'location':
          if (!a.href) fail('<location> without href', 'location');
          pkg.location = a.href; pkg.locationBase = a['xml:base'];
          return;
        case 'file': capture = 'file'; text = ''; fileType = a.type ?? ''; return;
        case 'rpm:entry': {
          if (kind === undefined) return;
          if (a.name === undefined) fail('<rpm:entry> without name', 'rpm:entry');
          let flags = 0;
          if (a.flags !== undefined) {
            const f = senseFromRepodata(a.flags);
            if (f === undefined) fail(`unknown dependency flags ${JSON.stringify(a.flags)}`, 'rpm:entry');
            flags = f!;
          }
          if (a.pre === '1' || a.pre === 'true') flags |= DEP_PRE;
          if (a.name.charCodeAt(0) === 0x28 /* ( */) flags |= DEP_RICH;
          const evr = flags & 14 ? depEvr(a.epoch, a.ver, a.rel) : '';
          if (a.name.startsWith('rpmlib(')) return;
          deps.push({ kind, name: a.name, flags, evr });
          return;
        }
        default: {
          const k = DEP_ELEMENTS[name];
          if (k !== undefined) kind = k;
        }
      }
    },
    text(t) { if (capture && capture !== '#skip') text += t; },
    close(name) {
      depth--;
      if (name === 'package') {
        if (pkg) {
          if (!pkg.name) fail('<package> without <name>', 'name');
          if (!pkg.arch) fail(`package ${pkg.name} without <arch>`, 'arch');
          if (!pkg.location) fail(`package ${pkg.name} without <location>`, 'location');
          if (pkg.arch !== 'src' && pkg.arch !== 'nosrc' && accept(pkg.name, pkg.arch)) {
            deps.sort((x, y) => x.kind - y.kind);
            for (const d of deps) pkg.addDep(d.kind, d.name, d.flags, d.evr);
            pkg.commit();
            added++;
          }
        }
        pkg = undefined; capture = undefined;
        return;
      }
      if (!pkg) return;
      if (DEP_ELEMENTS[name] !== undefined) { kind = undefined; return; }
      if (capture === name) {
        switch (name) {
          case 'name': pkg.name = text.trim(); break;
          case 'arch': pkg.arch = text.trim(); break;
          case 'checksum': pkg.checksum = text.trim().toLowerCase(); break;
          case 'rpm:sourcerpm': pkg.sourcerpm = text.trim(); break;
          case 'file': deps.push({ kind: DepKind.Files, name: text, flags: fileType === 'dir' ? DEP_DIR : fileType === 'ghost' ? DEP_GHOST : 0, evr: '' }); break;
        }
        capture = undefined;
      }
    },
  }, ctx);
  if (depth !== 0) fail('truncated document', 'metadata');
  void declared;
  return added;
}

/**
 * Scan filelists.xml for the given paths only (Fedora's filelists name
 * millions of paths; only those some dependency asks for are kept). Returns
 * path → pkgids (the package checksums) that ship it.
 */
export async function scanFilelists(src: Readable, wanted: Set<string>, ctx: RepoErrorContext): Promise<Map<string, string[]>> {
  const found = new Map<string, string[]>();
  let pkgid = '';
  let inFile = false;
  let text = '';
  await streamXml(src, {
    open(name, a) {
      if (name === 'package') pkgid = (a.pkgid ?? '').toLowerCase();
      else if (name === 'file') { inFile = true; text = ''; }
    },
    text(t) { if (inFile) text += t; },
    close(name) {
      if (name === 'file') {
        inFile = false;
        if (wanted.has(text)) {
          let l = found.get(text);
          if (!l) found.set(text, l = []);
          l.push(pkgid);
        }
      }
    },
  }, ctx);
  return found;
}
