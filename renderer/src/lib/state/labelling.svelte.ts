import type { CallOutput, SessionNext } from '../../../../electron/common/contract.js';
import { api, imageUrl } from '../api/api.js';

export type TaxonomyEntry = CallOutput<'taxonomyList'>['entries'][number];
export type LabelKindName = 'condition' | 'body_site' | 'fitzpatrick' | 'monk_tone' | 'severity' | 'gradable' | 'quality_flag';

/** The kinds shown in a session, in the order Tab walks through them. Every image starts on the first. */
export const sessionKinds: Array<{ kind: LabelKindName; title: string; multi: boolean }> = [
  { kind: 'condition', title: 'Condition', multi: true },
  { kind: 'body_site', title: 'Body site', multi: true },
  { kind: 'fitzpatrick', title: 'Fitzpatrick type', multi: false },
  { kind: 'monk_tone', title: 'Monk skin tone', multi: false },
  { kind: 'severity', title: 'Severity', multi: false },
  { kind: 'gradable', title: 'Gradable', multi: false },
  { kind: 'quality_flag', title: 'Quality flags', multi: true },
];

export const firstKind = sessionKinds[0]!.kind;

type DraftValue = { value: string; confidence: number | null };

/**
 * What a key press asks for. Keys are turned into commands when they are pressed and run strictly in
 * the order pressed: a command that arrives while the image is being saved waits until the next image
 * is shown, so a typed sequence means the same however fast the keys come and however slow the save is.
 */
export type LabellingCommand =
  | { type: 'save' }
  | { type: 'skip' }
  | { type: 'previous' }
  | { type: 'undo'; redo: boolean }
  | { type: 'cycle'; direction: 1 | -1 }
  | { type: 'key'; key: string }
  | { type: 'search' }
  | { type: 'note' };

/** Keys that may wait for the next image; more than this is not typing ahead but a stuck key or a cat. */
const maxQueuedCommands = 40;

/**
 * One labelling session in progress: the current image, the draft labels the annotator is building
 * (saved in one call on Enter), the time on this image, and the next image already decoded by the
 * browser so it appears at once.
 */
export class LabellingState {
  next = $state.raw<SessionNext | null>(null);
  taxonomy = $state.raw<TaxonomyEntry[]>([]);
  activeKind = $state<LabelKindName>(firstKind);
  draft = $state.raw<Partial<Record<LabelKindName, DraftValue[]>>>({});
  note = $state('');
  lastCondition = $state<string | null>(null);
  startedAt = $state(performance.now());
  /** A save, skip, previous or undo is in flight: the image on screen is about to change. */
  busy = $state(false);
  /** Key presses waiting for the next image. */
  queued = $state(0);
  /** The last key or action that did nothing, and why (shown beside the labels). */
  notice = $state<{ text: string; serial: number } | null>(null);
  private queue: LabellingCommand[] = [];
  private prefetched: HTMLImageElement | null = null;
  private touched = new Set<string>();
  private serial = 0;

  constructor(
    readonly sessionId: number,
    private readonly onError: (error: unknown) => void,
    /**
     * UI effects: focus the search field or the note, report an undo, and leave the previous image's
     * fields when a new image is shown (before the keys waiting for it run, which may focus one again).
     */
    private readonly effects: { focusSearch(): void; focusNote(): void; undone(description: string | null, redo: boolean): void; imageShown(): void },
  ) {}

  get current() {
    return this.next?.current ?? null;
  }

  get activeTitle(): string {
    return sessionKinds.find((entry) => entry.kind === this.activeKind)?.title ?? this.activeKind;
  }

  /** Whether the draft holds any label at all (a note alone is not a label). */
  get hasLabels(): boolean {
    return sessionKinds.some((entry) => (this.draft[entry.kind]?.length ?? 0) > 0);
  }

  entries(kind: LabelKindName): TaxonomyEntry[] {
    return this.taxonomy.filter((entry) => entry.kind === kind && !this.taxonomy.some((child) => child.parentCode === entry.code && child.kind === kind));
  }

  /** Display name of an entry's parent group (e.g. "Inflammatory"), for the list and the search. */
  groupOf(entry: TaxonomyEntry): string | null {
    if (!entry.parentCode) return null;
    return this.taxonomy.find((parent) => parent.kind === entry.kind && parent.code === entry.parentCode)?.displayName ?? null;
  }

  /** Entries of a kind whose name, code or group contains every word of the query (case-insensitive). */
  search(kind: LabelKindName, query: string): TaxonomyEntry[] {
    const words = query.toLowerCase().split(/\s+/).filter(Boolean);
    const entries = this.entries(kind);
    if (words.length === 0) return entries;
    return entries.filter((entry) => {
      const text = `${entry.displayName} ${entry.code.replaceAll('_', ' ')} ${this.groupOf(entry) ?? ''}`.toLowerCase();
      return words.every((word) => text.includes(word));
    });
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
    // Every image starts on the first kind, so the same keys mean the same labels on every image.
    this.activeKind = firstKind;
    this.notice = null;
    this.startedAt = performance.now();
    this.effects.imageShown();
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

  private refuse(text: string): void {
    this.notice = { text, serial: ++this.serial };
  }

  /**
   * Runs a command now, or after the image change in flight. Keys typed after Enter belong to the next
   * image: they wait for it rather than land on the image being saved (or be lost).
   */
  dispatch(command: LabellingCommand): void {
    if (this.busy) {
      if (this.queue.length >= maxQueuedCommands) {
        this.refuse(`More than ${maxQueuedCommands} keys are waiting for the next image; the rest were ignored.`);
        return;
      }
      this.queue.push(command);
      this.queued = this.queue.length;
      return;
    }
    if (!this.run(command)) this.dropQueue();
  }

  private dropQueue(): void {
    this.queue = [];
    this.queued = 0;
  }

  /** Runs queued commands until one starts another image change (the rest wait for that one). */
  private drain(): void {
    while (!this.busy && this.queue.length > 0) {
      const command = this.queue.shift()!;
      this.queued = this.queue.length;
      if (!this.run(command)) {
        // The keys after this one were typed for an image change that did not happen (a refused save)
        // or for a field that now has the focus: applying them here would label the wrong image.
        this.dropQueue();
        return;
      }
    }
  }

  /** Returns false when the commands typed after this one must not run. */
  private run(command: LabellingCommand): boolean {
    switch (command.type) {
      case 'save':
        return this.save();
      case 'skip': {
        const current = this.current;
        if (!current) return false;
        return this.change(() => api.sessionSkip({ sessionId: this.sessionId, imageId: current.imageId, secondsSpent: this.seconds() }));
      }
      case 'previous':
        return this.change(() => api.sessionPrevious({ sessionId: this.sessionId }));
      case 'undo': {
        const annotator = this.next?.session.annotator;
        if (!annotator) return false;
        return this.change(async () => {
          const result = command.redo ? await api.labelRedo({ annotator }) : await api.labelUndo({ annotator });
          this.effects.undone(result.description, command.redo);
          return api.sessionNext({ sessionId: this.sessionId });
        });
      }
      case 'cycle':
        this.cycleKind(command.direction);
        return true;
      case 'key':
        this.key(command.key);
        return true;
      case 'search':
        this.effects.focusSearch();
        return false;
      case 'note':
        this.effects.focusNote();
        return false;
    }
  }

  /** A letter or digit: a value of the active kind, or (in Condition) the confidence of the last condition chosen. */
  private key(key: string): void {
    if (!this.current) return;
    const kind = this.activeKind;
    if (kind === 'condition' && /^[1-5]$/.test(key)) {
      if (this.lastCondition) this.setConfidence(Number(key));
      else this.refuse(`${key} sets the confidence of a condition: choose the condition first.`);
      return;
    }
    const entries = this.entries(kind);
    const index = entries.findIndex((entry, position) => this.hotkeyOf(kind, entry, position) === key.toLowerCase());
    if (index >= 0) this.toggle(kind, entries[index]!.code);
    else this.refuse(`“${key}” is not a key in ${this.activeTitle}; nothing was chosen.`);
  }

  has(kind: LabelKindName, value: string): boolean {
    return (this.draft[kind] ?? []).some((entry) => entry.value === value);
  }

  toggle(kind: LabelKindName, value: string): void {
    if (this.busy || !this.current) return;
    const multi = sessionKinds.find((entry) => entry.kind === kind)?.multi ?? false;
    const values = this.draft[kind] ?? [];
    let next: DraftValue[];
    if (values.some((entry) => entry.value === value)) next = values.filter((entry) => entry.value !== value);
    else next = multi ? [...values, { value, confidence: null }] : [{ value, confidence: null }];
    this.draft = { ...this.draft, [kind]: next };
    this.touched.add(kind);
    this.notice = null;
    if (kind === 'condition') this.lastCondition = next.some((entry) => entry.value === value) ? value : null;
  }

  setConfidence(confidence: number): void {
    const target = this.lastCondition;
    if (!target || this.busy) return;
    this.draft = { ...this.draft, condition: (this.draft.condition ?? []).map((entry) => (entry.value === target ? { ...entry, confidence } : entry)) };
    this.touched.add('condition');
    this.notice = null;
  }

  setNote(text: string): void {
    this.note = text;
    this.touched.add('note');
  }

  /** Chooses a kind by click (the keyboard uses Tab). */
  selectKind(kind: LabelKindName): void {
    if (!this.busy) this.activeKind = kind;
  }

  private seconds(): number {
    return Math.min(86_400, Math.max(0, (performance.now() - this.startedAt) / 1000));
  }

  /** Starts an image change; the commands queued meanwhile run on the image it shows, or are dropped if it fails. */
  private change(action: () => Promise<SessionNext>): boolean {
    if (this.busy || !this.next) return false;
    this.busy = true;
    void action()
      .then((next) => {
        this.busy = false;
        this.show(next);
        this.drain();
      })
      .catch((error: unknown) => {
        this.busy = false;
        this.dropQueue();
        this.onError(error);
      });
    return true;
  }

  /** Saves the draft and moves on; with nothing chosen it refuses (skipping is its own key). */
  private save(): boolean {
    const current = this.current;
    if (!current) return false;
    if (!this.hasLabels) {
      this.refuse('Nothing is chosen, so nothing was saved. Choose a label first, or press → to skip this image.');
      return false;
    }
    const kinds = new Set<string>([...Object.keys(this.draft), ...this.touched]);
    const labels = [...kinds]
      .filter((kind) => kind !== 'note')
      .map((kind) => ({
        kind: kind as LabelKindName,
        values: (this.draft[kind as LabelKindName] ?? []).map((entry) => ({ value: entry.value, confidence: entry.confidence })),
      }));
    if (this.note.trim() || this.touched.has('note'))
      labels.push({ kind: 'note' as LabelKindName, values: this.note.trim() ? [{ value: this.note.trim(), confidence: null }] : [] });
    return this.change(() => api.sessionRecord({ sessionId: this.sessionId, imageId: current.imageId, labels, secondsSpent: this.seconds() }));
  }

  cycleKind(direction: 1 | -1): void {
    const index = sessionKinds.findIndex((entry) => entry.kind === this.activeKind);
    this.activeKind = sessionKinds[(index + direction + sessionKinds.length) % sessionKinds.length]!.kind;
    this.notice = null;
  }

  /** Keeps the prefetched image referenced until the next one replaces it. */
  get prefetchedSource(): string | null {
    return this.prefetched?.src ?? null;
  }
}
