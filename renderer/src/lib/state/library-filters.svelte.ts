import type { CallOutput, ImageFilter } from '../../../../electron/common/contract.js';
import { api } from '../api/api.js';

export type Facet = CallOutput<'libraryFacets'>['facets'][number];
export type ImageCard = CallOutput<'imageCards'>['cards'][number];

/** One filter field the panel can set, named as the facet that offers its values. */
export interface FacetKey {
  field: Facet['field'];
  kind?: string;
}

export const facetId = (key: FacetKey): string => (key.kind ? `${key.field}:${key.kind}` : key.field);

/** The value a filter holds for a facet, as the facet writes it ('' when the facet is not filtered). */
export function facetValue(filter: ImageFilter, key: FacetKey): string {
  switch (key.field) {
    case 'label':
      return filter.labels?.find((label) => label.kind === key.kind)?.value ?? '';
    case 'fitzpatrick':
      return filter.fitzpatrick ?? '';
    case 'monkTone':
      return filter.monkTone ?? '';
    case 'bodySite':
      return filter.bodySite ?? '';
    case 'case':
      return filter.caseKey ?? '';
    case 'session':
      return filter.sessionId !== undefined ? String(filter.sessionId) : '';
    case 'annotator':
      return filter.annotator ?? '';
    case 'flag':
      return filter.flags?.[0] ?? '';
    case 'batch':
      return filter.batchId !== undefined ? String(filter.batchId) : '';
  }
}

/** The filter with one facet set to a value, or cleared when the value is ''. */
export function withFacet(filter: ImageFilter, key: FacetKey, value: string): ImageFilter {
  const next: ImageFilter = { ...filter };
  const set = <Field extends keyof ImageFilter>(field: Field, fieldValue: ImageFilter[Field] | undefined) => {
    if (fieldValue === undefined || fieldValue === '') delete next[field];
    else next[field] = fieldValue;
  };
  switch (key.field) {
    case 'label': {
      const others = (filter.labels ?? []).filter((label) => label.kind !== key.kind);
      const labels = value ? [...others, { kind: key.kind!, value }] : others;
      set('labels', labels.length > 0 ? labels : undefined);
      break;
    }
    case 'fitzpatrick':
      set('fitzpatrick', (value || undefined) as ImageFilter['fitzpatrick']);
      break;
    case 'monkTone':
      set('monkTone', value || undefined);
      break;
    case 'bodySite':
      set('bodySite', value || undefined);
      break;
    case 'case':
      set('caseKey', value || undefined);
      break;
    case 'session':
      set('sessionId', value ? Number(value) : undefined);
      break;
    case 'annotator':
      set('annotator', value || undefined);
      break;
    case 'flag':
      set('flags', value ? [value] : undefined);
      break;
    case 'batch':
      set('batchId', value ? Number(value) : undefined);
      break;
  }
  return next;
}

/**
 * The Library screen's filter panel: facet counts from the core for the grid's filter (a facet the
 * filter uses comes counted without its own choice, so another value can be picked directly).
 */
export class LibraryFacetsState {
  facets = $state.raw<Facet[]>([]);
  total = $state(0);
  loading = $state(false);
  private generation = 0;

  constructor(private readonly onError: (error: unknown) => void) {}

  async load(filter: ImageFilter): Promise<void> {
    const generation = ++this.generation;
    this.loading = true;
    try {
      const result = await api.libraryFacets({ filter });
      if (generation !== this.generation) return;
      this.facets = result.facets;
      this.total = result.total;
    } catch (error) {
      if (generation === this.generation) this.onError(error);
    } finally {
      if (generation === this.generation) this.loading = false;
    }
  }

  /** The display name of a facet value ('V', 'Eczema', a session's name), or the value itself. */
  display(key: FacetKey, value: string): string {
    const facet = this.facets.find((entry) => facetId(entry) === facetId(key));
    return facet?.values.find((entry) => entry.value === value)?.display ?? value;
  }

  title(key: FacetKey): string {
    return this.facets.find((entry) => facetId(entry) === facetId(key))?.title ?? key.kind ?? key.field;
  }
}

/**
 * What thumbnails show (condition, skin type, flags), fetched for the ids in view in batches and
 * kept until the library changes.
 */
export class ThumbnailCardsState {
  version = $state(0);
  private cards = new Map<number, ImageCard>();
  private pending = new Set<number>();
  private generation = 0;

  constructor(private readonly onError: (error: unknown) => void) {}

  get(imageId: number): ImageCard | undefined {
    return this.cards.get(imageId);
  }

  ensure(imageIds: readonly number[]): void {
    const missing = imageIds.filter((id) => !this.cards.has(id) && !this.pending.has(id)).slice(0, 2000);
    if (missing.length === 0) return;
    for (const id of missing) this.pending.add(id);
    const generation = this.generation;
    api
      .imageCards({ imageIds: missing })
      .then((result) => {
        if (generation !== this.generation) return;
        for (const card of result.cards) this.cards.set(card.imageId, card);
        this.version++;
      })
      .catch((error: unknown) => this.onError(error))
      .finally(() => {
        for (const id of missing) this.pending.delete(id);
      });
  }

  clear(): void {
    this.generation++;
    this.cards = new Map();
    this.pending = new Set();
    this.version++;
  }
}

/** Which facts thumbnails show. */
export interface ThumbnailBadges {
  condition: boolean;
  skinType: boolean;
  flags: boolean;
}

const romanNumerals = ['I', 'II', 'III', 'IV', 'V', 'VI'];

/** The skin type a thumbnail shows: annotators' Fitzpatrick label, else the self-report (marked), and the Monk tone. */
export function skinTypeBadge(card: ImageCard): string | null {
  const labelled = card.labels.fitzpatrick ?? [];
  const self = /^FST([1-6])$/.exec(card.metadata.fitzpatrick_self ?? '');
  const fitzpatrick = labelled.length > 0 ? labelled.join('/') : self ? `${romanNumerals[Number(self[1]) - 1]} (self)` : null;
  const monk = card.labels.monk_tone?.length ? `Monk ${card.labels.monk_tone.join('/')}` : null;
  const parts = [fitzpatrick, monk].filter((part): part is string => part !== null);
  return parts.length > 0 ? parts.join(' · ') : null;
}

/**
 * What a person compares between two images: condition, skin type, case, body site and flags, in
 * words (taxonomy display names where known). Missing facts say so instead of being left out.
 */
export function imageFacts(card: ImageCard, nameOf: (kind: string, code: string) => string): Array<[string, string]> {
  const bodySites = [...new Set([...(card.labels.body_site ?? []), ...(card.metadata.body_parts ?? '').split(';').filter((part) => part.trim() !== '')])];
  return [
    ['Condition', card.labels.condition?.map((code) => nameOf('condition', code)).join(', ') || 'not labelled'],
    ['Skin type', skinTypeBadge(card) ?? 'not recorded'],
    ['Case', card.caseKey ?? 'none'],
    ['Body site', bodySites.map((code) => nameOf('body_site', code)).join(', ') || 'not recorded'],
    ['Flags', card.flags.map((flag) => flag.replaceAll('_', ' ')).join(', ') || 'none'],
  ];
}
