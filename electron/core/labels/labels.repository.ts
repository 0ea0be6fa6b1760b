import type Database from 'better-sqlite3';
import type { LabelKind, LabelOrigin } from './label-kinds.js';
import { writeTransaction } from '../library/write-transaction.js';
import type { AnnotatorsRow, LabelAuditRow, LabelEditCursorsRow, LabelEditsRow, LabelsRow } from '../library/table-rows.js';

/** One value of a label slot. */
export interface LabelValue {
  value: string;
  confidence: number | null;
}

/** A current (or historical) label row with its annotator's name. */
export interface Label extends LabelValue {
  id: number;
  imageId: number;
  kind: LabelKind;
  annotator: string | null;
  annotatorId: number | null;
  sessionId: number | null;
  origin: LabelOrigin;
  createdAt: string;
}

/**
 * The set of labels that one change replaces: one image, one kind, one annotator's own labels of one
 * origin. Consensus labels form one slot per image and kind, whoever adjudicated.
 */
export interface LabelSlot {
  imageId: number;
  kind: LabelKind;
  origin: LabelOrigin;
  annotatorId: number | null;
}

export type AuditAction = 'set' | 'remove' | 'record' | 'import' | 'adjudicate' | 'undo' | 'redo';

export interface AuditEntry {
  id: number;
  at: string;
  action: AuditAction;
  editId: number | null;
  revertsEditId: number | null;
  annotator: string | null;
  sessionId: number | null;
  imageId: number;
  kind: LabelKind;
  origin: LabelOrigin;
  slotAnnotatorId: number | null;
  before: LabelValue[];
  after: LabelValue[];
}

export interface LabelEdit {
  id: number;
  annotatorId: number;
  previousEditId: number | null;
  sessionId: number | null;
  description: string;
  createdAt: string;
}

/** What `labelColumns` selects: a label with its annotator's name. */
type LabelRow = Omit<LabelsRow, 'superseded_at'> & { annotator: string | null };

function toLabel(row: LabelRow): Label {
  return {
    id: row.id,
    imageId: row.image_id,
    kind: row.kind as LabelKind,
    value: row.value,
    confidence: row.confidence,
    annotator: row.annotator,
    annotatorId: row.annotator_id,
    sessionId: row.session_id,
    origin: row.origin,
    createdAt: row.created_at,
  };
}

/** `la.*` with the annotator's name. */
type AuditRow = LabelAuditRow & { annotator: string | null };

function toAudit(row: AuditRow): AuditEntry {
  return {
    id: row.id,
    at: row.at,
    action: row.action,
    editId: row.edit_id,
    revertsEditId: row.reverts_edit_id,
    annotator: row.annotator,
    sessionId: row.session_id,
    imageId: row.image_id,
    kind: row.kind as LabelKind,
    origin: row.origin,
    slotAnnotatorId: row.slot_annotator_id,
    before: JSON.parse(row.before_values) as LabelValue[],
    after: JSON.parse(row.after_values) as LabelValue[],
  };
}

const labelColumns = 'l.id, l.image_id, l.kind, l.value, l.confidence, l.annotator_id, a.name AS annotator, l.session_id, l.origin, l.created_at';

/** Every read and write of `annotators`, `labels`, `label_audit`, `label_edits` and `label_edit_cursors`. */
export class LabelsRepository {
  /** Prepared once per SQL text: imports and undo run these statements thousands of times. */
  private readonly statements = new Map<string, Database.Statement<unknown[], unknown>>();

  constructor(private readonly db: Database.Database) {}

  /** `Row` is the shape of the rows `sql` returns; the cache is keyed by the SQL text, so one text always meets one `Row`. */
  private statement<Row = unknown>(sql: string): Database.Statement<unknown[], Row> {
    let statement = this.statements.get(sql) as Database.Statement<unknown[], Row> | undefined;
    if (!statement) {
      statement = this.db.prepare<unknown[], Row>(sql);
      this.statements.set(sql, statement);
    }
    return statement;
  }

  transaction<T>(work: () => T): T {
    return writeTransaction(this.db, work);
  }

  annotatorId(name: string): number | undefined {
    return this.statement<Pick<AnnotatorsRow, 'id'>>('SELECT id FROM annotators WHERE name = ?').get(name)?.id;
  }

  ensureAnnotator(name: string, at: string): number {
    this.statement('INSERT INTO annotators (name, created_at) VALUES (?, ?) ON CONFLICT(name) DO NOTHING').run(name, at);
    return this.annotatorId(name)!;
  }

  annotators(): Array<{ id: number; name: string; createdAt: string }> {
    return this.statement<AnnotatorsRow>('SELECT id, name, created_at FROM annotators ORDER BY name')
      .all()
      .map((row) => ({ id: row.id, name: row.name, createdAt: row.created_at }));
  }

  existingImageIds(ids: number[]): Set<number> {
    const found = new Set<number>();
    const statement = this.statement('SELECT id FROM images WHERE id = ?');
    for (const id of new Set(ids)) if (statement.get(id)) found.add(id);
    return found;
  }

  slotRows(slot: LabelSlot): Label[] {
    const rows =
      slot.origin === 'consensus'
        ? this.statement<LabelRow>(
            `SELECT ${labelColumns} FROM labels l INDEXED BY labels_current LEFT JOIN annotators a ON a.id = l.annotator_id
               WHERE l.image_id = ? AND l.kind = ? AND l.origin = 'consensus' AND l.superseded_at IS NULL ORDER BY l.value`,
          ).all(slot.imageId, slot.kind)
        : this.statement<LabelRow>(
            `SELECT ${labelColumns} FROM labels l INDEXED BY labels_current LEFT JOIN annotators a ON a.id = l.annotator_id
               WHERE l.image_id = ? AND l.kind = ? AND l.origin = ? AND l.annotator_id IS ? AND l.superseded_at IS NULL ORDER BY l.value`,
          ).all(slot.imageId, slot.kind, slot.origin, slot.annotatorId);
    // INDEXED BY: without statistics SQLite picks labels_kind_value or labels_annotator here and scans
    // every label of the kind (or annotator) on each call, which makes bulk imports quadratic.
    return rows.map(toLabel);
  }

  supersede(ids: number[], at: string): void {
    const statement = this.statement('UPDATE labels SET superseded_at = ? WHERE id = ? AND superseded_at IS NULL');
    for (const id of ids) statement.run(at, id);
  }

  insertLabel(slot: LabelSlot, value: LabelValue, writerId: number | null, sessionId: number | null, at: string): void {
    this.statement('INSERT INTO labels (image_id, kind, value, confidence, annotator_id, session_id, origin, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)').run(
      slot.imageId,
      slot.kind,
      value.value,
      value.confidence,
      slot.origin === 'consensus' ? writerId : slot.annotatorId,
      sessionId,
      slot.origin,
      at,
    );
  }

  insertAudit(entry: {
    at: string;
    action: AuditAction;
    editId: number | null;
    revertsEditId: number | null;
    annotatorId: number | null;
    sessionId: number | null;
    slot: LabelSlot;
    before: LabelValue[];
    after: LabelValue[];
  }): void {
    this.statement(
      `INSERT INTO label_audit (at, action, edit_id, reverts_edit_id, annotator_id, session_id, image_id, kind, origin, slot_annotator_id, before_values, after_values)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(
      entry.at,
      entry.action,
      entry.editId,
      entry.revertsEditId,
      entry.annotatorId,
      entry.sessionId,
      entry.slot.imageId,
      entry.slot.kind,
      entry.slot.origin,
      entry.slot.origin === 'consensus' ? null : entry.slot.annotatorId,
      JSON.stringify(entry.before),
      JSON.stringify(entry.after),
    );
  }

  insertEdit(edit: Omit<LabelEdit, 'id'>): number {
    return Number(
      this.statement('INSERT INTO label_edits (annotator_id, previous_edit_id, session_id, description, created_at) VALUES (?, ?, ?, ?, ?)').run(
        edit.annotatorId,
        edit.previousEditId,
        edit.sessionId,
        edit.description,
        edit.createdAt,
      ).lastInsertRowid,
    );
  }

  edit(id: number): LabelEdit | undefined {
    const row = this.statement<LabelEditsRow>('SELECT * FROM label_edits WHERE id = ?').get(id);
    return row
      ? {
          id: row.id,
          annotatorId: row.annotator_id,
          previousEditId: row.previous_edit_id,
          sessionId: row.session_id,
          description: row.description,
          createdAt: row.created_at,
        }
      : undefined;
  }

  /** The edit redo re-applies from `cursor`: the newest edit made when the cursor was there. */
  newestChildEdit(annotatorId: number, cursor: number | null): LabelEdit | undefined {
    const row = this.statement<Pick<LabelEditsRow, 'id'>>(
      'SELECT id FROM label_edits WHERE annotator_id = ? AND previous_edit_id IS ? ORDER BY id DESC LIMIT 1',
    ).get(annotatorId, cursor);
    return row ? this.edit(row.id) : undefined;
  }

  cursor(annotatorId: number): number | null {
    const row = this.statement<Pick<LabelEditCursorsRow, 'edit_id'>>('SELECT edit_id FROM label_edit_cursors WHERE annotator_id = ?').get(annotatorId);
    return row?.edit_id ?? null;
  }

  setCursor(annotatorId: number, editId: number | null, at: string): void {
    this.statement(
      'INSERT INTO label_edit_cursors (annotator_id, edit_id, updated_at) VALUES (?, ?, ?) ON CONFLICT(annotator_id) DO UPDATE SET edit_id = excluded.edit_id, updated_at = excluded.updated_at',
    ).run(annotatorId, editId, at);
  }

  /** The slot changes an edit made originally (not its later undo/redo rows), in the order made. */
  changesOfEdit(editId: number): AuditEntry[] {
    return this.statement<AuditRow>(
      `SELECT la.*, a.name AS annotator FROM label_audit la LEFT JOIN annotators a ON a.id = la.annotator_id WHERE la.edit_id = ? ORDER BY la.id`,
    )
      .all(editId)
      .map(toAudit);
  }

  audit(filter: { imageId?: number; annotatorId?: number; limit?: number } = {}): AuditEntry[] {
    const where: string[] = [];
    const params: unknown[] = [];
    if (filter.imageId !== undefined) {
      where.push('la.image_id = ?');
      params.push(filter.imageId);
    }
    if (filter.annotatorId !== undefined) {
      where.push('la.annotator_id = ?');
      params.push(filter.annotatorId);
    }
    params.push(filter.limit ?? -1);
    return this.statement<AuditRow>(
      `SELECT la.*, a.name AS annotator FROM label_audit la LEFT JOIN annotators a ON a.id = la.annotator_id
           ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY la.id LIMIT ?`,
    )
      .all(...params)
      .map(toAudit);
  }

  /** Current labels of the images, optionally only some kinds, origins or one annotator. */
  current(imageIds: number[] | undefined, filter: { kinds?: LabelKind[]; origins?: LabelOrigin[]; annotatorId?: number } = {}): Label[] {
    const where = ['l.superseded_at IS NULL'];
    const params: unknown[] = [];
    if (imageIds !== undefined) {
      if (imageIds.length === 0) return [];
      where.push('l.image_id IN (SELECT value FROM json_each(?))');
      params.push(JSON.stringify(imageIds));
    }
    if (filter.kinds?.length) {
      where.push('l.kind IN (SELECT value FROM json_each(?))');
      params.push(JSON.stringify(filter.kinds));
    }
    if (filter.origins?.length) {
      where.push('l.origin IN (SELECT value FROM json_each(?))');
      params.push(JSON.stringify(filter.origins));
    }
    if (filter.annotatorId !== undefined) {
      where.push('l.annotator_id = ?');
      params.push(filter.annotatorId);
    }
    return this.statement<LabelRow>(
      `SELECT ${labelColumns} FROM labels l LEFT JOIN annotators a ON a.id = l.annotator_id WHERE ${where.join(' AND ')} ORDER BY l.image_id, l.kind, l.origin, a.name, l.value`,
    )
      .all(...params)
      .map(toLabel);
  }
}
