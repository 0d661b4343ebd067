/**
 * Streaming readers for primary.xml and filelists.xml (createrepo's
 * "common" and "filelists" schemas), parsed as a stream of tags with the
 * scanner in xml.ts, never as a document: Fedora's primary is over 100 MB
 * uncompressed and its filelists several times that.
 */
import type { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { RepoMetadataError, type RepoErrorContext } from './errors.js';
import { DEP_DIR, DEP_GHOST, DEP_PRE, DEP_RICH, DepKind, type PackageBuilder, type Pool } from './pool.js';
import { XmlScanner, XmlSyntaxError, type XmlHandler } from './xml.js';
import { senseFromRepodata } from '../solve/evr.js';

export type { XmlHandler } from './xml.js';

/** Opens the (decompressed) document; called again only to find the line of a syntax error. */
export type XmlSource = () => Promise<Readable>;

/** Line (1-based) of character `offset` of the document. */
async function lineAt(open: XmlSource, offset: number): Promise<number | undefined> {
  try {
    const dec = new StringDecoder('utf8');
    let line = 1, seen = 0;
    for await (const chunk of await open()) {
      const s = dec.write(chunk as Buffer);
      const end = Math.min(s.length, offset - seen);
      for (let i = s.indexOf('\n'); i >= 0 && i < end; i = s.indexOf('\n', i + 1)) line++;
      seen += s.length;
      if (seen >= offset) break;
    }
    return line;
  } catch {
    return undefined;
  }
}

/** Feed a document through the scanner; any XML error becomes a RepoMetadataError with line and element. */
export async function streamXml(open: XmlSource, h: XmlHandler, ctx: RepoErrorContext): Promise<void> {
  const x = new XmlScanner(h);
  const dec = new StringDecoder('utf8');
  const src = await open();
  try {
    for await (const chunk of src) x.write(dec.write(chunk as Buffer));
    x.write(dec.end());
    x.close();
  } catch (e) {
    src.destroy();
    if (e instanceof XmlSyntaxError) {
      throw new RepoMetadataError(`malformed XML: ${e.message}`, { ...ctx, line: await lineAt(open, e.offset), field: e.element });
    }
    if (e instanceof RepoMetadataError) throw e;
    throw new RepoMetadataError(`cannot read: ${(e as Error).message}`, { ...ctx, field: x.element }, { cause: e });
  }
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


/**
 * Parse primary.xml from `src` into `pool`, tagging packages with `repoIndex`.
 * Source packages (arch src/nosrc) are skipped. `accept` may veto a package
 * by name and arch (exclude / includepkgs). Returns the number of packages added.
 */
export async function parsePrimary(src: XmlSource, pool: Pool, repoIndex: number, ctx: RepoErrorContext,
  accept: (name: string, arch: string) => boolean = () => true): Promise<number> {
  let pkg: PackageBuilder | undefined;
  let skipping = false;
  let kind: DepKind | undefined;
  let fileFlags = 0;
  let takeChecksum = false;
  let added = 0;
  let depth = 0;
  const fail = (msg: string, field: string): never => { throw new RepoMetadataError(msg, { ...ctx, field }); };

  await streamXml(src, {
    open(name, x) {
      depth++;
      if (depth === 1) {
        if (name !== 'metadata') fail(`root element is <${name}>, expected <metadata>`, name);
        return;
      }
      if (name === 'package') {
        if (pkg || skipping) fail('nested <package>', 'package');
        const type = x.attr('type');
        if (type === undefined || type === 'rpm') {
          pkg = pool.newPackage();
          pkg.repo = repoIndex;
        } else skipping = true;
        return;
      }
      if (!pkg) return;
      switch (name) {
        case 'rpm:entry': {
          if (kind === undefined) return;
          // one pass over the attributes (name, flags, epoch, ver, rel, pre)
          let dname: string | undefined, f: string | undefined, epoch: string | undefined, ver: string | undefined, rel: string | undefined, pre: string | undefined;
          for (let k = 0; k < x.attrCount; k++) {
            switch (x.attrNameCode(k)) {
              case 0x6e: if (x.attrNameIs(k, 'name')) dname = x.attrValue(k); break;
              case 0x66: if (x.attrNameIs(k, 'flags')) f = x.attrValue(k); break;
              case 0x65: if (x.attrNameIs(k, 'epoch')) epoch = x.attrValue(k); break;
              case 0x76: if (x.attrNameIs(k, 'ver')) ver = x.attrValue(k); break;
              case 0x72: if (x.attrNameIs(k, 'rel')) rel = x.attrValue(k); break;
              case 0x70: if (x.attrNameIs(k, 'pre')) pre = x.attrValue(k); break;
            }
          }
          if (dname === undefined) return fail('<rpm:entry> without name', 'rpm:entry');
          if (dname.startsWith('rpmlib(')) return;
          let flags = 0;
          if (f !== undefined) {
            const sense = senseFromRepodata(f);
            if (sense === undefined) fail(`unknown dependency flags ${JSON.stringify(f)}`, 'rpm:entry');
            flags = sense!;
          }
          if (pre === '1' || pre === 'true') flags |= DEP_PRE;
          if (dname.charCodeAt(0) === 0x28 /* ( */) flags |= DEP_RICH;
          pkg.addDep(kind, dname, flags, flags & 14 ? depEvr(epoch, ver, rel) : '');
          return;
        }
        case 'file': {
          const t = x.attr('type');
          fileFlags = t === 'dir' ? DEP_DIR : t === 'ghost' ? DEP_GHOST : 0;
          return;
        }
        case 'checksum':
          takeChecksum = x.attr('pkgid') === 'YES' || !pkg.checksum;
          if (takeChecksum) pkg.checksumType = x.attr('type') ?? '';
          return;
        case 'version': {
          const ver = x.attr('ver');
          if (!ver) return fail('<version> without ver', 'version');
          pkg.epoch = x.attr('epoch') ?? '0'; pkg.version = ver; pkg.release = x.attr('rel') ?? '';
          return;
        }
        case 'size':
          pkg.sizePackage = Number(x.attr('package') ?? 0); pkg.sizeInstalled = Number(x.attr('installed') ?? 0);
          return;
        case 'location': {
          const href = x.attr('href');
          if (!href) return fail('<location> without href', 'location');
          pkg.location = href; pkg.locationBase = x.attr('xml:base');
          return;
        }
        default: {
          const k = DEP_ELEMENTS[name];
          if (k !== undefined) kind = k;
        }
      }
    },
    close(name, x) {
      depth--;
      if (name === 'package') {
        if (pkg) {
          if (!pkg.name) fail('<package> without <name>', 'name');
          if (!pkg.arch) fail(`package ${pkg.name} without <arch>`, 'arch');
          if (!pkg.location) fail(`package ${pkg.name} without <location>`, 'location');
          if (pkg.arch !== 'src' && pkg.arch !== 'nosrc' && accept(pkg.name, pkg.arch)) {
            pkg.commit();
            added++;
          }
        }
        pkg = undefined; skipping = false;
        return;
      }
      if (!pkg) return;
      switch (name) {
        case 'file': pkg.addDep(DepKind.Files, x.leafText(), fileFlags, ''); return;
        case 'name': pkg.name = x.leafText().trim(); return;
        case 'arch': pkg.arch = x.leafText().trim(); return;
        case 'checksum': if (takeChecksum) pkg.checksum = x.leafText().trim().toLowerCase(); takeChecksum = false; return;
        case 'rpm:sourcerpm': pkg.sourcerpm = x.leafText().trim(); return;
        default: if (DEP_ELEMENTS[name] !== undefined) kind = undefined;
      }
    },
  }, ctx);
  if (depth !== 0) fail('truncated document', 'metadata');
  return added;
}

/**
 * Scan filelists.xml for the given paths only (Fedora's filelists name
 * millions of paths; only those some dependency asks for are kept). Returns
 * path → pkgids (the package checksums) that ship it.
 */
export async function scanFilelists(src: XmlSource, wanted: Set<string>, ctx: RepoErrorContext): Promise<Map<string, string[]>> {
  const found = new Map<string, string[]>();
  let pkgid = '';
  await streamXml(src, {
    open(name, x) {
      if (name === 'package') pkgid = (x.attr('pkgid') ?? '').toLowerCase();
    },
    close(name, x) {
      if (name !== 'file') return;
      const path = x.leafText();
      if (!wanted.has(path)) return;
      let l = found.get(path);
      if (!l) found.set(path, l = []);
      l.push(pkgid);
    },
  }, ctx);
  return found;
}
