import { DermError } from '../../common/errors.js';
import { checkConfidence, maxNoteLength, multiValuedKinds, parseLabelKind, type LabelKind, type LabelOrigin } from './label-kinds.js';
import type { AuditAction, AuditEntry, Label, LabelEdit, LabelSlot, LabelsRepository, LabelValue } from './labels.repository.js';
import type { TaxonomyService } from './taxonomy.service.js';

export interface LabelValueInput {
  value: string;
  confidence?: number | null;
}

/** All of one kind's values an annotator gives an image (for single-valued kinds, at most one). */
export interface KindLabelsInput {
  kind: LabelKind;
  values: LabelValueInput[];
}

export interface SlotChange {
  imageId: number;
  kind: LabelKind;
  origin: LabelOrigin;
  annotator: string | null;
  before: LabelValue[];
  after: LabelValue[];
}

/** What undo or redo did. `edit` is null when there was nothing to undo or redo. */
export interface UndoRedoResult {
  edit: { id: number; description: string; sessionId: number | null; createdAt: string } | null;
  changes: SlotChange[];
  /** Whether another undo (after undo) or redo (after redo) is possible. */
  canUndo: boolean;
  canRedo: boolean;
}

export interface ImportLabelInput {
  imageId: number;
  kind: string;
  value: string;
  confidence?: number | null;
}

export interface ImportLabelsOptions {
  origin?: 'imported' | 'manual';
  annotator: string;
  /** 'add' (default): values the taxonomy lacks become new entries; 'reject': such rows are problems. */
  unknownValues?: 'add' | 'reject';
}

export interface ImportLabelsReport {
  /** Slots (image × kind) whose labels changed. */
  changedSlots: number;
  /** Slots that already held exactly these labels (a re-run adds nothing). */
  unchangedSlots: number;
  labels: number;
  /** Rows not imported, by their index in the input. */
  problems: Array<{ index: number; imageId: number; kind: string; value: string; message: string }>;
}

const canonical = (values: LabelValue[]) =>
  JSON.stringify([...values].sort((a, b) => (a.value < b.value ? -1 : a.value > b.value ? 1 : 0)).map((v) => [v.value, v.confidence]));

function sameValues(a: LabelValue[], b: LabelValue[]): boolean {
  return canonical(a) === canonical(b);
}

function annotatorName(name: string, field = 'annotator'): string {
  const trimmed = typeof name === 'string' ? name.trim() : '';
  // eslint-disable-next-line no-control-regex -- a name with control characters is refused, so the pattern must name them
  if (trimmed === '' || trimmed.length > 100 || /[\u0000-\u001f]/.test(trimmed)) {
    throw new DermError('invalid-input', `${field} must be a name of 1–100 printable characters; got ${JSON.stringify(name)}.`, { field, value: name });
  }
  return trimmed;
}

function checkImageId(imageId: number): void {
  if (!Number.isInteger(imageId) || imageId <= 0)
    throw new DermError('invalid-input', `image id must be a positive whole number; got ${String(imageId)}.`, { field: 'imageId', value: imageId });
}

/**
 * Labels per image and annotator. Every change goes through `changeSlots`, which writes the append-only
 * audit log and (for interactive changes) an edit on the annotator's undo stack, all in one transaction.
 */
export class LabelsService {
  constructor(
    private readonly repository: LabelsRepository,
    private readonly taxonomy: TaxonomyService,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** Sets one value. Multi-valued kinds (condition, body_site, quality_flag) add it (or change its confidence); others replace. */
  setLabel(input: { imageId: number; kind: string; value: string; confidence?: number | null; annotator: string; sessionId?: number | null }): SlotChange[] {
    const kind = parseLabelKind(input.kind);
    const value = this.normalizeValue(kind, { value: input.value, confidence: input.confidence ?? null }, 'value');
    const annotator = annotatorName(input.annotator);
    return this.interactive(
      annotator,
      input.sessionId ?? null,
      'set',
      `set ${kind} = ${value.value} on image ${input.imageId}`,
      (annotatorId) => {
        const slot: LabelSlot = { imageId: input.imageId, kind, origin: 'manual', annotatorId };
        const before = this.repository.slotRows(slot).map(toValue);
        const after = multiValuedKinds.has(kind) ? [...before.filter((existing) => existing.value !== value.value), value] : [value];
        return [{ slot, after }];
      },
      [input.imageId],
    );
  }

  /**
   * Gives every image of a selection the same value as one transaction and one undoable edit (one undo
   * takes the whole selection back). Images that already hold the value are left alone. When any id is
   * not in the library nothing is stored and the error names the ids.
   */
  labelImages(input: { imageIds: number[]; kind: string; value: string; confidence?: number | null; annotator: string }): {
    images: number;
    changed: SlotChange[];
  } {
    if (!Array.isArray(input.imageIds) || input.imageIds.length === 0) {
      throw new DermError('invalid-input', 'imageIds: give at least one image to label.', { field: 'imageIds' });
    }
    const kind = parseLabelKind(input.kind);
    const value = this.normalizeValue(kind, { value: input.value, confidence: input.confidence ?? null }, 'value');
    const annotator = annotatorName(input.annotator);
    const imageIds = [...new Set(input.imageIds)];
    const target = imageIds.length === 1 ? `image ${imageIds[0]}` : `${imageIds.length} images`;
    const changed = this.interactive(
      annotator,
      null,
      'set',
      `set ${kind} = ${value.value} on ${target}`,
      (annotatorId) =>
        imageIds.map((imageId) => {
          const slot: LabelSlot = { imageId, kind, origin: 'manual', annotatorId };
          const before = this.repository.slotRows(slot).map(toValue);
          return { slot, after: multiValuedKinds.has(kind) ? [...before.filter((existing) => existing.value !== value.value), value] : [value] };
        }),
      imageIds,
    );
    return { images: imageIds.length, changed };
  }

  /** Removes one value (multi-valued kinds need `value`) or, without a value, all of the kind's values of this annotator. */
  removeLabel(input: { imageId: number; kind: string; value?: string; annotator: string; sessionId?: number | null }): SlotChange[] {
    const kind = parseLabelKind(input.kind);
    const annotator = annotatorName(input.annotator);
    const removeValue = input.value === undefined ? undefined : kind === 'note' ? input.value : (this.taxonomy.resolve(kind, input.value) ?? input.value);
    return this.interactive(
      annotator,
      input.sessionId ?? null,
      'remove',
      `remove ${kind}${removeValue ? ` = ${removeValue}` : ''} from image ${input.imageId}`,
      (annotatorId) => {
        const slot: LabelSlot = { imageId: input.imageId, kind, origin: 'manual', annotatorId };
        const before = this.repository.slotRows(slot).map(toValue);
        if (removeValue !== undefined && !before.some((existing) => existing.value === removeValue)) {
          throw new DermError('not-found', `Image ${input.imageId} has no ${kind} label "${removeValue}" by ${annotator}.`, {
            imageId: input.imageId,
            kind,
            value: removeValue,
          });
        }
        return [{ slot, after: removeValue === undefined ? [] : before.filter((existing) => existing.value !== removeValue) }];
      },
      [input.imageId],
    );
  }

  /**
   * Replaces, for each kind given, all of the annotator's values of that kind on the image (an empty list
   * clears the kind), as one undoable edit. Labelling sessions record an image with this.
   */
  replaceLabels(input: { imageId: number; annotator: string; sessionId?: number | null; labels: KindLabelsInput[]; action?: 'record' | 'set' }): SlotChange[] {
    const annotator = annotatorName(input.annotator);
    const seen = new Set<LabelKind>();
    const normalized = input.labels.map((entry, index) => {
      const kind = parseLabelKind(entry.kind, `labels[${index}].kind`);
      if (seen.has(kind))
        throw new DermError('invalid-input', `labels[${index}]: kind ${kind} is given twice; give all of its values in one entry.`, { field: 'kind', kind });
      seen.add(kind);
      const values = this.normalizeValues(kind, entry.values, `labels[${index}]`);
      return { kind, values };
    });
    const action = input.action ?? 'record';
    const kinds = normalized.map((entry) => entry.kind).join(', ');
    return this.interactive(
      annotator,
      input.sessionId ?? null,
      action,
      `${action} ${kinds} on image ${input.imageId}`,
      (annotatorId) =>
        normalized.map(({ kind, values }) => ({ slot: { imageId: input.imageId, kind, origin: 'manual' as const, annotatorId }, after: values })),
      [input.imageId],
    );
  }

  /** Stores the adjudicated (consensus) values of a kind for an image, replacing any earlier consensus. */
  adjudicate(input: { imageId: number; kind: string; values: LabelValueInput[]; annotator: string }): SlotChange[] {
    const kind = parseLabelKind(input.kind);
    const values = this.normalizeValues(kind, input.values, 'values');
    if (values.length === 0) throw new DermError('invalid-input', 'values: adjudication needs at least one value.', { field: 'values' });
    const annotator = annotatorName(input.annotator);
    return this.interactive(
      annotator,
      null,
      'adjudicate',
      `adjudicate ${kind} = ${values.map((v) => v.value).join(', ')} on image ${input.imageId}`,
      () => [{ slot: { imageId: input.imageId, kind, origin: 'consensus', annotatorId: null }, after: values }],
      [input.imageId],
    );
  }

  /**
   * Bulk import (datasets): rows are grouped by image and kind, and each group replaces the annotator's
   * labels of that origin for the slot, so re-running an import changes nothing. Bad rows are reported
   * and skipped; the rest is stored in one transaction. Not on the undo stack, but in the audit log.
   */
  importLabels(rows: ImportLabelInput[], options: ImportLabelsOptions): ImportLabelsReport {
    const annotator = annotatorName(options.annotator);
    const origin = options.origin ?? 'imported';
    const unknownValues = options.unknownValues ?? 'add';
    const problems: ImportLabelsReport['problems'] = [];
    const existingImages = this.repository.existingImageIds(rows.map((row) => row.imageId));
    const valid: Array<{ index: number; imageId: number; kind: LabelKind; value: string; confidence: number | null }> = [];
    rows.forEach((row, index) => {
      const fail = (message: string) => problems.push({ index, imageId: row.imageId, kind: String(row.kind), value: String(row.value), message });
      try {
        if (!existingImages.has(row.imageId)) return fail(`image ${row.imageId} is not in the library`);
        const kind = parseLabelKind(String(row.kind));
        const confidence = checkConfidence(kind, row.confidence ?? null);
        const raw = typeof row.value === 'string' ? row.value.trim() : '';
        if (raw === '') return fail('the value is empty');
        if (kind === 'note' && raw.length > maxNoteLength) return fail(`a note may have at most ${maxNoteLength} characters`);
        valid.push({ index, imageId: row.imageId, kind, value: raw, confidence });
      } catch (error) {
        fail((error as Error).message);
      }
    });

    // Resolve values to taxonomy codes, adding the dataset's missing ones when allowed.
    const byKind = new Map<LabelKind, typeof valid>();
    for (const row of valid) {
      const list = byKind.get(row.kind);
      if (list) list.push(row);
      else byKind.set(row.kind, [row]);
    }
    const resolved: typeof valid = [];
    // Datasets repeat the same few values thousands of times: resolve each distinct one once.
    const cache = new Map<string, string | undefined>();
    const resolve = (kind: Exclude<LabelKind, 'note'>, value: string) => {
      const key = `${kind}\u0000${value}`;
      if (!cache.has(key)) cache.set(key, this.taxonomy.resolve(kind, value));
      return cache.get(key);
    };
    for (const [kind, kindRows] of byKind) {
      if (kind === 'note') {
        resolved.push(...kindRows);
        continue;
      }
      const unknown = [...new Set(kindRows.filter((row) => resolve(kind, row.value) === undefined).map((row) => row.value))];
      if (unknown.length > 0 && (unknownValues === 'reject' || kind !== 'condition')) {
        const rejected = new Set(unknown);
        for (const row of kindRows) {
          if (rejected.has(row.value)) {
            problems.push({ index: row.index, imageId: row.imageId, kind, value: row.value, message: `"${row.value}" is not in the ${kind} taxonomy` });
          }
        }
      } else if (unknown.length > 0) {
        const added = this.taxonomy.addMissing(kind, unknown);
        unknown.forEach((value, index) => cache.set(`${kind}\u0000${value}`, added[index]));
      }
      for (const row of kindRows) {
        const code = resolve(kind, row.value);
        if (code !== undefined) resolved.push({ ...row, value: code });
      }
    }

    type Group = { imageId: number; kind: LabelKind; values: Map<string, LabelValue>; indexes: number[] };
    const groups = new Map<string, Group>();
    for (const row of resolved) {
      const key = `${row.imageId}\u0000${row.kind}`;
      const group: Group = groups.get(key) ?? { imageId: row.imageId, kind: row.kind, values: new Map<string, LabelValue>(), indexes: [] };
      groups.set(key, group);
      // A dataset may repeat a value (SCIN lists one entry per labeller mention): keep the highest confidence.
      const earlier = group.values.get(row.value);
      if (!earlier || (row.confidence ?? 0) > (earlier.confidence ?? 0)) group.values.set(row.value, { value: row.value, confidence: row.confidence });
      group.indexes.push(row.index);
    }
    for (const group of groups.values()) {
      if (!multiValuedKinds.has(group.kind) && group.values.size > 1) {
        groups.delete(`${group.imageId}\u0000${group.kind}`);
        for (const index of group.indexes) {
          problems.push({
            index,
            imageId: group.imageId,
            kind: group.kind,
            value: String(rows[index]!.value),
            message: `${group.kind} takes one value per image and annotator; the rows give ${group.values.size} (${[...group.values.keys()].join(', ')})`,
          });
        }
      }
    }

    let changedSlots = 0;
    let unchangedSlots = 0;
    let labels = 0;
    this.repository.transaction(() => {
      const at = this.now().toISOString();
      const annotatorId = this.repository.ensureAnnotator(annotator, at);
      for (const group of groups.values()) {
        const slot: LabelSlot = { imageId: group.imageId, kind: group.kind, origin, annotatorId };
        const after = [...group.values.values()];
        labels += after.length;
        if (this.applySlot(slot, after, { action: 'import', at, editId: null, revertsEditId: null, actorId: annotatorId, sessionId: null })) changedSlots++;
        else unchangedSlots++;
      }
    });
    problems.sort((a, b) => a.index - b.index);
    return { changedSlots, unchangedSlots, labels, problems };
  }

  undo(annotator: string): UndoRedoResult {
    const name = annotatorName(annotator);
    return this.repository.transaction(() => {
      const annotatorId = this.repository.annotatorId(name);
      if (annotatorId === undefined) return { edit: null, changes: [], canUndo: false, canRedo: false };
      const cursor = this.repository.cursor(annotatorId);
      if (cursor === null) return { edit: null, changes: [], canUndo: false, canRedo: this.repository.newestChildEdit(annotatorId, null) !== undefined };
      const edit = this.repository.edit(cursor)!;
      const at = this.now().toISOString();
      const changes = this.repository.changesOfEdit(edit.id).reverse();
      const applied = this.replay('undo', edit, changes, { annotatorId, name, at });
      this.repository.setCursor(annotatorId, edit.previousEditId, at);
      return { edit: summary(edit), changes: applied.reverse(), canUndo: edit.previousEditId !== null, canRedo: true };
    });
  }

  redo(annotator: string): UndoRedoResult {
    const name = annotatorName(annotator);
    return this.repository.transaction(() => {
      const annotatorId = this.repository.annotatorId(name);
      if (annotatorId === undefined) return { edit: null, changes: [], canUndo: false, canRedo: false };
      const cursor = this.repository.cursor(annotatorId);
      const edit = this.repository.newestChildEdit(annotatorId, cursor);
      if (!edit) return { edit: null, changes: [], canUndo: cursor !== null, canRedo: false };
      const at = this.now().toISOString();
      const applied = this.replay('redo', edit, this.repository.changesOfEdit(edit.id), { annotatorId, name, at });
      this.repository.setCursor(annotatorId, edit.id, at);
      return { edit: summary(edit), changes: applied, canUndo: true, canRedo: this.repository.newestChildEdit(annotatorId, edit.id) !== undefined };
    });
  }

  /** Current labels of one image: every annotator's and the consensus, or only one annotator's. */
  currentLabels(imageId: number, options: { annotator?: string; kinds?: LabelKind[]; origins?: LabelOrigin[] } = {}): Label[] {
    checkImageId(imageId);
    return this.labelsForImages([imageId], options).get(imageId) ?? [];
  }

  /** Current labels of many images (export, agreement, suggestions), keyed by image id. */
  labelsForImages(imageIds: number[] | undefined, options: { annotator?: string; kinds?: LabelKind[]; origins?: LabelOrigin[] } = {}): Map<number, Label[]> {
    const filter: Parameters<LabelsRepository['current']>[1] = {};
    if (options.kinds) filter.kinds = options.kinds;
    if (options.origins) filter.origins = options.origins;
    if (options.annotator !== undefined) {
      const id = this.repository.annotatorId(annotatorName(options.annotator));
      if (id === undefined) return new Map();
      filter.annotatorId = id;
    }
    const byImage = new Map<number, Label[]>();
    for (const label of this.repository.current(imageIds, filter)) {
      const list = byImage.get(label.imageId);
      if (list) list.push(label);
      else byImage.set(label.imageId, [label]);
    }
    return byImage;
  }

  /** Consensus labels of an image (origin 'consensus'), optionally of one kind. */
  consensus(imageId: number, kind?: LabelKind): Label[] {
    return this.currentLabels(imageId, { origins: ['consensus'], ...(kind ? { kinds: [kind] } : {}) });
  }

  annotators(): Array<{ id: number; name: string; createdAt: string }> {
    return this.repository.annotators();
  }

  /** The audit log, oldest first, optionally for one image or one annotator. */
  history(filter: { imageId?: number; annotator?: string; limit?: number } = {}): AuditEntry[] {
    const query: Parameters<LabelsRepository['audit']>[0] = {};
    if (filter.imageId !== undefined) query.imageId = filter.imageId;
    if (filter.limit !== undefined) query.limit = filter.limit;
    if (filter.annotator !== undefined) {
      const id = this.repository.annotatorId(annotatorName(filter.annotator));
      if (id === undefined) return [];
      query.annotatorId = id;
    }
    return this.repository.audit(query);
  }

  /** Validates a value and maps it to its taxonomy code. */
  normalizeValue(kind: LabelKind, input: LabelValueInput, field: string): LabelValue {
    const confidence = checkConfidence(kind, input.confidence ?? null, `${field} confidence`);
    if (typeof input.value !== 'string' || input.value.trim() === '') {
      throw new DermError('invalid-input', `${field}: a ${kind} label needs a non-empty value.`, { field, kind });
    }
    if (kind === 'note') {
      const text = input.value.trim();
      if (text.length > maxNoteLength)
        throw new DermError('invalid-input', `${field}: a note may have at most ${maxNoteLength} characters; got ${text.length}.`, { field });
      return { value: text, confidence: null };
    }
    return { value: this.taxonomy.requireCode(kind, input.value, field), confidence };
  }

  private normalizeValues(kind: LabelKind, inputs: LabelValueInput[], field: string): LabelValue[] {
    if (!Array.isArray(inputs)) throw new DermError('invalid-input', `${field}.values must be a list.`, { field });
    const values = inputs.map((input, index) => this.normalizeValue(kind, input, `${field}.values[${index}]`));
    const unique = new Map(values.map((value) => [value.value, value]));
    if (unique.size !== values.length) throw new DermError('invalid-input', `${field}: a ${kind} value is given twice.`, { field, kind });
    if (!multiValuedKinds.has(kind) && values.length > 1) {
      throw new DermError('invalid-input', `${field}: ${kind} takes one value per image and annotator; got ${values.length}.`, { field, kind });
    }
    return values;
  }

  /**
   * Runs one interactive change as an undoable edit: computes each slot's new values inside the
   * transaction, skips slots that would not change, and records nothing at all for a no-op.
   */
  private interactive(
    annotator: string,
    sessionId: number | null,
    action: AuditAction,
    description: string,
    plan: (annotatorId: number) => Array<{ slot: LabelSlot; after: LabelValue[] }>,
    imageIds: number[],
  ): SlotChange[] {
    for (const imageId of imageIds) checkImageId(imageId);
    return this.repository.transaction(() => {
      const existing = this.repository.existingImageIds(imageIds);
      const missing = imageIds.filter((id) => !existing.has(id));
      if (missing.length > 0) {
        // A selection can be large: name the first few ids and count the rest.
        const named = `${missing.slice(0, 10).join(', ')}${missing.length > 10 ? ` and ${missing.length - 10} more` : ''}`;
        throw new DermError(
          'not-found',
          `${missing.length === 1 ? 'Image' : 'Images'} ${named} ${missing.length === 1 ? 'is' : 'are'} not in the library; nothing was stored.`,
          { imageIds: missing },
        );
      }
      const at = this.now().toISOString();
      const annotatorId = this.repository.ensureAnnotator(annotator, at);
      const planned = plan(annotatorId)
        .map(({ slot, after }) => ({ slot, before: this.repository.slotRows(slot).map(toValue), after }))
        .filter(({ before, after }) => !sameValues(before, after));
      if (planned.length === 0) return [];
      const editId = this.repository.insertEdit({ annotatorId, previousEditId: this.repository.cursor(annotatorId), sessionId, description, createdAt: at });
      for (const { slot, after } of planned) this.applySlot(slot, after, { action, at, editId, revertsEditId: null, actorId: annotatorId, sessionId });
      this.repository.setCursor(annotatorId, editId, at);
      return planned.map(({ slot, before, after }) => ({ imageId: slot.imageId, kind: slot.kind, origin: slot.origin, annotator, before, after }));
    });
  }

  /** Makes a slot hold exactly `after`: supersedes rows that go, inserts values that are new, keeps the rest untouched. */
  /**
   * Undo puts each slot of `changes` back from its `after` to its `before`; redo the other way. A slot
   * that no longer holds what the edit left there (or, for redo, what it found) was changed since:
   * the whole step is refused, and the caller's transaction keeps every slot as it was.
   */
  private replay(action: 'undo' | 'redo', edit: LabelEdit, changes: AuditEntry[], actor: { annotatorId: number; name: string; at: string }): SlotChange[] {
    const applied: SlotChange[] = [];
    for (const change of changes) {
      const [from, to] = action === 'undo' ? [change.after, change.before] : [change.before, change.after];
      const slot = slotOf(change);
      const current = this.repository.slotRows(slot).map(toValue);
      if (!sameValues(current, from)) {
        throw new DermError(
          'conflict',
          `Cannot ${action} "${edit.description}": the ${change.kind} labels of image ${change.imageId} were changed since (now ${describeValues(current)}). Nothing was ${action === 'undo' ? 'undone' : 'redone'}.`,
          { editId: edit.id, imageId: change.imageId, kind: change.kind },
        );
      }
      this.applySlot(slot, to, { action, at: actor.at, editId: null, revertsEditId: edit.id, actorId: actor.annotatorId, sessionId: edit.sessionId });
      applied.push({ imageId: change.imageId, kind: change.kind, origin: change.origin, annotator: actor.name, before: from, after: to });
    }
    return applied;
  }

  private applySlot(
    slot: LabelSlot,
    after: LabelValue[],
    context: { action: AuditAction; at: string; editId: number | null; revertsEditId: number | null; actorId: number | null; sessionId: number | null },
  ): boolean {
    const rows = this.repository.slotRows(slot);
    const before = rows.map(toValue);
    if (sameValues(before, after)) return false;
    const wanted = new Set(after.map((value) => `${value.value}\u0000${value.confidence}`));
    const kept = new Set<string>();
    const gone: number[] = [];
    for (const row of rows) {
      const key = `${row.value}\u0000${row.confidence}`;
      if (wanted.has(key) && !kept.has(key)) kept.add(key);
      else gone.push(row.id);
    }
    this.repository.supersede(gone, context.at);
    for (const value of after) {
      if (!kept.has(`${value.value}\u0000${value.confidence}`)) this.repository.insertLabel(slot, value, context.actorId, context.sessionId, context.at);
    }
    this.repository.insertAudit({
      at: context.at,
      action: context.action,
      editId: context.editId,
      revertsEditId: context.revertsEditId,
      annotatorId: context.actorId,
      sessionId: context.sessionId,
      slot,
      before,
      after,
    });
    return true;
  }
}

function toValue(label: Label): LabelValue {
  return { value: label.value, confidence: label.confidence };
}

function slotOf(change: AuditEntry): LabelSlot {
  return { imageId: change.imageId, kind: change.kind, origin: change.origin, annotatorId: change.origin === 'consensus' ? null : change.slotAnnotatorId };
}

function summary(edit: { id: number; description: string; sessionId: number | null; createdAt: string }): UndoRedoResult['edit'] {
  return { id: edit.id, description: edit.description, sessionId: edit.sessionId, createdAt: edit.createdAt };
}

function describeValues(values: LabelValue[]): string {
  return values.length === 0 ? 'none' : values.map((value) => (value.confidence === null ? value.value : `${value.value} (${value.confidence})`)).join(', ');
}
