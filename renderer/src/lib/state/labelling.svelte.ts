import type { CallOutput, SessionNext } from '../../../../electron/common/contract.js';
import { api, imageUrl } from '../api/api.js';

export type TaxonomyEntry = CallOutput<'taxonomyList'>['entries'][number];
export type LabelKindName = 'condition' | 'body_site' | 'fitzpatrick' | 'monk_tone' | 'severity' | 'gradable' | 'quality_flag';

/** The kinds shown in a session, in the order Tab walks through them. */
export const sessionKinds: Array<{ kind: LabelKindName; title: string; multi: boolean }> = [
  { kind: 'condition', title: 'Condition', multi: true },
  { kind: 'body_site', title: 'Body site', multi: true },
  { kind: 'fitzpatrick', title: 'Fitzpatrick type', multi: false },
  { kind: 'monk_tone', title: 'Monk skin tone', multi: false },
  { kind: 'severity', title: 'Severity', multi: false },
  { kind: 'gradable', title: 'Gradable', multi: false },
  { kind: 'quality_flag', title: 'Quality flags', multi: true },
];

type DraftValue = { value: string; confidence: number | null };

/**
 * One labelling session in progress: the current image, the draft labels the annotator is building
 * (saved in one call on Enter), the time on this image, and the next image already decoded by the
 * browser so it appears at once.
 */
export class LabellingState {
  next = $state.raw<SessionNext | null>(null);
  taxonomy = $state.raw<TaxonomyEntry[]>([]);
  activeKind = $state<LabelKindName>('condition');
  draft = $state.raw<Partial<Record<LabelKindName, DraftValue[]>>>({});
  note = $state('');
  lastCondition = $state<string | null>(null);
  startedAt = $state(performance.now());
  busy = $state(false);
  private prefetched: HTMLImageElement | null = null;
  private touched = new Set<string>();

  constructor(
    readonly sessionId: number,
    private readonly onError: (error: unknown) => void,
  ) {}

  get current() {
    return this.next?.current ?? null;
  }

  entries(kind: LabelKindName): TaxonomyEntry[] {
    return this.taxonomy.filter((entry) => entry.kind === kind && !this.taxonomy.some((child) => child.parentCode === entry.code && child.kind === kind));
  }

  /** Digit keys for kinds without hotkeys (Fitzpatrick I–VI, Monk 1–10) follow the list order. */
  hotkeyOf(kind: LabelKindName, entry: TaxonomyEntry, index: number): string | null {
    if (entry.hotkey) return entry.hotkey;
    if (kind === 'fitzpatrick' || kind === 'monk_tone') return index < 9 ? String(index + 1) : index === 9 ? '0' : null;
    return null;
  }

  async load(): Promise<void> {
    try {
      const [taxonomy, next] = await Promise.all([api.taxonomyList({}), api.sessionNext({ sessionId: this.sessionId })]);
      this.taxonomy = taxonomy.entries;
      this.show(next);
    } catch (error) {
      this.onError(error);
    }
  }

  private show(next: SessionNext): void {
    this.next = next;
    const draft: Partial<Record<LabelKindName, DraftValue[]>> = {};
    this.note = '';
    for (const label of next.current?.labels ?? []) {
      if (label.kind === 'note') {
        this.note = label.value;
        continue;
      }
      const kind = label.kind as LabelKindName;
      draft[kind] = [...(draft[kind] ?? []), { value: label.value, confidence: label.confidence }];
    }
    this.draft = draft;
    this.touched = new Set();
    this.lastCondition = null;
    this.startedAt = performance.now();
    if (next.following) {
      // Decoding the next image now is what makes it appear without a visible delay.
      const image = new Image();
      image.src = imageUrl(next.following.imageId);
      void image.decode().catch(() => undefined);
      this.prefetched = image;
    } else {
      this.prefetched = null;
    }
  }

  has(kind: LabelKindName, value: string): boolean {
    return (this.draft[kind] ?? []).some((entry) => entry.value === value);
  }

  toggle(kind: LabelKindName, value: string): void {
    const multi = sessionKinds.find((entry) => entry.kind === kind)?.multi ?? false;
    const values = this.draft[kind] ?? [];
    let next: DraftValue[];
    if (values.some((entry) => entry.value === value)) next = values.filter((entry) => entry.value !== value);
    else next = multi ? [...values, { value, confidence: null }] : [{ value, confidence: null }];
    this.draft = { ...this.draft, [kind]: next };
    this.touched.add(kind);
    if (kind === 'condition') this.lastCondition = next.some((entry) => entry.value === value) ? value : null;
  }

  setConfidence(confidence: number): void {
    const target = this.lastCondition;
    if (!target) return;
    this.draft = { ...this.draft, condition: (this.draft.condition ?? []).map((entry) => (entry.value === target ? { ...entry, confidence } : entry)) };
    this.touched.add('condition');
  }

  setNote(text: string): void {
    this.note = text;
    this.touched.add('note');
  }

  private seconds(): number {
    return Math.min(86_400, Math.max(0, (performance.now() - this.startedAt) / 1000));
  }

  private async step(action: () => Promise<SessionNext>): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      this.show(await action());
    } catch (error) {
      this.onError(error);
    } finally {
      this.busy = false;
    }
  }

  save(): Promise<void> {
    const current = this.current;
    if (!current) return Promise.resolve();
    const kinds = new Set<string>([...Object.keys(this.draft), ...this.touched]);
    const labels = [...kinds]
      .filter((kind) => kind !== 'note')
      .map((kind) => ({ kind: kind as LabelKindName, values: (this.draft[kind as LabelKindName] ?? []).map((entry) => ({ value: entry.value, confidence: entry.confidence })) }));
    if (this.note.trim() || this.touched.has('note')) labels.push({ kind: 'note' as LabelKindName, values: this.note.trim() ? [{ value: this.note.trim(), confidence: null }] : [] });
    return this.step(() => api.sessionRecord({ sessionId: this.sessionId, imageId: current.imageId, labels, secondsSpent: this.seconds() }));
  }

  skip(): Promise<void> {
    const current = this.current;
    if (!current) return Promise.resolve();
    return this.step(() => api.sessionSkip({ sessionId: this.sessionId, imageId: current.imageId, secondsSpent: this.seconds() }));
  }

  previous(): Promise<void> {
    return this.step(() => api.sessionPrevious({ sessionId: this.sessionId }));
  }

  async undo(annotator: string, redo = false): Promise<string | null> {
    const result = redo ? await api.labelRedo({ annotator }) : await api.labelUndo({ annotator });
    await this.step(() => api.sessionNext({ sessionId: this.sessionId }));
    return result.description;
  }

  cycleKind(direction: 1 | -1): void {
    const index = sessionKinds.findIndex((entry) => entry.kind === this.activeKind);
    this.activeKind = sessionKinds[(index + direction + sessionKinds.length) % sessionKinds.length]!.kind;
  }

  /** Keeps the prefetched image referenced until the next one replaces it. */
  get prefetchedSource(): string | null {
    return this.prefetched?.src ?? null;
  }
}
