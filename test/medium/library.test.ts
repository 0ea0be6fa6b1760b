import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { isDermError } from '../../electron/common/errors.js';
import { openLibrary } from '../../electron/core/library/library.js';
import { applicationDataFolder, resolveLibraryFolder } from '../../electron/core/library/library-location.js';
import { findMigrationsFolder, loadMigrations } from '../../electron/core/library/migrations.js';

const folders: string[] = [];
function tempFolder(): string {
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'dermws-library-'));
  folders.push(folder);
  return folder;
}
afterEach(() => {
  for (const folder of folders.splice(0)) fs.rmSync(folder, { recursive: true, force: true });
});

const sha = (file: string) => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');

describe('library', () => {
  it('creates the folder layout, WAL database with foreign keys and every migration', () => {
    const root = tempFolder();
    const library = openLibrary(path.join(root, 'lib'));
    const migrations = loadMigrations();
    expect(library.schemaVersion).toBe(migrations.length);
    expect(library.upgradedBy).toEqual(migrations.map((migration) => migration.version));
    expect(library.db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(library.db.pragma('foreign_keys', { simple: true })).toBe(1);
    for (const folder of [library.paths.thumbnails, library.paths.managedImages, library.paths.models, library.paths.indexes]) {
      expect(fs.statSync(folder).isDirectory()).toBe(true);
    }
    library.close();
    const again = openLibrary(path.join(root, 'lib'));
    expect(again.upgradedBy).toEqual([]);
    again.close();
  });

  it('upgrades a library made at schema 1 without losing rows', () => {
    const root = tempFolder();
    const onlyFirst = path.join(root, 'migrations-v1');
    fs.mkdirSync(onlyFirst);
    const first = loadMigrations()[0]!;
    fs.writeFileSync(path.join(onlyFirst, `0001_${first.name}.sql`), first.sql);

    const old = openLibrary(path.join(root, 'lib'), { migrationsFolder: onlyFirst });
    expect(old.schemaVersion).toBe(1);
    old.db.prepare("INSERT INTO import_batches (id, started_at, status, source_paths) VALUES (1, '2026-01-01', 'completed', '[]')").run();
    const insert = old.db.prepare(
      "INSERT INTO images (file_sha256, pixel_sha256, original_path, thumbnail_path, width, height, format, bytes, imported_at, batch_id) VALUES (?, ?, ?, ?, 10, 10, 'jpeg', 100, '2026-01-01', 1)",
    );
    for (let index = 0; index < 25; index++) insert.run(`file${index}`, `pixels${index}`, `/photos/${index}.jpg`, `thumbnails/${index}.webp`);
    old.close();

    const upgraded = openLibrary(path.join(root, 'lib'));
    expect(upgraded.upgradedBy[0]).toBe(2);
    expect(upgraded.schemaVersion).toBe(loadMigrations().length);
    const rows = upgraded.db.prepare('SELECT original_path FROM images ORDER BY id').all() as { original_path: string }[];
    expect(rows.map((row) => row.original_path)).toEqual(Array.from({ length: 25 }, (_, index) => `/photos/${index}.jpg`));
    upgraded.close();
  });

  it('refuses a library made by a newer version and leaves the file untouched', () => {
    const root = tempFolder();
    const library = openLibrary(path.join(root, 'lib'));
    // A newer version appends the migrations after the last one this version knows (a gap would be damage).
    const known = library.schemaVersion;
    const future = library.db.prepare("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'from_the_future', '2030-01-01')");
    future.run(known + 1);
    future.run(known + 2);
    library.db.pragma('wal_checkpoint(TRUNCATE)');
    library.close();
    const file = path.join(root, 'lib', 'library.sqlite');
    const before = sha(file);
    let caught: unknown;
    try {
      openLibrary(path.join(root, 'lib'));
    } catch (error) {
      caught = error;
    }
    expect(isDermError(caught, 'library-too-new')).toBe(true);
    expect((caught as Error).message).toContain(`schema ${known + 2}`);
    expect((caught as Error).message).toContain(file);
    expect(sha(file)).toBe(before);
  });

  it('rolls back a failing migration and says which one failed', () => {
    const root = tempFolder();
    const broken = path.join(root, 'migrations-broken');
    fs.mkdirSync(broken);
    const first = loadMigrations()[0]!;
    fs.writeFileSync(path.join(broken, `0001_${first.name}.sql`), first.sql);
    fs.writeFileSync(path.join(broken, '0002_bad.sql'), 'CREATE TABLE fine (id INTEGER);\nINSERT INTO missing_table VALUES (1);');
    expect(() => openLibrary(path.join(root, 'lib'), { migrationsFolder: broken })).toThrow(/0002_bad/);
    const db = new Database(path.join(root, 'lib', 'library.sqlite'), { readonly: true });
    expect(db.prepare("SELECT name FROM sqlite_master WHERE name = 'fine'").get()).toBeUndefined();
    expect(db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get()).toEqual({ v: 1 });
    db.close();
  });

  it('0011 rebuilds import_batches to allow "interrupted" and keeps every batch, outcome and image pointing at it', () => {
    const root = tempFolder();
    const beforeRebuild = path.join(root, 'migrations-v10');
    fs.mkdirSync(beforeRebuild);
    for (const migration of loadMigrations().filter((migration) => migration.version <= 10)) {
      fs.writeFileSync(path.join(beforeRebuild, `${String(migration.version).padStart(4, '0')}_${migration.name}.sql`), migration.sql);
    }
    const old = openLibrary(path.join(root, 'lib'), { migrationsFolder: beforeRebuild });
    expect(old.schemaVersion).toBe(10);
    expect(() => old.db.prepare("INSERT INTO import_batches (started_at, status, source_paths) VALUES ('2026-01-01', 'interrupted', '[]')").run()).toThrow(
      /CHECK constraint/,
    );
    const batch = old.db.prepare(
      'INSERT INTO import_batches (id, started_at, finished_at, status, copy_into_library, source_paths, total_files, imported, duplicates, failed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
    );
    batch.run(1, '2026-01-01T00:00:00Z', '2026-01-01T00:01:00Z', 'completed', 1, '["/photos/a"]', 3, 2, 1, 0);
    batch.run(2, '2026-01-02T00:00:00Z', null, 'running', 0, '["/photos/b"]', 5, 0, 0, 0);
    const image = old.db.prepare(
      "INSERT INTO images (file_sha256, pixel_sha256, original_path, thumbnail_path, width, height, format, bytes, imported_at, batch_id) VALUES (?, ?, ?, ?, 10, 10, 'jpeg', 100, '2026-01-01', ?)",
    );
    const outcome = old.db.prepare("INSERT INTO import_outcomes (batch_id, path, outcome, image_id, at) VALUES (?, ?, 'imported', ?, '2026-01-01')");
    for (let index = 0; index < 4; index++) {
      const batchId = index < 2 ? 1 : 2;
      const imageId = image.run(`file${index}`, `pixels${index}`, `/photos/${index}.jpg`, `thumbnails/${index}.webp`, batchId).lastInsertRowid;
      outcome.run(batchId, `/photos/${index}.jpg`, imageId);
    }
    const rowsBefore = old.db.prepare('SELECT * FROM import_batches ORDER BY id').all();
    old.close();

    const upgraded = openLibrary(path.join(root, 'lib'));
    try {
      expect(upgraded.upgradedBy).toContain(11);
      expect(upgraded.db.prepare('SELECT * FROM import_batches ORDER BY id').all()).toEqual(rowsBefore);
      expect(upgraded.db.prepare('SELECT batch_id, COUNT(*) AS n FROM import_outcomes GROUP BY batch_id ORDER BY batch_id').all()).toEqual([
        { batch_id: 1, n: 2 },
        { batch_id: 2, n: 2 },
      ]);
      expect(upgraded.db.prepare('SELECT batch_id, COUNT(*) AS n FROM images GROUP BY batch_id ORDER BY batch_id').all()).toEqual([
        { batch_id: 1, n: 2 },
        { batch_id: 2, n: 2 },
      ]);
      // Foreign keys are on again, still point at the rebuilt table, and hold.
      expect(upgraded.db.pragma('foreign_keys', { simple: true })).toBe(1);
      expect(upgraded.db.pragma('foreign_key_check')).toEqual([]);
      expect(() =>
        upgraded.db
          .prepare(
            "INSERT INTO images (file_sha256, pixel_sha256, original_path, thumbnail_path, width, height, format, bytes, imported_at, batch_id) VALUES ('x', 'x', '/x', 't', 1, 1, 'jpeg', 1, '2026', 99)",
          )
          .run(),
      ).toThrow(/FOREIGN KEY/);
      upgraded.db.prepare("UPDATE import_batches SET status = 'interrupted' WHERE id = 2").run();
      expect(() => upgraded.db.prepare("UPDATE import_batches SET status = 'paused' WHERE id = 2").run()).toThrow(/CHECK constraint/);
      // Deleting a batch still takes its outcomes with it (ON DELETE CASCADE survived the rebuild).
      upgraded.db.prepare('DELETE FROM images WHERE batch_id = 2').run();
      upgraded.db.prepare('DELETE FROM import_batches WHERE id = 2').run();
      expect(upgraded.db.prepare('SELECT COUNT(*) AS n FROM import_outcomes WHERE batch_id = 2').get()).toEqual({ n: 0 });
      expect(
        upgraded.db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'import_batches' AND name = 'import_batches_status'").get(),
      ).toBeDefined();
    } finally {
      upgraded.close();
    }
  });

  it('rolls back a foreign-keys-off migration that would leave rows pointing nowhere, and turns foreign keys back on', () => {
    const root = tempFolder();
    const broken = path.join(root, 'migrations-dangling');
    fs.mkdirSync(broken);
    const first = loadMigrations()[0]!;
    fs.writeFileSync(path.join(broken, `0001_${first.name}.sql`), first.sql);
    fs.writeFileSync(
      path.join(broken, '0002_dangling.sql'),
      "-- migration-option: foreign-keys-off\nINSERT INTO import_outcomes (batch_id, path, outcome, at) VALUES (404, '/nowhere.jpg', 'failed', '2026');",
    );
    expect(() => openLibrary(path.join(root, 'lib'), { migrationsFolder: broken })).toThrow(/0002_dangling.*import_outcomes row 1 → import_batches/);
    const db = new Database(path.join(root, 'lib', 'library.sqlite'), { readonly: true });
    expect(db.prepare('SELECT COUNT(*) AS n FROM import_outcomes').get()).toEqual({ n: 0 });
    expect(db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get()).toEqual({ v: 1 });
    db.close();
  });

  it('refuses a file that is not a library with a message naming it', () => {
    const root = tempFolder();
    fs.mkdirSync(path.join(root, 'lib'));
    fs.writeFileSync(path.join(root, 'lib', 'library.sqlite'), 'not a database at all, just text that is long enough to be read');
    expect(() => openLibrary(path.join(root, 'lib'))).toThrow(/library\.sqlite/);
  });

  it('resolves the library folder from the option, the environment, then the application-data folder', () => {
    expect(resolveLibraryFolder('/tmp/x', { DERMWS_LIBRARY: '/tmp/y' })).toBe('/tmp/x');
    expect(resolveLibraryFolder(undefined, { DERMWS_LIBRARY: '/tmp/y' })).toBe('/tmp/y');
    expect(resolveLibraryFolder(undefined, { XDG_CONFIG_HOME: '/tmp/config' })).toBe(path.join('/tmp/config', 'derm-workstation', 'library'));
    expect(applicationDataFolder('win32', { APPDATA: 'C:\\Users\\a\\AppData\\Roaming' })).toContain('derm-workstation');
    expect(findMigrationsFolder()).toMatch(/migrations$/);
  });
});
