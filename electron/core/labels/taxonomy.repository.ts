import type Database from 'better-sqlite3';
import type { LabelKind } from './label-kinds.js';
import { writeTransaction } from '../library/write-transaction.js';
import type { TaxonomyEntriesRow } from '../library/table-rows.js';

export interface TaxonomyEntry {
  kind: Exclude<LabelKind, 'note'>;
  code: string;
  displayName: string;
  parentCode: string | null;
  hotkey: string | null;
  sortOrder: number;
  builtIn: boolean;
}

type EntryRow = TaxonomyEntriesRow;

function toEntry(row: EntryRow): TaxonomyEntry {
  return {
    kind: row.kind as TaxonomyEntry['kind'],
    code: row.code,
    displayName: row.display_name,
    parentCode: row.parent_code,
    hotkey: row.hotkey,
    sortOrder: row.sort_order,
    builtIn: row.built_in === 1,
  };
}

/** Every read and write of `taxonomy_entries`, plus the usage counts taken from `labels`. */
export class TaxonomyRepository {
  constructor(private readonly db: Database.Database) {}

  all(kind?: string): TaxonomyEntry[] {
    const rows =
      kind === undefined
        ? this.db.prepare<unknown[], EntryRow>('SELECT * FROM taxonomy_entries ORDER BY kind, sort_order, code').all()
        : this.db.prepare<unknown[], EntryRow>('SELECT * FROM taxonomy_entries WHERE kind = ? ORDER BY sort_order, code').all(kind);
    return rows.map(toEntry);
  }

  get(kind: string, code: string): TaxonomyEntry | undefined {
    const row = this.db.prepare<unknown[], EntryRow>('SELECT * FROM taxonomy_entries WHERE kind = ? AND code = ?').get(kind, code);
    return row ? toEntry(row) : undefined;
  }

  count(): number {
    return this.db.prepare<unknown[], { n: number }>('SELECT COUNT(*) AS n FROM taxonomy_entries').get()!.n;
  }

  /** Inserts new entries and updates existing ones (by kind + code), all in the caller's transaction. */
  upsert(entries: TaxonomyEntry[], at: string): { added: number; updated: number } {
    const exists = this.db.prepare('SELECT 1 FROM taxonomy_entries WHERE kind = ? AND code = ?');
    // Hotkeys are unique per kind: clear the ones being reassigned first so a swap inside one import works.
    const clearHotkey = this.db.prepare('UPDATE taxonomy_entries SET hotkey = NULL WHERE kind = ? AND code = ?');
    const upsert = this.db.prepare(
      `INSERT INTO taxonomy_entries (kind, code, display_name, parent_code, hotkey, sort_order, built_in, created_at, updated_at)
       VALUES (@kind, @code, @displayName, @parentCode, @hotkey, @sortOrder, @builtIn, @at, @at)
       ON CONFLICT(kind, code) DO UPDATE SET display_name = excluded.display_name, parent_code = excluded.parent_code,
         hotkey = excluded.hotkey, sort_order = excluded.sort_order, updated_at = excluded.updated_at`,
    );
    let added = 0;
    let updated = 0;
    for (const entry of entries) {
      if (exists.get(entry.kind, entry.code)) {
        updated++;
        clearHotkey.run(entry.kind, entry.code);
      } else {
        added++;
      }
    }
    for (const entry of entries) upsert.run({ ...entry, builtIn: entry.builtIn ? 1 : 0, at });
    return { added, updated };
  }

  remove(kind: string, code: string): void {
    this.db.prepare('DELETE FROM taxonomy_entries WHERE kind = ? AND code = ?').run(kind, code);
  }

  childCount(kind: string, code: string): number {
    return this.db.prepare<unknown[], { n: number }>('SELECT COUNT(*) AS n FROM taxonomy_entries WHERE kind = ? AND parent_code = ?').get(kind, code)!.n;
  }

  /** Current labels (any annotator, any origin) that use the code. */
  labelUseCount(kind: string, code: string): number {
    return this.db.prepare<unknown[], { n: number }>('SELECT COUNT(*) AS n FROM labels WHERE kind = ? AND value = ? AND superseded_at IS NULL').get(kind, code)!
      .n;
  }

  /** Current label counts per (kind, code). */
  labelUseCounts(): Map<string, number> {
    const rows = this.db
      .prepare<unknown[], { kind: string; value: string; n: number }>(
        'SELECT kind, value, COUNT(*) AS n FROM labels WHERE superseded_at IS NULL GROUP BY kind, value',
      )
      .all();
    return new Map(rows.map((row) => [`${row.kind}\u0000${row.value}`, row.n]));
  }

  transaction<T>(work: () => T): T {
    return writeTransaction(this.db, work);
  }
}
