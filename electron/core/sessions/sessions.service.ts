import { DermError } from '../../common/errors.js';
import type { EmbeddingsRepository } from '../embeddings/embeddings.repository.js';
import type { Label, LabelsRepository } from '../labels/labels.repository.js';
import type { KindLabelsInput, LabelsService } from '../labels/labels.service.js';
import { parseFilter } from './image-filter.js';
import { clusterOrder, kMeans, seededShuffle } from './queue-order.js';
import {
  queueOrders,
  suggestionModes,
  type QueueOrder,
  type SessionItemRecord,
  type SessionRecord,
  type SessionsRepository,
  type SessionStatus,
  type SuggestionMode,
} from './sessions.repository.js';

export type { QueueOrder, SessionStatus, SuggestionMode } from './sessions.repository.js';

export interface CreateSessionInput {
  name: string;
  annotator: string;
  /** Filter clauses (see image-filter.ts); all must hold. Give this or imageIds, not both. */
  where?: string[];
  /** An explicit image list; the queue keeps this order for 'unlabelled-first' ties. */
  imageIds?: number[];
  order?: QueueOrder;
  /** Seed of 'random' and 'cluster' (default 1). */
  seed?: number;
  /** Embedding model for 'cluster' (default: the only model with embeddings). */
  modelId?: string;
  /** Cluster count for 'cluster' (default √(n/2), 2–50). */
  clusters?: number;
  /** Labels meant for inter-annotator agreement. */
  agreement?: boolean;
  /**
   * Whether predictions and suggestions show before the annotator has chosen. Default 'blind' for
   * agreement sessions (flagged, or sharing an image with another annotator's session), else 'shown'.
   */
  suggestions?: SuggestionMode;
}

export interface SessionSummary {
  id: number;
  name: string;
  annotator: string;
  order: QueueOrder;
  seed: number;
  imageSet: SessionRecord['imageSet'];
  orderDetails: Record<string, unknown> | null;
  status: SessionStatus;
  suggestions: SuggestionMode;
  agreement: boolean;
  /** Queue position of the image shown now (= total when every image is done). */
  position: number;
  total: number;
  labelled: number;
  skipped: number;
  remaining: number;
  secondsSpent: number;
  createdAt: string;
  updatedAt: string;
}

export interface SessionItem {
  position: number;
  imageId: number;
  secondsSpent: number;
  labelledAt: string | null;
  skippedAt: string | null;
  /** The session annotator's own current (manual) labels of the image. */
  labels: Label[];
}

export interface SessionNext {
  session: SessionSummary;
  /** The image to show now; null when the queue is done. */
  current: SessionItem | null;
  /** The next image still to do after it, for prefetching; null when none. */
  following: SessionItem | null;
}

export interface SessionStats {
  session: SessionSummary;
  progress: number;
  secondsTotal: number;
  secondsPerLabelledImage: { mean: number | null; median: number | null };
  /** Counts of this annotator's current labels on the session's images, per kind and value. */
  labelCounts: Record<string, Record<string, number>>;
  items: Array<{ position: number; imageId: number; secondsSpent: number; labelledAt: string | null; skippedAt: string | null }>;
}

const maxSessionImages = 500_000;

function checkSeconds(seconds: number | undefined): number {
  if (seconds === undefined) return 0;
  if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds < 0 || seconds > 86_400) {
    throw new DermError('invalid-input', `secondsSpent must be a number of seconds from 0 to 86400; got ${String(seconds)}.`, {
      field: 'secondsSpent',
      value: seconds,
    });
  }
  return seconds;
}

/**
 * Labelling sessions: a fixed queue of images for one annotator, resolved at creation (so a resumed
 * session shows the same images in the same order), with a persisted position, per-image time,
 * skip/previous/pause/resume and statistics. Labels are written through LabelsService under the
 * session's annotator, so sessions of different annotators over the same images never overwrite
 * each other.
 */
export class SessionsService {
  constructor(
    private readonly repository: SessionsRepository,
    private readonly labels: LabelsService,
    private readonly labelsRepository: LabelsRepository,
    private readonly embeddings: EmbeddingsRepository,
    private readonly now: () => Date = () => new Date(),
  ) {}

  create(input: CreateSessionInput): SessionSummary {
    const name = typeof input.name === 'string' ? input.name.trim() : '';
    if (name === '' || name.length > 200)
      throw new DermError('invalid-input', `name must be 1–200 characters; got ${JSON.stringify(input.name)}.`, { field: 'name' });
    const order = input.order ?? 'unlabelled-first';
    if (!(queueOrders as readonly string[]).includes(order)) {
      throw new DermError('invalid-input', `order "${order}" is not a queue order; expected one of ${queueOrders.join(', ')}.`, {
        field: 'order',
        value: order,
      });
    }
    const seed = input.seed ?? 1;
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff)
      throw new DermError('invalid-input', `seed must be a whole number from 0 to 4294967295; got ${String(seed)}.`, { field: 'seed' });
    if (input.suggestions !== undefined && !(suggestionModes as readonly string[]).includes(input.suggestions)) {
      throw new DermError('invalid-input', `suggestions "${String(input.suggestions)}" is not a mode; expected one of ${suggestionModes.join(', ')}.`, {
        field: 'suggestions',
        value: input.suggestions,
      });
    }
    if (input.agreement !== undefined && typeof input.agreement !== 'boolean') {
      throw new DermError('invalid-input', `agreement must be true or false; got ${String(input.agreement)}.`, { field: 'agreement' });
    }
    if (input.where !== undefined && input.imageIds !== undefined) {
      throw new DermError('invalid-input', 'Give the image set either as a filter (where) or as an explicit list (imageIds), not both.', { field: 'imageIds' });
    }

    let imageIds: number[];
    if (input.imageIds !== undefined) {
      input.imageIds.forEach((id, index) => {
        if (!Number.isInteger(id) || id <= 0)
          throw new DermError('invalid-input', `imageIds[${index}] must be a positive whole number; got ${String(id)}.`, { field: 'imageIds', index });
      });
      const unique = [...new Set(input.imageIds)];
      const { live, missing } = this.repository.liveImageIds(unique);
      if (missing.length > 0) {
        throw new DermError(
          'not-found',
          `Image${missing.length === 1 ? '' : 's'} ${missing.slice(0, 10).join(', ')}${missing.length > 10 ? ', …' : ''} not in the library (or deleted).`,
          {
            field: 'imageIds',
            missing,
          },
        );
      }
      imageIds = live;
    } else {
      imageIds = this.repository.filteredImageIds(parseFilter(input.where ?? []));
    }
    if (imageIds.length === 0)
      throw new DermError('invalid-input', 'The image set of the session is empty: no image matches.', { field: input.imageIds ? 'imageIds' : 'where' });
    if (imageIds.length > maxSessionImages)
      throw new DermError('invalid-input', `A session may hold at most ${maxSessionImages} images; this set has ${imageIds.length}.`, { field: 'where' });

    const at = this.now().toISOString();
    return this.repository.transaction(() => {
      const annotatorId = this.labelsRepository.ensureAnnotator(this.annotatorName(input.annotator), at);
      const { items, details } = this.orderQueue(order, imageIds, annotatorId, seed, input);
      const agreement = input.agreement ?? this.repository.sharedWithOtherAnnotator(imageIds, annotatorId);
      const id = this.repository.insertSession(
        {
          suggestions: input.suggestions ?? (agreement ? 'blind' : 'shown'),
          agreement,
          name,
          annotatorId,
          imageSet: input.imageIds !== undefined ? { imageIds: input.imageIds } : { where: input.where ?? [] },
          order,
          seed,
          orderDetails: details,
          status: 'active',
          createdAt: at,
          updatedAt: at,
        },
        items,
      );
      return this.summary(id);
    });
  }

  list(): SessionSummary[] {
    return this.repository.sessions().map((session) => this.summary(session.id));
  }

  get(sessionId: number): SessionSummary {
    this.session(sessionId);
    return this.summary(sessionId);
  }

  /** The image to show now (where an interrupted session left off) and the next one to prefetch. */
  next(sessionId: number): SessionNext {
    const session = this.session(sessionId);
    const current = this.repository.item(sessionId, session.position);
    const followingPosition = current ? this.repository.nextPending(sessionId, current.position + 1, true) : undefined;
    const following =
      followingPosition !== undefined && followingPosition !== current?.position ? this.repository.item(sessionId, followingPosition) : undefined;
    return {
      session: this.summary(sessionId),
      current: current ? this.item(session, current) : null,
      following: following ? this.item(session, following) : null,
    };
  }

  /**
   * Records the annotator's labels for an image of the session (each kind given replaces their values of
   * that kind), adds the time spent, and moves on to the next image still to do — one transaction.
   *
   * An image counts as done only when the annotator holds at least one label on it (a note alone does
   * not count): a "save" with nothing chosen is far more often a stray Enter than a decision, and
   * counting it would silently drop the image from the queue. Skipping is its own call.
   */
  record(sessionId: number, imageId: number, labels: KindLabelsInput[], secondsSpent?: number): SessionNext {
    const seconds = checkSeconds(secondsSpent);
    return this.repository.transaction(() => {
      const session = this.writable(sessionId);
      const item = this.sessionItem(session, imageId);
      const at = this.now().toISOString();
      this.labels.replaceLabels({ imageId, annotator: session.annotator, sessionId, labels, action: 'record' });
      const held = this.labels.currentLabels(imageId, { annotator: session.annotator, origins: ['manual'] }).filter((label) => label.kind !== 'note');
      if (held.length === 0) {
        // Throwing inside the transaction rolls back the write above: nothing is stored.
        throw new DermError(
          'invalid-input',
          `Nothing to record for image ${imageId} in session ${sessionId}: no label is chosen, so the image would count as done without a label. Choose at least one label, or skip the image.`,
          { field: 'labels', sessionId, imageId },
        );
      }
      this.repository.markItem(sessionId, item.position, 'labelled', seconds, at);
      this.advance(session, item.position, at);
      return this.next(sessionId);
    });
  }

  /** Skips an image (the current one unless given); it stays in the queue and can be revisited with previous. */
  skip(sessionId: number, imageId?: number, secondsSpent?: number): SessionNext {
    const seconds = checkSeconds(secondsSpent);
    return this.repository.transaction(() => {
      const session = this.writable(sessionId);
      const item = imageId === undefined ? this.repository.item(sessionId, session.position) : this.sessionItem(session, imageId);
      if (!item) throw new DermError('conflict', `Session ${sessionId} has no image left to skip.`, { sessionId });
      const at = this.now().toISOString();
      if (item.labelledAt === null) this.repository.markItem(sessionId, item.position, 'skipped', seconds, at);
      this.advance(session, item.position, at);
      return this.next(sessionId);
    });
  }

  /** Goes back one place in the queue (to review or correct the previous image). */
  previous(sessionId: number): SessionNext {
    return this.repository.transaction(() => {
      const session = this.writable(sessionId);
      if (session.position > 0) {
        this.repository.updateSession(sessionId, { position: session.position - 1, status: 'active' }, this.now().toISOString());
      }
      return this.next(sessionId);
    });
  }

  /** Changes whether the session shows predictions and suggestions before the annotator has chosen. */
  setSuggestions(sessionId: number, suggestions: SuggestionMode): SessionSummary {
    this.session(sessionId);
    if (!(suggestionModes as readonly string[]).includes(suggestions)) {
      throw new DermError('invalid-input', `suggestions "${String(suggestions)}" is not a mode; expected one of ${suggestionModes.join(', ')}.`, {
        field: 'suggestions',
        value: suggestions,
      });
    }
    this.repository.updateSuggestions(sessionId, suggestions, this.now().toISOString());
    return this.summary(sessionId);
  }

  pause(sessionId: number): SessionSummary {
    const session = this.session(sessionId);
    if (session.status === 'active') this.repository.updateSession(sessionId, { status: 'paused' }, this.now().toISOString());
    return this.summary(sessionId);
  }

  resume(sessionId: number): SessionNext {
    const session = this.session(sessionId);
    if (session.status === 'paused') this.repository.updateSession(sessionId, { status: 'active' }, this.now().toISOString());
    return this.next(sessionId);
  }

  stats(sessionId: number): SessionStats {
    const session = this.session(sessionId);
    const summary = this.summary(sessionId);
    const items = this.repository.items(sessionId);
    const times = items
      .filter((item) => item.labelledAt !== null)
      .map((item) => item.secondsSpent)
      .sort((a, b) => a - b);
    const mean = times.length ? times.reduce((sum, value) => sum + value, 0) / times.length : null;
    const median = times.length ? (times.length % 2 ? times[(times.length - 1) / 2]! : (times[times.length / 2 - 1]! + times[times.length / 2]!) / 2) : null;
    const labelCounts: Record<string, Record<string, number>> = {};
    const labels = this.labels.labelsForImages(
      items.map((item) => item.imageId),
      { annotator: session.annotator, origins: ['manual'] },
    );
    for (const list of labels.values()) {
      for (const label of list) {
        const byValue = (labelCounts[label.kind] ??= {});
        byValue[label.value] = (byValue[label.value] ?? 0) + 1;
      }
    }
    return {
      session: summary,
      progress: summary.total === 0 ? 1 : (summary.labelled + summary.skipped) / summary.total,
      secondsTotal: summary.secondsSpent,
      secondsPerLabelledImage: { mean, median },
      labelCounts,
      items: items.map(({ position, imageId, secondsSpent, labelledAt, skippedAt }) => ({ position, imageId, secondsSpent, labelledAt, skippedAt })),
    };
  }

  private annotatorName(name: string): string {
    const trimmed = typeof name === 'string' ? name.trim() : '';
    if (trimmed === '' || trimmed.length > 100)
      throw new DermError('invalid-input', `annotator must be a name of 1–100 characters; got ${JSON.stringify(name)}.`, { field: 'annotator' });
    return trimmed;
  }

  private session(sessionId: number): SessionRecord {
    if (!Number.isInteger(sessionId) || sessionId <= 0)
      throw new DermError('invalid-input', `session id must be a positive whole number; got ${String(sessionId)}.`, { field: 'sessionId' });
    const session = this.repository.session(sessionId);
    if (!session) throw new DermError('not-found', `There is no labelling session ${sessionId}.`, { sessionId });
    return session;
  }

  private writable(sessionId: number): SessionRecord {
    const session = this.session(sessionId);
    if (session.status === 'paused') throw new DermError('conflict', `Session ${sessionId} ("${session.name}") is paused; resume it first.`, { sessionId });
    return session;
  }

  private sessionItem(session: SessionRecord, imageId: number): SessionItemRecord {
    const item = this.repository.itemByImage(session.id, imageId);
    if (!item) throw new DermError('not-found', `Image ${imageId} is not in session ${session.id} ("${session.name}").`, { sessionId: session.id, imageId });
    return item;
  }

  /** Moves to the next image still to do after `from` (wrapping to earlier skipped-over gaps), or completes the session. */
  private advance(session: SessionRecord, from: number, at: string): void {
    const next = this.repository.nextPending(session.id, from + 1, true);
    if (next === undefined) {
      this.repository.updateSession(session.id, { position: this.repository.counts(session.id).total, status: 'completed' }, at);
    } else {
      this.repository.updateSession(session.id, { position: next, status: 'active' }, at);
    }
  }

  private item(session: SessionRecord, item: SessionItemRecord): SessionItem {
    return {
      position: item.position,
      imageId: item.imageId,
      secondsSpent: item.secondsSpent,
      labelledAt: item.labelledAt,
      skippedAt: item.skippedAt,
      labels: this.labels.currentLabels(item.imageId, { annotator: session.annotator, origins: ['manual'] }),
    };
  }

  private summary(sessionId: number): SessionSummary {
    const session = this.repository.session(sessionId)!;
    const counts = this.repository.counts(sessionId);
    return {
      id: session.id,
      name: session.name,
      annotator: session.annotator,
      order: session.order,
      seed: session.seed,
      imageSet: session.imageSet,
      orderDetails: session.orderDetails,
      status: session.status,
      suggestions: session.suggestions,
      agreement: session.agreement,
      position: session.position,
      total: counts.total,
      labelled: counts.labelled,
      skipped: counts.skipped,
      remaining: counts.total - counts.labelled - counts.skipped,
      secondsSpent: counts.seconds,
      createdAt: session.createdAt,
      updatedAt: session.updatedAt,
    };
  }

  private orderQueue(
    order: QueueOrder,
    imageIds: number[],
    annotatorId: number,
    seed: number,
    input: CreateSessionInput,
  ): { items: Array<{ imageId: number; queueKey: number | null }>; details: Record<string, unknown> | null } {
    switch (order) {
      case 'unlabelled-first': {
        // Not yet labelled by this annotator first; among those, images nobody labelled come first.
        const counts = this.repository.labelCounts(imageIds, annotatorId);
        const key = (id: number) => {
          const count = counts.get(id);
          return count === undefined ? 0 : count.mine === 0 ? 1 : 2;
        };
        const indexOf = new Map(imageIds.map((id, index) => [id, index]));
        const sorted = [...imageIds].sort((a, b) => key(a) - key(b) || indexOf.get(a)! - indexOf.get(b)!);
        return { items: sorted.map((imageId) => ({ imageId, queueKey: key(imageId) })), details: null };
      }
      case 'random': {
        const shuffled = seededShuffle(
          [...imageIds].sort((a, b) => a - b),
          seed,
        );
        return { items: shuffled.map((imageId) => ({ imageId, queueKey: null })), details: null };
      }
      case 'cluster':
        return this.clusterQueue(imageIds, seed, input);
      case 'uncertain':
        return this.uncertainQueue(imageIds);
    }
  }

  private clusterQueue(
    imageIds: number[],
    seed: number,
    input: CreateSessionInput,
  ): { items: Array<{ imageId: number; queueKey: number | null }>; details: Record<string, unknown> } {
    let modelId = input.modelId;
    if (modelId === undefined) {
      const models = this.embeddings.models().filter((model) => model.count > 0);
      if (models.length !== 1) {
        throw new DermError(
          'invalid-input',
          models.length === 0
            ? 'The cluster order needs embeddings, and the library has none yet; embed the images first.'
            : `The cluster order needs a model: choose one of ${models.map((model) => model.id).join(', ')}.`,
          { field: 'modelId' },
        );
      }
      modelId = models[0]!.id;
    }
    const matrix = this.embeddings.matrix(modelId, imageIds);
    if (matrix.imageIds.length === 0)
      throw new DermError('invalid-input', `None of the session's images has an embedding for model "${modelId}"; embed them first.`, {
        field: 'modelId',
        modelId,
      });
    const clusters = input.clusters ?? Math.max(2, Math.min(50, Math.round(Math.sqrt(matrix.imageIds.length / 2))));
    if (!Number.isInteger(clusters) || clusters < 1 || clusters > 1000)
      throw new DermError('invalid-input', `clusters must be a whole number from 1 to 1000; got ${String(clusters)}.`, { field: 'clusters' });
    const result = kMeans(matrix.data, matrix.dim, clusters, seed);
    const ordered = clusterOrder(result).map((row) => ({ imageId: matrix.imageIds[row]!, queueKey: result.assignments[row]! }));
    // Images without an embedding cannot be placed in a cluster; they come last, in id order.
    const embedded = new Set(matrix.imageIds);
    const rest = imageIds
      .filter((id) => !embedded.has(id))
      .sort((a, b) => a - b)
      .map((imageId) => ({ imageId, queueKey: null }));
    return { items: [...ordered, ...rest], details: { modelId, clusters: result.clusters, iterations: result.iterations, withoutEmbedding: rest.length } };
  }

  private uncertainQueue(imageIds: number[]): { items: Array<{ imageId: number; queueKey: number | null }>; details: Record<string, unknown> } {
    const run = this.repository.latestProbeRun();
    if (!run) {
      throw new DermError(
        'not-found',
        'The "uncertain" order needs a completed probe run with predictions, and this library has none yet; train a probe first (dermws probe train).',
        {
          field: 'order',
        },
      );
    }
    const margins = this.repository.probeMargins(run.id, imageIds);
    const withPrediction = imageIds.filter((id) => margins.has(id)).sort((a, b) => margins.get(a)! - margins.get(b)! || a - b);
    const rest = imageIds.filter((id) => !margins.has(id)).sort((a, b) => a - b);
    return {
      items: [...withPrediction.map((imageId) => ({ imageId, queueKey: margins.get(imageId)! })), ...rest.map((imageId) => ({ imageId, queueKey: null }))],
      details: { probeRunId: run.id, modelId: run.modelId, labelKind: run.labelKind, withoutPrediction: rest.length },
    };
  }
}
