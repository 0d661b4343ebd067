/**
 * Record installed packages in the staging tree's rpmdb: the sqlite file is
 * written into the content store's directory and referenced from the tree at
 * the target's %_dbpath, with the empty `.rpm.lock` rpm keeps beside it.
 */
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { BufferContent, type StagingTree } from '../../tree/tree.js';
import { FileSpanContent, type ContentStore } from '../../tree/content-store.js';
import { targetDbPath } from './dbpath.js';
import { installedBlobs, writeRpmdbSqlite, type RpmdbOptions, type RpmdbPackage } from './sqlite.js';

export { targetDbPath } from './dbpath.js';
export { installedBlobs, writeRpmdbSqlite, RpmdbError, type RpmdbOptions, type RpmdbPackage } from './sqlite.js';
export { HeaderBlob, installedHeaderBlob, RpmHeaderError, FILE_STATE, RPMTAG } from './header-blob.js';

let seq = 0;

export interface InstallRpmdbOptions extends RpmdbOptions {
  /** Where the database file lives until the image is written. */
  store: ContentStore;
  /** Override the target's %_dbpath. */
  dbPath?: string;
}

/** Write the rpmdb for `packages` (in transaction order) into `tree`. Returns the db directory used. */
export async function installRpmdb(tree: StagingTree, packages: readonly RpmdbPackage[], opts: InstallRpmdbOptions): Promise<{ dbPath: string; packages: number }> {
  const dbPath = opts.dbPath ?? await targetDbPath(tree, opts.arch);
  const file = join(opts.store.dir, `rpmdb-${process.pid}-${++seq}.sqlite`);
  writeRpmdbSqlite(file, installedBlobs(packages, opts));
  const t = { sec: opts.installTime, nsec: 0 };
  tree.mkdirp(dbPath);
  tree.addFile(`${dbPath}/rpmdb.sqlite`, new FileSpanContent(file, 0, statSync(file).size), { mode: 0o644, mtime: t });
  if (!tree.lookup(`${dbPath}/.rpm.lock`)) tree.addFile(`${dbPath}/.rpm.lock`, BufferContent.of(''), { mode: 0o644, mtime: t });
  return { dbPath, packages: packages.length };
}
