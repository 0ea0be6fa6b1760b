import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { DermError } from '../../common/errors.js';
import { appliedVersion, applyMigrations, loadMigrations, schemaRecordDamage } from './migrations.js';

export const databaseFileName = 'library.sqlite';

/**
 * How long a write waits for another process's write transaction before giving up. Write transactions
 * are short (one imported image, one label edit, one embedding batch), but a busy 2-core machine with
 * the app, an import and scripts on one library can queue many of them; a command must wait its turn
 * rather than fail.
 */
export const busyTimeoutMs = 30_000;

/** Folders of a library. Everything a library holds lives below its root, so a library can be moved as a folder. */
export interface LibraryPaths {
  root: string;
  database: string;
  thumbnails: string;
  managedImages: string;
  models: string;
  indexes: string;
  exports: string;
  /** Lock files of work a live process owns (import batches); see lease.ts. */
  locks: string;
}

export function libraryPaths(root: string): LibraryPaths {
  return {
    root,
    database: path.join(root, databaseFileName),
    thumbnails: path.join(root, 'thumbnails'),
    managedImages: path.join(root, 'images'),
    models: path.join(root, 'models'),
    indexes: path.join(root, 'indexes'),
    exports: path.join(root, 'exports'),
    locks: path.join(root, 'locks'),
  };
}

export interface Library {
  readonly paths: LibraryPaths;
  readonly db: Database.Database;
  /** Schema version after opening (the number of the last migration applied). */
  readonly schemaVersion: number;
  /** Migrations applied by this open (empty when the library was already current). */
  readonly upgradedBy: number[];
  /**
   * True when the library sits on storage this process cannot write (a read-only mount, an archive
   * disc): it is opened for reading only and every change is refused with an error naming it.
   */
  readonly readOnly: boolean;
  close(): void;
}

export interface OpenLibraryOptions {
  /** Create the folder and database when missing (default true). */
  create?: boolean;
  migrationsFolder?: string;
}

/**
 * Opens (or creates) the library in `root`: checks the schema version before writing anything, so a
 * library made by a newer version is refused and left byte-for-byte untouched, then applies pending
 * migrations and turns on WAL and foreign keys.
 */
export function openLibrary(root: string, options: OpenLibraryOptions = {}): Library {
  const paths = libraryPaths(path.resolve(root));
  const migrations = loadMigrations(options.migrationsFolder);
  const knownVersion = migrations.length;
  const exists = fs.existsSync(paths.database);

  const readOnly = exists && !canWrite(paths.root, paths.database);
  if (exists) {
    let probe: Database.Database;
    try {
      probe = openReadOnly(paths.database);
    } catch (error) {
      if (error instanceof DermError) throw error;
      throw new DermError('library-unreadable', `Cannot open the library database ${paths.database}: ${(error as Error).message}`, {
        file: paths.database,
      });
    }
    let version: number;
    let damage: string | undefined;
    try {
      // Bounded work only (the schema table has one row per migration): a page-by-page check of the
      // whole file reads every byte of it, so it belongs to `dermws check`, not to every open.
      damage = schemaRecordDamage(probe, migrations);
      version = appliedVersion(probe);
    } catch (error) {
      throw new DermError('library-unreadable', `${paths.database} is not a derm-workstation library: ${(error as Error).message}`, {
        file: paths.database,
      });
    } finally {
      probe.close();
    }
    if (damage !== undefined) {
      throw new DermError(
        'library-unreadable',
        `The library ${paths.database} is damaged: ${damage}. It was not changed; restore it from a backup, or run "dermws check --full" for a full report.`,
        { file: paths.database, damaged: true },
      );
    }
    if (version > knownVersion) {
      throw new DermError(
        'library-too-new',
        `The library ${paths.database} was made by a newer version of derm-workstation (schema ${version}; this version knows up to ${knownVersion}). Update the app to open it; the library was not changed.`,
        { file: paths.database, libraryVersion: version, knownVersion },
      );
    }
    if (readOnly) {
      if (version < knownVersion) {
        throw new DermError(
          'read-only',
          `The library ${paths.root} is on read-only storage and needs an upgrade to schema ${knownVersion} (it has ${version}). Copy the library folder to writable storage to open it with this version.`,
          { file: paths.database, libraryVersion: version, knownVersion },
        );
      }
      const db = openReadOnly(paths.database);
      return { paths, db, schemaVersion: version, upgradedBy: [], readOnly: true, close: () => void (db.open && db.close()) };
    }
  } else if (options.create === false) {
    throw new DermError('not-found', `No library at ${paths.root} (missing ${databaseFileName}).`, { folder: paths.root });
  }

  for (const folder of [paths.root, paths.thumbnails, paths.managedImages, paths.models, paths.indexes]) {
    fs.mkdirSync(folder, { recursive: true });
  }
  const db = new Database(paths.database, { timeout: busyTimeoutMs });
  try {
    enableWal(db);
    db.pragma('foreign_keys = ON');
    db.pragma('synchronous = NORMAL');
    db.pragma(`busy_timeout = ${busyTimeoutMs}`);
    const upgradedBy = applyMigrations(db, migrations, paths.database);
    return {
      paths,
      db,
      schemaVersion: appliedVersion(db),
      upgradedBy,
      readOnly: false,
      close: () => {
        if (db.open) db.close();
      },
    };
  } catch (error) {
    db.close();
    throw error;
  }
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));

/**
 * Turns on WAL. Processes creating one library at the same moment all switch its new
 * rollback-journal file to WAL; one that holds a read lock while another holds the pending lock gets
 * SQLITE_BUSY at once, because SQLite skips the busy handler where waiting could deadlock. That
 * answer is retried here, for up to the busy timeout, until the other process has switched the file
 * and the pragma has nothing left to do.
 */
function enableWal(db: Database.Database): void {
  const deadline = Date.now() + busyTimeoutMs;
  for (let attempt = 0; ; attempt++) {
    try {
      db.pragma('journal_mode = WAL');
      return;
    } catch (error) {
      const code = (error as { code?: string }).code ?? '';
      if (!code.startsWith('SQLITE_BUSY') || Date.now() > deadline) throw error;
      Atomics.wait(sleeper, 0, 0, Math.min(100, 2 ** Math.min(attempt, 7)));
    }
  }
}

/** Whether this process may create files in the library folder and write its database. */
function canWrite(root: string, database: string): boolean {
  try {
    fs.accessSync(root, fs.constants.W_OK);
    fs.accessSync(database, fs.constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * A read-only connection to the database. A WAL database needs its `-shm` file even to read, and on
 * read-only storage that file cannot be created, so when a cleanly closed library (no `-wal` left)
 * cannot be read in place, its file is read into memory and opened from there (the journal-mode bytes
 * of that private copy say "rollback", as WAL needs files). A library with a `-wal` file left by a
 * process that did not close it holds changes only that file has: it is refused rather than shown
 * without them.
 */
function openReadOnly(database: string): Database.Database {
  try {
    const db = new Database(database, { readonly: true, fileMustExist: true });
    try {
      db.prepare('SELECT COUNT(*) FROM sqlite_master').get();
      return db;
    } catch (error) {
      db.close();
      if ((error as { code?: string }).code !== 'SQLITE_CANTOPEN') throw error;
    }
  } catch (error) {
    if ((error as { code?: string }).code !== 'SQLITE_CANTOPEN') {
      throw new DermError('library-unreadable', `Cannot open the library database ${database}: ${(error as Error).message}`, { file: database });
    }
  }
  const wal = `${database}-wal`;
  if (fs.existsSync(wal) && fs.statSync(wal).size > 0) {
    throw new DermError(
      'read-only',
      `The library ${path.dirname(database)} is on read-only storage and was not closed cleanly: its latest changes are only in ${wal}. Copy the library folder to writable storage and open it there once.`,
      { file: database },
    );
  }
  const bytes = fs.readFileSync(database);
  // Bytes 18 and 19 of the header are the write and read format versions: 2 = WAL, 1 = rollback journal.
  if (bytes.length >= 100 && bytes[18] === 2 && bytes[19] === 2) {
    bytes[18] = 1;
    bytes[19] = 1;
  }
  return new Database(bytes, { readonly: true });
}
