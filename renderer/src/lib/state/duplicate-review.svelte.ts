import type { CallOutput } from '../../../../electron/common/contract.js';
import { api } from '../api/api.js';

export type DuplicateReport = CallOutput<'duplicatesFind'>;
export type DuplicateGroup = DuplicateReport['groups'][number];
export type ImageDecision = 'keep' | 'flag';

/** One applied decision, kept so it can be taken back exactly (only the images it changed). */
export interface AppliedDecision {
  groupKey: string;
  keep: number;
  flagged: number[];
  changedImages: number[];
}

export const groupKey = (group: DuplicateGroup): string => group.imageIds.join('-');

/**
 * The near-duplicate review: groups (cliques) most similar first, one decision per image (keep or
 * flag as duplicate), applied per group, and an undo stack of the decisions applied in this review.
 * Suggestions are only pre-selected; nothing is written until a group is applied.
 */
export class DuplicateReviewState {
  report = $state.raw<DuplicateReport | null>(null);
  decisions = $state.raw<Record<string, Record<number, ImageDecision>>>({});
  applied = $state.raw<AppliedDecision[]>([]);
  current = $state(0);
  busy = $state(false);

  constructor(private readonly onChanged: () => void) {}

  async find(threshold: number): Promise<void> {
    this.busy = true;
    try {
      const report = await api.duplicatesFind({ threshold });
      this.report = report;
      this.decisions = Object.fromEntries(report.groups.map((group) => [groupKey(group), suggestedDecisions(group)]));
      this.applied = [];
      this.current = 0;
    } finally {
      this.busy = false;
    }
  }

  decisionsOf(group: DuplicateGroup): Record<number, ImageDecision> {
    return this.decisions[groupKey(group)] ?? suggestedDecisions(group);
  }

  set(group: DuplicateGroup, imageId: number, decision: ImageDecision): void {
    const key = groupKey(group);
    this.decisions = { ...this.decisions, [key]: { ...this.decisionsOf(group), [imageId]: decision } };
  }

  appliedTo(group: DuplicateGroup): AppliedDecision | undefined {
    return this.applied.find((decision) => decision.groupKey === groupKey(group));
  }

  /** Images to flag and the one they are flagged as duplicates of (the first kept, the suggestion when kept). */
  plan(group: DuplicateGroup): { keep: number | null; flagged: number[] } {
    const decisions = this.decisionsOf(group);
    const kept = group.imageIds.filter((id) => decisions[id] !== 'flag');
    const flagged = group.imageIds.filter((id) => decisions[id] === 'flag');
    const keep = kept.includes(group.keep) ? group.keep : (kept[0] ?? null);
    return { keep, flagged };
  }

  async apply(group: DuplicateGroup): Promise<AppliedDecision> {
    const { keep, flagged } = this.plan(group);
    if (keep === null || flagged.length === 0) throw new Error('Keep at least one image and flag at least one before applying.');
    this.busy = true;
    try {
      const result = await api.duplicatesResolve({ keep, others: flagged, action: 'flag' });
      const decision: AppliedDecision = { groupKey: groupKey(group), keep, flagged, changedImages: result.changedImages };
      this.applied = [...this.applied, decision];
      this.advancePast(group);
      this.onChanged();
      return decision;
    } finally {
      this.busy = false;
    }
  }

  /** Takes back the most recent decision (or the one applied to `group`) and shows its group again. */
  async undo(group?: DuplicateGroup): Promise<AppliedDecision | undefined> {
    const decision = group ? this.appliedTo(group) : this.applied.at(-1);
    if (!decision) return undefined;
    this.busy = true;
    try {
      if (decision.changedImages.length > 0) await api.duplicatesUndo({ images: decision.changedImages, action: 'flag' });
      this.applied = this.applied.filter((entry) => entry !== decision);
      const index = this.report?.groups.findIndex((entry) => groupKey(entry) === decision.groupKey) ?? -1;
      if (index >= 0) this.current = index;
      this.onChanged();
      return decision;
    } finally {
      this.busy = false;
    }
  }

  private advancePast(group: DuplicateGroup): void {
    const groups = this.report?.groups ?? [];
    const from = groups.findIndex((entry) => groupKey(entry) === groupKey(group));
    const next = groups.findIndex((entry, index) => index > from && !this.appliedTo(entry));
    if (next >= 0) this.current = next;
  }
}

function suggestedDecisions(group: DuplicateGroup): Record<number, ImageDecision> {
  return Object.fromEntries(group.imageIds.map((id) => [id, id === group.keep ? 'keep' : 'flag']));
}
