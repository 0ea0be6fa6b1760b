import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type Database from 'better-sqlite3';
import { DermError } from '../../common/errors.js';
import { findUpwards } from './installation.js';

export interface Migration {
  version: number;
  name: string;
  sql: string;
  /**
   * Runs with foreign keys off (`-- migration-option: foreign-keys-off` in the file): a migration that
   * rebuilds a table other tables reference must drop the old table, and with foreign keys on that
   * drop deletes or refuses the rows pointing at it. foreign_key_check runs before it commits.
   */
  foreignKeysOff: boolean;
}

const foreignKeysOffOption = /^--\s*migration-option:\s*foreign-keys-off\s*$/m;

const migrationFilePattern = /^(\d{4})_([a-z0-9_]+)\.sql$/;

/** Finds the top-level `migrations/` folder from source (electron/core/library) or compiled (dist/…) code. */
export function findMigrationsFolder(start = path.dirname(fileURLToPath(import.meta.url))): string {
  const found = findUpwards(start, (folder) => {
    const candidate = path.join(folder, 'migrations');
    return fs.existsSync(path.join(candidate, '0001_library.sql')) ? candidate : undefined;
  });
  if (found === undefined) throw new DermError('internal', `Could not find the migrations folder above ${start}.`);
  return found;
}

export function loadMigrations(folder = findMigrationsFolder()): Migration[] {
  const migrations: Migration[] = [];
  for (const file of fs.readdirSync(folder).sort()) {
    const match = migrationFilePattern.exec(file);
    if (!match) continue;
    const sql = fs.readFileSync(path.join(folder, file), 'utf8');
    migrations.push({ version: Number(match[1]), name: match[2]!, sql, foreignKeysOff: foreignKeysOffOption.test(sql) });
  }
  migrations.forEach((migration, index) => {
    if (migration.version !== index + 1) {
      throw new DermError('internal', `Migration ${migration.version}_${migration.name} is out of sequence: expected number ${index + 1}.`);
    }
  });
  return migrations;
}

export const schemaTableSql = `CREATE TABLE IF NOT EXISTS schema_migrations (
  version INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  applied_at TEXT NOT NULL
)`;

/** The highest migration recorded in an opened database, or 0 for a new file. */
export function appliedVersion(db: Database.Database): number {
  const table = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'").get();
  if (!table) return 0;
  const row = db.prepare<unknown[], { version: number | null }>('SELECT MAX(version) AS version FROM schema_migrations').get()!;
  return row.version ?? 0;
}

/**
 * What is wrong with the recorded migrations, or undefined when they are a plain prefix of the known
 * ones (1, 2, … n with the known names). A record that skips, repeats or renames a migration means the
 * table was damaged, not that a newer app wrote it: a newer app only ever appends.
 */
export function schemaRecordDamage(db: Database.Database, migrations: Migration[]): string | undefined {
  const table = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'").get();
  if (!table) return undefined;
  const rows = db.prepare<unknown[], { version: unknown; name: unknown }>('SELECT version, name FROM schema_migrations ORDER BY version').all();
  for (const [index, row] of rows.entries()) {
    if (row.version !== index + 1) return `schema_migrations holds version ${String(row.version)} where ${index + 1} was expected`;
    const known = migrations[index];
    if (known && row.name !== known.name) return `schema_migrations names version ${index + 1} "${String(row.name)}" but that migration is "${known.name}"`;
  }
  return undefined;
}

/**
 * Applies every pending migration in order, each in its own transaction. Returns the versions applied.
 *
 * Several processes can open a new library at the same moment (the app, a CLI call, a script). Each
 * migration therefore takes the write lock first (BEGIN IMMEDIATE, waiting its turn) and reads the
 * applied version inside that transaction: a process that lost the race sees the migration already
 * recorded and skips it, instead of running its CREATE TABLEs a second time.
 *
 * A migration marked foreign-keys-off runs with `PRAGMA foreign_keys` off for this connection (the
 * pragma is ignored inside a transaction, so it is set around it) and is refused, rolled back, when
 * foreign_key_check finds a row pointing nowhere before the commit.
 */
export function applyMigrations(db: Database.Database, migrations: Migration[], databaseFile: string): number[] {
  const applied: number[] = [];
  let current = 0;
  for (const migration of migrations) {
    const run = db.transaction((): boolean => {
      db.exec(schemaTableSql);
      current = appliedVersion(db);
      if (migration.version <= current) return false;
      db.exec(migration.sql);
      if (migration.foreignKeysOff) {
        const broken = db.pragma('foreign_key_check') as Array<{ table: string; rowid: number; parent: string }>;
        if (broken.length > 0) {
          const first = broken[0]!;
          throw new Error(`${broken.length} rows would point nowhere (first: ${first.table} row ${first.rowid} → ${first.parent})`);
        }
      }
      db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(migration.version, migration.name, new Date().toISOString());
      return true;
    });
    const foreignKeysWereOn = migration.foreignKeysOff && db.pragma('foreign_keys', { simple: true }) === 1;
    if (foreignKeysWereOn) db.pragma('foreign_keys = OFF');
    try {
      if (run.immediate()) applied.push(migration.version);
    } catch (error) {
      throw new DermError(
        'migration-failed',
        `Upgrading ${databaseFile} failed at migration ${String(migration.version).padStart(4, '0')}_${migration.name}: ${(error as Error).message}. The library was left at version ${current}.`,
        { file: databaseFile, migration: migration.version },
      );
    } finally {
      if (foreignKeysWereOn) db.pragma('foreign_keys = ON');
    }
  }
  return applied;
}
