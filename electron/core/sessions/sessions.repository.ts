import type Database from 'better-sqlite3';
import type { FilterClause } from './image-filter.js';
import { filterSql } from './image-filter.js';
import { writeTransaction } from '../library/write-transaction.js';
import type { LabellingSessionsRow, SessionItemsRow } from '../library/table-rows.js';

export const queueOrders = ['unlabelled-first', 'random', 'cluster', 'uncertain'] as const;
export type QueueOrder = (typeof queueOrders)[number];
export type SessionStatus = 'active' | 'paused' | 'completed';
export const suggestionModes = ['shown', 'blind'] as const;
/** 'blind': probe predictions and similar-image suggestions stay hidden until the annotator has chosen. */
export type SuggestionMode = (typeof suggestionModes)[number];

export interface SessionRecord {
  id: number;
  name: string;
  annotatorId: number;
  annotator: string;
  imageSet: { where?: string[]; imageIds?: number[] };
  order: QueueOrder;
  seed: number;
  orderDetails: Record<string, unknown> | null;
  status: SessionStatus;
  position: number;
  suggestions: SuggestionMode;
  /** Labels meant for inter-annotator agreement (blind by default). */
  agreement: boolean;
  createdAt: string;
  updatedAt: string;
}

export interface SessionItemRecord {
  position: number;
  imageId: number;
  queueKey: number | null;
  secondsSpent: number;
  labelledAt: string | null;
  skippedAt: string | null;
}

/** A labelling_sessions row with its annotator's name, as selectSession reads it. */
type SessionRow = LabellingSessionsRow & { annotator: string };

type ItemRow = SessionItemsRow;

const toSession = (row: SessionRow): SessionRecord => ({
  id: row.id,
  name: row.name,
  annotatorId: row.annotator_id,
  annotator: row.annotator,
  imageSet: JSON.parse(row.image_set) as SessionRecord['imageSet'],
  order: row.queue_order,
  seed: row.seed,
  orderDetails: row.order_details ? (JSON.parse(row.order_details) as Record<string, unknown>) : null,
  status: row.status,
  position: row.position,
  suggestions: row.suggestions,
  agreement: row.agreement === 1,
  createdAt: row.created_at,
  updatedAt: row.updated_at,
});

const toItem = (row: ItemRow): SessionItemRecord => ({
  position: row.position,
  imageId: row.image_id,
  queueKey: row.queue_key,
  secondsSpent: row.seconds_spent,
  labelledAt: row.labelled_at,
  skippedAt: row.skipped_at,
});

const selectSession = 'SELECT s.*, a.name AS annotator FROM labelling_sessions s JOIN annotators a ON a.id = s.annotator_id';

/** Every read and write of `labelling_sessions` and `session_items`, and the queries that build a queue. */
export class SessionsRepository {
  constructor(private readonly db: Database.Database) {}

  transaction<T>(work: () => T): T {
    return writeTransaction(this.db, work);
  }

  insertSession(session: Omit<SessionRecord, 'id' | 'annotator' | 'position'>, items: Array<{ imageId: number; queueKey: number | null }>): number {
    const id = Number(
      this.db
        .prepare(
          `INSERT INTO labelling_sessions (name, annotator_id, image_set, queue_order, seed, order_details, status, position, suggestions, agreement, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?)`,
        )
        .run(
          session.name,
          session.annotatorId,
          JSON.stringify(session.imageSet),
          session.order,
          session.seed,
          session.orderDetails ? JSON.stringify(session.orderDetails) : null,
          session.status,
          session.suggestions,
          session.agreement ? 1 : 0,
          session.createdAt,
          session.updatedAt,
        ).lastInsertRowid,
    );
    const insert = this.db.prepare('INSERT INTO session_items (session_id, position, image_id, queue_key) VALUES (?, ?, ?, ?)');
    items.forEach((item, position) => insert.run(id, position, item.imageId, item.queueKey));
    return id;
  }

  session(id: number): SessionRecord | undefined {
    const row = this.db.prepare<unknown[], SessionRow>(`${selectSession} WHERE s.id = ?`).get(id);
    return row ? toSession(row) : undefined;
  }

  sessions(): SessionRecord[] {
    return this.db.prepare<unknown[], SessionRow>(`${selectSession} ORDER BY s.id`).all().map(toSession);
  }

  updateSession(id: number, changes: { status?: SessionStatus; position?: number }, at: string): void {
    const current = this.session(id)!;
    this.db
      .prepare('UPDATE labelling_sessions SET status = ?, position = ?, updated_at = ? WHERE id = ?')
      .run(changes.status ?? current.status, changes.position ?? current.position, at, id);
  }

  updateSuggestions(id: number, suggestions: SuggestionMode, at: string): void {
    this.db.prepare('UPDATE labelling_sessions SET suggestions = ?, updated_at = ? WHERE id = ?').run(suggestions, at, id);
  }

  /** Whether another annotator's session holds any of these images (they are then labelled for agreement). */
  sharedWithOtherAnnotator(imageIds: number[], annotatorId: number): boolean {
    return (
      this.db
        .prepare(
          `SELECT 1 FROM session_items i JOIN labelling_sessions s ON s.id = i.session_id
           WHERE s.annotator_id <> ? AND i.image_id IN (SELECT value FROM json_each(?)) LIMIT 1`,
        )
        .get(annotatorId, JSON.stringify(imageIds)) !== undefined
    );
  }

  items(sessionId: number): SessionItemRecord[] {
    return this.db.prepare<unknown[], ItemRow>('SELECT * FROM session_items WHERE session_id = ? ORDER BY position').all(sessionId).map(toItem);
  }

  item(sessionId: number, position: number): SessionItemRecord | undefined {
    const row = this.db.prepare<unknown[], ItemRow>('SELECT * FROM session_items WHERE session_id = ? AND position = ?').get(sessionId, position);
    return row ? toItem(row) : undefined;
  }

  itemByImage(sessionId: number, imageId: number): SessionItemRecord | undefined {
    const row = this.db.prepare<unknown[], ItemRow>('SELECT * FROM session_items WHERE session_id = ? AND image_id = ?').get(sessionId, imageId);
    return row ? toItem(row) : undefined;
  }

  /** First position ≥ `from` (or, with `wrap`, anywhere) whose image is neither labelled nor skipped. */
  nextPending(sessionId: number, from: number, wrap: boolean): number | undefined {
    const after = this.db
      .prepare<unknown[], { position: number }>(
        'SELECT position FROM session_items WHERE session_id = ? AND position >= ? AND labelled_at IS NULL AND skipped_at IS NULL ORDER BY position LIMIT 1',
      )
      .get(sessionId, from);
    if (after || !wrap) return after?.position;
    return this.db
      .prepare<unknown[], { position: number }>(
        'SELECT position FROM session_items WHERE session_id = ? AND labelled_at IS NULL AND skipped_at IS NULL ORDER BY position LIMIT 1',
      )
      .get(sessionId)?.position;
  }

  markItem(sessionId: number, position: number, outcome: 'labelled' | 'skipped', seconds: number, at: string): void {
    this.db
      .prepare(
        outcome === 'labelled'
          ? 'UPDATE session_items SET labelled_at = ?, skipped_at = NULL, seconds_spent = seconds_spent + ? WHERE session_id = ? AND position = ?'
          : 'UPDATE session_items SET skipped_at = ?, seconds_spent = seconds_spent + ? WHERE session_id = ? AND position = ?',
      )
      .run(at, seconds, sessionId, position);
  }

  counts(sessionId: number): { total: number; labelled: number; skipped: number; seconds: number } {
    return this.db
      .prepare<unknown[], { total: number; labelled: number; skipped: number; seconds: number }>(
        `SELECT COUNT(*) AS total, COUNT(labelled_at) AS labelled,
           SUM(CASE WHEN labelled_at IS NULL AND skipped_at IS NOT NULL THEN 1 ELSE 0 END) AS skipped,
           COALESCE(SUM(seconds_spent), 0) AS seconds
         FROM session_items WHERE session_id = ?`,
      )
      .get(sessionId)!;
  }

  /** Image ids (not deleted) matching the filter, in id order. */
  filteredImageIds(clauses: FilterClause[]): number[] {
    const { sql, params } = filterSql(clauses);
    return this.db
      .prepare<unknown[], { id: number }>(`SELECT i.id FROM live_images i WHERE ${sql} ORDER BY i.id`)
      .all(...params)
      .map((row) => row.id);
  }

  /** Of the given ids, those that exist and are not deleted (in the order given). */
  liveImageIds(ids: number[]): { live: number[]; missing: number[] } {
    const statement = this.db.prepare('SELECT 1 FROM live_images WHERE id = ?');
    const live: number[] = [];
    const missing: number[] = [];
    for (const id of ids) (statement.get(id) ? live : missing).push(id);
    return { live, missing };
  }

  /** Per image: labels the annotator gave (any kind) and labels anyone gave. */
  labelCounts(imageIds: number[], annotatorId: number | undefined): Map<number, { mine: number; anyone: number }> {
    const rows = this.db
      .prepare<unknown[], { imageId: number; mine: number; anyone: number }>(
        `SELECT image_id AS imageId, SUM(CASE WHEN annotator_id IS ? THEN 1 ELSE 0 END) AS mine, COUNT(*) AS anyone
         FROM labels WHERE superseded_at IS NULL AND image_id IN (SELECT value FROM json_each(?)) GROUP BY image_id`,
      )
      .all(annotatorId ?? -1, JSON.stringify(imageIds));
    return new Map(rows.map((row) => [row.imageId, { mine: row.mine, anyone: row.anyone }]));
  }

  hasTable(name: string): boolean {
    return this.db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(name) !== undefined;
  }

  /** The newest completed probe run that stored predictions, or undefined. */
  latestProbeRun(): { id: number; modelId: string; labelKind: string; createdAt: string } | undefined {
    if (!this.hasTable('probe_runs') || !this.hasTable('probe_predictions')) return undefined;
    const row = this.db
      .prepare<unknown[], { id: number; modelId: string; labelKind: string; createdAt: string }>(
        `SELECT r.id, r.model_id AS modelId, r.label_kind AS labelKind, r.created_at AS createdAt FROM probe_runs r
         WHERE r.status = 'completed' AND EXISTS (SELECT 1 FROM probe_predictions p WHERE p.run_id = r.id)
         ORDER BY r.created_at DESC, r.id DESC LIMIT 1`,
      )
      .get();
    return row;
  }

  /** Per image: the probability closest to 0.5 among the run's labels, as |p − 0.5| (0 = most uncertain). */
  probeMargins(runId: number, imageIds: number[]): Map<number, number> {
    const rows = this.db
      .prepare<unknown[], { imageId: number; margin: number }>(
        `SELECT image_id AS imageId, MIN(ABS(probability - 0.5)) AS margin FROM probe_predictions
         WHERE run_id = ? AND image_id IN (SELECT value FROM json_each(?)) GROUP BY image_id`,
      )
      .all(runId, JSON.stringify(imageIds));
    return new Map(rows.map((row) => [row.imageId, row.margin]));
  }
}
