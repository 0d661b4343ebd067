/**
 * Write `rpmdb.sqlite` the way rpm ≥ 4.16's sqlite backend lays it out
 * (rpm 4.18 lib/backend/sqlite.c: init_table, init_index; lib/rpmdb.c:
 * rpmdbAdd): a `Packages` table of header blobs keyed by an AUTOINCREMENT
 * `hnum`, and one (key, hnum, idx) table per index tag, with key indexes for
 * string tags and hnum indexes for array tags.
 *
 * The file is written in rollback-journal mode so any reader, root or not,
 * can open it without -wal/-shm files; rpm switches it to WAL on its first
 * write.
 */
import Database from 'better-sqlite3';
import { closeSync, existsSync, fsyncSync, openSync, renameSync, rmSync } from 'node:fs';
import { IngotError } from '../../errors.js';
import { HeaderBlob, installedHeaderBlob, transactionColor, type InstallInfo } from './header-blob.js';
import { indexRows, RPMDB_INDEXES } from './index-keys.js';

export class RpmdbError extends IngotError {}

/** A package to record: its raw headers as read from the .rpm, plus install details. */
export interface RpmdbPackage {
  /** Main header bytes (with or without the 8-byte header magic). */
  main: Uint8Array;
  /** Signature header bytes; its digests and signatures are merged as rpm does. */
  signature?: Uint8Array;
  /** Per-file states (e.g. NOTINSTALLED for files dropped by --excludedocs). */
  fileStates?: number[];
  instPrefixes?: string[];
  /** For error messages. */
  name?: string;
}

export interface RpmdbOptions {
  /** INSTALLTIME / INSTALLTID (seconds). Use SOURCE_DATE_EPOCH for reproducible output. */
  installTime: number;
  tid?: number;
  /** Target architecture (for INSTALLCOLOR), unless `color` is given. */
  arch?: string;
  color?: number;
}

/** Build the Packages blob for each package (in transaction order). */
export function installedBlobs(packages: readonly RpmdbPackage[], opts: RpmdbOptions): Buffer[] {
  const color = opts.color ?? transactionColor(opts.arch ?? 'x86_64');
  return packages.map((p, i) => {
    const info: InstallInfo = { installTime: opts.installTime, tid: opts.tid, color, fileStates: p.fileStates, instPrefixes: p.instPrefixes };
    return installedHeaderBlob(p.main, p.signature, info, p.name ?? `package #${i + 1}`);
  });
}

/**
 * Create `path` (which must not exist) holding `blobs` as rpm would after
 * installing them in this order. Written beside `path` and renamed on success.
 */
export function writeRpmdbSqlite(path: string, blobs: readonly Buffer[]): void {
  if (existsSync(path)) throw new RpmdbError('RPMDB_EXISTS', 'rpmdb already exists', { file: path });
  const tmp = `${path}.tmp-${process.pid}`;
  rmSync(tmp, { force: true });
  const db = new Database(tmp);
  try {
    db.pragma('journal_mode = DELETE');
    db.pragma('secure_delete = OFF');
    // A private temp file renamed into place: no need to fsync every statement.
    db.pragma('synchronous = OFF');
    // Tables in rpm's creation order (Packages first, then dbiTags) with its exact DDL.
    db.transaction(() => {
      db.exec("CREATE TABLE IF NOT EXISTS 'Packages' (hnum INTEGER PRIMARY KEY AUTOINCREMENT,blob BLOB NOT NULL)");
      for (const t of RPMDB_INDEXES) {
        db.exec(`CREATE TABLE IF NOT EXISTS '${t.table}' (key '${t.key}' NOT NULL, hnum INTEGER NOT NULL, idx INTEGER NOT NULL, FOREIGN KEY (hnum) REFERENCES 'Packages'(hnum))`);
        if (t.key === 'TEXT') db.exec(`CREATE INDEX IF NOT EXISTS '${t.table}_key_idx' ON '${t.table}'(key ASC)`);
        if (t.array) db.exec(`CREATE INDEX IF NOT EXISTS '${t.table}_hnum_idx' ON '${t.table}'(hnum ASC)`);
      }
    })();
    const putPkg = db.prepare("INSERT INTO 'Packages' VALUES(?, ?)");
    // Keys are bound as bytes and cast, so non-UTF-8 header strings keep their exact bytes as TEXT.
    const puts = new Map(RPMDB_INDEXES.map((t) => [t.table, db.prepare(
      t.key === 'TEXT' ? `INSERT INTO '${t.table}' VALUES(CAST(? AS TEXT), ?, ?)` : `INSERT INTO '${t.table}' VALUES(?, ?, ?)`)]));
    db.transaction(() => {
      blobs.forEach((blob, i) => {
        const h = new HeaderBlob(blob, `rpmdb header #${i + 1}`);
        const hnum = Number(putPkg.run(null, blob).lastInsertRowid);
        for (const t of RPMDB_INDEXES) {
          const put = puts.get(t.table)!;
          for (const r of indexRows(h, t)) put.run(r.key, hnum, r.idx);
        }
      });
    })();
    db.close();
    // The data reaches the disk once, before the rename makes it visible.
    fsyncFile(tmp);
    renameSync(tmp, path);
  } catch (e) {
    if (db.open) db.close();
    rmSync(tmp, { force: true });
    throw e;
  }
}

function fsyncFile(path: string): void {
  const fd = openSync(path, 'r+');
  try { fsyncSync(fd); } finally { closeSync(fd); }
}
