import type Database from 'better-sqlite3';

/**
 * Runs `work` in one write transaction that takes SQLite's write lock at BEGIN (BEGIN IMMEDIATE).
 *
 * A deferred transaction (better-sqlite3's default) starts as a reader and upgrades to a writer at its
 * first write; when another process committed in between, SQLite cannot upgrade it without breaking
 * isolation and answers SQLITE_BUSY at once, without waiting for the busy timeout. With several
 * processes writing one library (the app, the CLI, scripts) that lost commands. BEGIN IMMEDIATE waits
 * its turn (busy_timeout) before reading anything, so the work always sees the latest commit. Nested
 * calls become savepoints of the outer transaction, as with better-sqlite3's transaction().
 */
export function writeTransaction<T>(db: Database.Database, work: () => T): T {
  return db.transaction(work).immediate();
}
