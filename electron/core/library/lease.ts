import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { DermError } from '../../common/errors.js';

/** Held by one live process; see tryAcquireLease. */
export interface Lease {
  readonly file: string;
  /** Lets go of the lease; `removeFile` also deletes the lock file (only once nobody can want it again). */
  release(options?: { removeFile?: boolean }): void;
}

/**
 * Takes the exclusive lease named by `file`, or returns undefined when a live process holds it.
 *
 * The lease is an exclusive SQLite lock on a small lock file (locking_mode EXCLUSIVE keeps it after
 * the first write): the operating system drops it the moment its process ends, however it ends
 * (kill -9, power loss, crash), so a lease never outlives its owner and needs no heartbeat, pid check
 * or clock. SQLite also sees a second connection from the same process as a different owner, so the
 * app and its web mode in one process exclude each other too.
 */
export function tryAcquireLease(file: string): Lease | undefined {
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true });
  } catch (error) {
    // Read-only storage, permissions, a full disk: the errno error goes up as is, to be explained
    // with the library's name (library-errors.ts).
    if (typeof (error as NodeJS.ErrnoException).code === 'string') throw error;
    throw new DermError('internal', `Cannot create the lock folder ${path.dirname(file)}: ${(error as Error).message}`, { file });
  }
  let db: Database.Database;
  try {
    db = new Database(file, { timeout: 0 });
  } catch (error) {
    throw new DermError('internal', `Cannot open the lock file ${file}: ${(error as Error).message}`, { file });
  }
  try {
    db.pragma('locking_mode = EXCLUSIVE');
    db.exec('BEGIN EXCLUSIVE');
    db.exec('CREATE TABLE IF NOT EXISTS lease_owner (pid INTEGER NOT NULL, host TEXT NOT NULL, since TEXT NOT NULL)');
    db.exec('DELETE FROM lease_owner');
    db.prepare('INSERT INTO lease_owner (pid, host, since) VALUES (?, ?, ?)').run(process.pid, os.hostname(), new Date().toISOString());
    db.exec('COMMIT');
  } catch (error) {
    db.close();
    if ((error as { code?: string }).code === 'SQLITE_BUSY' || (error as { code?: string }).code === 'SQLITE_LOCKED') return undefined;
    throw new DermError('internal', `Cannot take the lock file ${file}: ${(error as Error).message}`, { file });
  }
  let held = true;
  return {
    file,
    release: (options = {}) => {
      if (!held) return;
      held = false;
      db.close();
      if (options.removeFile) fs.rmSync(file, { force: true });
    },
  };
}
