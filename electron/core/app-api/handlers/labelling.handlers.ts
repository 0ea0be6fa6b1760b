import type { labellingCalls } from '../../../common/contract/labelling.js';
import type { CallOutput } from '../../../common/contract.js';
import type { Core } from '../../core.js';
import type { AuditEntry, Label } from '../../labels/labels.repository.js';
import type { SlotChange, UndoRedoResult } from '../../labels/labels.service.js';
import type { HandlerGroup } from '../app-api.js';

function shownLabel(label: Label) {
  return { kind: label.kind, value: label.value, confidence: label.confidence, annotator: label.annotator, origin: label.origin };
}

function slotChange(change: SlotChange) {
  return { imageId: change.imageId, kind: change.kind, origin: change.origin, annotator: change.annotator, before: change.before, after: change.after };
}

/** labelSet's and labelRemove's output: the slot changes made and the image's labels after them (also what `dermws label --json` prints). */
export function labelChangeOutput(core: Core, imageId: number, changes: SlotChange[]): CallOutput<'labelSet'> {
  return { labels: core.labels.currentLabels(imageId).map(shownLabel), changes: changes.map(slotChange) };
}

/** labelUndo's and labelRedo's output (also what `dermws label undo|redo --json` prints). */
export function undoOutput(result: UndoRedoResult): CallOutput<'labelUndo'> {
  return { description: result.edit?.description ?? null, canUndo: result.canUndo, canRedo: result.canRedo, changes: result.changes.map(slotChange) };
}

/** labelHistory's output (also what `dermws label history --json` prints); the slot's annotator id stays inside. */
export function labelHistoryOutput(entries: AuditEntry[]): CallOutput<'labelHistory'> {
  return {
    entries: entries.map((entry) => ({
      id: entry.id,
      at: entry.at,
      action: entry.action,
      editId: entry.editId,
      revertsEditId: entry.revertsEditId,
      sessionId: entry.sessionId,
      ...slotChange(entry),
    })),
  };
}

export const labellingHandlers: HandlerGroup<keyof typeof labellingCalls> = {
  taxonomyList: (input, { core }) => {
    core.taxonomy.ensureStarter();
    return { entries: core.taxonomy.list(input.kind) };
  },
  labelsOfImage: (input, { core }) => {
    // An unknown image is a 404, not an empty list that looks like "no labels yet".
    core.images.require(input.imageId);
    return { labels: core.labels.currentLabels(input.imageId, input.annotator ? { annotator: input.annotator } : {}).map(shownLabel) };
  },
  labelSet: (input, { core, emit }) => {
    // A session named must exist: its id is stored with the change and its undo.
    if (input.sessionId !== undefined) core.sessions.get(input.sessionId);
    const changes = core.labels.setLabel({
      imageId: input.imageId,
      kind: input.kind,
      value: input.value,
      confidence: input.confidence ?? null,
      annotator: input.annotator,
      sessionId: input.sessionId ?? null,
    });
    emit({ type: 'library-changed', what: 'labels' });
    return labelChangeOutput(core, input.imageId, changes);
  },
  labelImages: (input, { core, emit }) => {
    const result = core.labels.labelImages({
      imageIds: input.imageIds,
      kind: input.kind,
      value: input.value,
      confidence: input.confidence ?? null,
      annotator: input.annotator,
    });
    if (result.changed.length > 0) emit({ type: 'library-changed', what: 'labels' });
    return { images: result.images, changed: new Set(result.changed.map((change) => change.imageId)).size };
  },
  labelRemove: (input, { core, emit }) => {
    if (input.sessionId !== undefined) core.sessions.get(input.sessionId);
    const changes = core.labels.removeLabel({
      imageId: input.imageId,
      kind: input.kind,
      annotator: input.annotator,
      sessionId: input.sessionId ?? null,
      ...(input.value ? { value: input.value } : {}),
    });
    emit({ type: 'library-changed', what: 'labels' });
    return labelChangeOutput(core, input.imageId, changes);
  },
  labelUndo: (input, { core, emit }) => {
    const result = core.labels.undo(input.annotator);
    emit({ type: 'library-changed', what: 'labels' });
    return undoOutput(result);
  },
  labelRedo: (input, { core, emit }) => {
    const result = core.labels.redo(input.annotator);
    emit({ type: 'library-changed', what: 'labels' });
    return undoOutput(result);
  },
  labelHistory: (input, { core }) => {
    // Naming an image that does not exist is a 404, as for every call that names an image.
    if (input.imageId !== undefined) core.images.require(input.imageId);
    return labelHistoryOutput(
      core.labels.history({
        ...(input.imageId !== undefined ? { imageId: input.imageId } : {}),
        ...(input.annotator ? { annotator: input.annotator } : {}),
        ...(input.limit !== undefined ? { limit: input.limit } : {}),
      }),
    );
  },
  labelSuggestions: (input, { core }) => {
    core.images.require(input.imageId);
    const result = core.suggestions.suggest(input.imageId, {
      ...(input.kind ? { kind: input.kind } : {}),
      ...(input.modelId ? { modelId: input.modelId } : {}),
      ...(input.k ? { k: input.k } : {}),
    });
    return { modelId: result.modelId, suggestions: result.suggestions };
  },
  sessionCreate: (input, { core }) => {
    core.taxonomy.ensureStarter();
    return core.sessions.create({
      name: input.name,
      annotator: input.annotator,
      ...(input.where ? { where: input.where } : {}),
      ...(input.imageIds ? { imageIds: input.imageIds } : {}),
      ...(input.order ? { order: input.order } : {}),
      ...(input.seed !== undefined ? { seed: input.seed } : {}),
      ...(input.agreement !== undefined ? { agreement: input.agreement } : {}),
      ...(input.suggestions ? { suggestions: input.suggestions } : {}),
    });
  },
  sessionList: (_input, { core }) => ({ sessions: core.sessions.list() }),
  sessionNext: (input, { core }) => core.sessions.next(input.sessionId),
  sessionRecord: (input, { core, emit }) => {
    const next = core.sessions.record(
      input.sessionId,
      input.imageId,
      input.labels.map((entry) => ({ kind: entry.kind, values: entry.values.map((value) => ({ value: value.value, confidence: value.confidence ?? null })) })),
      input.secondsSpent,
    );
    emit({ type: 'library-changed', what: 'labels' });
    return next;
  },
  sessionSkip: (input, { core }) => core.sessions.skip(input.sessionId, input.imageId, input.secondsSpent),
  sessionPrevious: (input, { core }) => core.sessions.previous(input.sessionId),
  sessionPause: (input, { core }) => core.sessions.pause(input.sessionId),
  sessionSetSuggestions: (input, { core }) => core.sessions.setSuggestions(input.sessionId, input.suggestions),
};
