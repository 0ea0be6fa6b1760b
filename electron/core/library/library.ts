import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { DermError } from '../../common/errors.js';
import { appliedVersion, applyMigrations, loadMigrations } from './migrations.js';

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

  if (exists) {
    let probe: Database.Database;
    try {
      probe = new Database(paths.database, { readonly: true, fileMustExist: true });
    } catch (error) {
      throw new DermError('library-unreadable', `Cannot open the library database ${paths.database}: ${(error as Error).message}`, {
        file: paths.database,
      });
    }
    let version: number;
    try {
      version = appliedVersion(probe);
    } catch (error) {
      throw new DermError('library-unreadable', `${paths.database} is not a derm-workstation library: ${(error as Error).message}`, {
        file: paths.database,
      });
    } finally {
      probe.close();
    }
    if (version > knownVersion) {
      throw new DermError(
        'library-too-new',
        `The library ${paths.database} was made by a newer version of derm-workstation (schema ${version}; this version knows up to ${knownVersion}). Update the app to open it; the library was not changed.`,
        { file: paths.database, libraryVersion: version, knownVersion },
      );
    }
  } else if (options.create === false) {
    throw new DermError('not-found', `No library at ${paths.root} (missing ${databaseFileName}).`, { folder: paths.root });
  }

  for (const folder of [paths.root, paths.thumbnails, paths.managedImages, paths.models, paths.indexes]) {
    fs.mkdirSync(folder, { recursive: true });
  }
  const db = new Database(paths.database, { timeout: busyTimeoutMs });
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('foreign_keys = ON');
    db.pragma('synchronous = NORMAL');
    db.pragma(`busy_timeout = ${busyTimeoutMs}`);
    const upgradedBy = applyMigrations(db, migrations, paths.database);
    return {
      paths,
      db,
      schemaVersion: appliedVersion(db),
      upgradedBy,
      close: () => {
        if (db.open) db.close();
      },
    };
  } catch (error) {
    db.close();
    throw error;
  }
}
