import type Database from 'better-sqlite3';

/** Library-wide settings (thresholds, preferences) stored as JSON values in the `settings` table. */
export class SettingsRepository {
  constructor(private readonly db: Database.Database) {}

  get<T>(key: string): T | undefined {
    const row = this.db.prepare<unknown[], { value: string }>('SELECT value FROM settings WHERE key = ?').get(key);
    return row ? (JSON.parse(row.value) as T) : undefined;
  }

  /** Every stored key, in order. */
  keys(): string[] {
    return this.db
      .prepare<unknown[], { key: string }>('SELECT key FROM settings ORDER BY key')
      .all()
      .map((row) => row.key);
  }

  set(key: string, value: unknown): void {
    this.db
      .prepare(
        'INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at',
      )
      .run(key, JSON.stringify(value), new Date().toISOString());
  }
}
