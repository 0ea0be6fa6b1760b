-- migration-option: foreign-keys-off
-- A batch whose process died mid-import (killed, crashed, powered off) is recorded as 'interrupted',
-- not 'cancelled': nobody asked it to stop. SQLite cannot change a CHECK constraint in place, so the
-- table is rebuilt (create, copy, drop, rename). images and import_outcomes reference import_batches:
-- with foreign keys on, dropping the old table would cascade-delete every import outcome, so the
-- runner turns foreign keys off for this migration and runs foreign_key_check before it commits.

CREATE TABLE import_batches_rebuilt (
  id INTEGER PRIMARY KEY,
  started_at TEXT NOT NULL,
  finished_at TEXT,
  status TEXT NOT NULL CHECK (status IN ('running', 'completed', 'cancelled', 'interrupted', 'failed')),
  copy_into_library INTEGER NOT NULL DEFAULT 0,
  source_paths TEXT NOT NULL,     -- JSON array of the paths the user gave
  total_files INTEGER NOT NULL DEFAULT 0,
  imported INTEGER NOT NULL DEFAULT 0,
  duplicates INTEGER NOT NULL DEFAULT 0,
  failed INTEGER NOT NULL DEFAULT 0
);

INSERT INTO import_batches_rebuilt (id, started_at, finished_at, status, copy_into_library, source_paths, total_files, imported, duplicates, failed)
  SELECT id, started_at, finished_at, status, copy_into_library, source_paths, total_files, imported, duplicates, failed FROM import_batches;

DROP TABLE import_batches;
ALTER TABLE import_batches_rebuilt RENAME TO import_batches;

-- Unfinished batches are looked up by status at every open and import.
CREATE INDEX import_batches_status ON import_batches(status);
