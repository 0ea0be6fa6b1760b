import type { z } from 'zod';
import type { groupAgreementSchema, pairAgreementSchema, valueAgreementSchema } from '../../common/contract.js';
import { DermError } from '../../common/errors.js';
import { cohensKappa, fleissKappa, unanimousAgreement } from './agreement.js';
import { labelKinds, multiValuedKinds, parseLabelKind, type LabelKind } from './label-kinds.js';
import type { LabelsService, LabelValueInput, SlotChange } from './labels.service.js';

/** Agreement of two annotators on the images both labelled (the contract's schema). */
export type PairAgreement = z.infer<typeof pairAgreementSchema>;

/** Fleiss' κ, unanimity and mean pairwise agreement of three or more annotators (the contract's schema). */
export type GroupAgreement = z.infer<typeof groupAgreementSchema>;

export type ValueAgreement = z.infer<typeof valueAgreementSchema>;

export interface KindAgreement {
  kind: LabelKind;
  annotators: string[];
  /** Cohen's κ for each pair of annotators, on the images both labelled. */
  pairs: PairAgreement[];
  /** Fleiss' κ when three or more annotators are compared, on the images all of them labelled. */
  group: GroupAgreement | null;
  /** Multi-valued kinds only: presence/absence agreement per value (binary κ). */
  perValue?: ValueAgreement[];
}

export interface Disagreement {
  imageId: number;
  kind: LabelKind;
  /** Each annotator's values (sorted codes) for the image. */
  ratings: Array<{ annotator: string; values: string[] }>;
  /** The adjudicated values, when the image was adjudicated for this kind. */
  consensus: string[] | null;
}

export interface AgreementOptions {
  kind?: string;
  /** Compare only these annotators (default: everyone who labelled the kind). */
  annotators?: string[];
}

type Ratings = Map<number, Map<string, string[]>>;

const categoryOf = (values: string[]) => values.join(' + ');
const round = (value: number | null) => (value === null || Number.isNaN(value) ? null : Math.round(value * 1e6) / 1e6);

/**
 * Agreement between annotators per label kind, the list of images they disagree on, and adjudication.
 * A rating is an annotator's full set of values for the kind (manual and imported labels; consensus
 * labels are never a rater). Two ratings agree when the sets are equal; multi-valued kinds also get a
 * per-value presence/absence κ.
 */
export class AgreementService {
  constructor(private readonly labels: LabelsService) {}

  agreement(options: AgreementOptions = {}): KindAgreement[] {
    const kinds = this.kinds(options.kind);
    return kinds.map((kind) => this.forKind(kind, options.annotators));
  }

  disagreements(options: AgreementOptions & { includeAdjudicated?: boolean } = {}): Disagreement[] {
    const out: Disagreement[] = [];
    for (const kind of this.kinds(options.kind)) {
      const ratings = this.ratings(kind, options.annotators);
      const consensus = this.labels.labelsForImages([...ratings.keys()], { kinds: [kind], origins: ['consensus'] });
      for (const [imageId, byAnnotator] of ratings) {
        if (byAnnotator.size < 2) continue;
        const categories = new Set([...byAnnotator.values()].map(categoryOf));
        if (categories.size < 2) continue;
        const adjudicated =
          consensus
            .get(imageId)
            ?.map((label) => label.value)
            .sort() ?? null;
        if (adjudicated && !options.includeAdjudicated) continue;
        out.push({
          imageId,
          kind,
          ratings: [...byAnnotator.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([annotator, values]) => ({ annotator, values })),
          consensus: adjudicated,
        });
      }
    }
    return out.sort((a, b) => a.imageId - b.imageId || labelKinds.indexOf(a.kind) - labelKinds.indexOf(b.kind));
  }

  /** Stores the adjudicated (consensus) label; exports mark it as consensus. */
  adjudicate(input: { imageId: number; kind: string; values: LabelValueInput[]; annotator: string }): SlotChange[] {
    return this.labels.adjudicate(input);
  }

  private kinds(kind: string | undefined): LabelKind[] {
    if (kind === undefined) return labelKinds.filter((candidate) => candidate !== 'note');
    const parsed = parseLabelKind(kind);
    if (parsed === 'note')
      throw new DermError('invalid-input', 'kind note is free text; agreement is measured on the other kinds.', { field: 'kind', value: kind });
    return [parsed];
  }

  /** image → annotator → sorted values, for the kind's manual and imported labels. */
  private ratings(kind: LabelKind, only: string[] | undefined): Ratings {
    const wanted = only ? new Set(only.map((name) => name.trim())) : undefined;
    const ratings: Ratings = new Map();
    for (const [imageId, labels] of this.labels.labelsForImages(undefined, { kinds: [kind], origins: ['manual', 'imported'] })) {
      const byAnnotator = new Map<string, string[]>();
      for (const label of labels) {
        const annotator = label.annotator ?? '(unknown)';
        if (wanted && !wanted.has(annotator)) continue;
        const values = byAnnotator.get(annotator) ?? [];
        if (!values.includes(label.value)) values.push(label.value);
        byAnnotator.set(annotator, values);
      }
      for (const values of byAnnotator.values()) values.sort();
      if (byAnnotator.size > 0) ratings.set(imageId, byAnnotator);
    }
    return ratings;
  }

  private forKind(kind: LabelKind, only: string[] | undefined): KindAgreement {
    const ratings = this.ratings(kind, only);
    const annotators = [...new Set([...ratings.values()].flatMap((byAnnotator) => [...byAnnotator.keys()]))].sort();
    const result: KindAgreement = {
      kind,
      annotators,
      pairs: this.pairs(annotators, ratings, categoryOf),
      group: this.group(annotators, ratings, categoryOf),
    };
    if (multiValuedKinds.has(kind)) {
      const values = [...new Set([...ratings.values()].flatMap((byAnnotator) => [...byAnnotator.values()].flat()))].sort();
      result.perValue = values.map((value) => {
        const presence = (list: string[]) => (list.includes(value) ? 'present' : 'absent');
        return { value, pairs: this.pairs(annotators, ratings, presence), group: this.group(annotators, ratings, presence) };
      });
    }
    return result;
  }

  private pairs(annotators: string[], ratings: Ratings, category: (values: string[]) => string): PairAgreement[] {
    const pairs: PairAgreement[] = [];
    for (let i = 0; i < annotators.length; i++) {
      for (let j = i + 1; j < annotators.length; j++) {
        const a: string[] = [];
        const b: string[] = [];
        for (const byAnnotator of ratings.values()) {
          const ratingA = byAnnotator.get(annotators[i]!);
          const ratingB = byAnnotator.get(annotators[j]!);
          if (ratingA && ratingB) {
            a.push(category(ratingA));
            b.push(category(ratingB));
          }
        }
        const kappa = cohensKappa(a, b);
        pairs.push({
          annotatorA: annotators[i]!,
          annotatorB: annotators[j]!,
          items: kappa.items,
          percentAgreement: round(kappa.observed),
          kappa: round(kappa.kappa),
          expectedAgreement: round(kappa.expected),
        });
      }
    }
    return pairs;
  }

  private group(annotators: string[], ratings: Ratings, category: (values: string[]) => string): GroupAgreement | null {
    if (annotators.length < 3) return null;
    const items: string[][] = [];
    for (const byAnnotator of ratings.values()) {
      if (annotators.every((annotator) => byAnnotator.has(annotator))) items.push(annotators.map((annotator) => category(byAnnotator.get(annotator)!)));
    }
    if (items.length === 0) return { annotators, items: 0, unanimous: null, meanPairAgreement: null, kappa: null };
    const fleiss = fleissKappa(items);
    return {
      annotators,
      items: items.length,
      unanimous: round(unanimousAgreement(items)),
      meanPairAgreement: round(fleiss.observed),
      kappa: round(fleiss.kappa),
    };
  }
}
