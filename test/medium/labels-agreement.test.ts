import { describe, expect, it } from 'vitest';
import { EmbeddingsRepository } from '../../electron/core/embeddings/embeddings.repository.js';
import { createLabellingServices } from '../../electron/core/core.js';
import type { Library } from '../../electron/core/library/library.js';
import { insertSyntheticImages } from '../fixtures/library-fixture.js';
import { librariesPerTest } from '../helpers/libraries-per-test.js';

const { library } = librariesPerTest('dermws-agreement-');

const services = (lib: Library) => createLabellingServices(lib);

describe('agreement on stored labels', () => {
  it("computes Cohen's kappa per pair from the labels table (the 2×2 textbook table gives 0.4)", () => {
    const lib = library();
    const ids = insertSyntheticImages(lib, 52);
    const { labels, agreement } = services(lib);
    // 50 images rated by both: yes/yes 20, yes/no 5, no/yes 10, no/no 15; two more rated by A only.
    const pattern = [
      ...Array(20).fill(['yes', 'yes']),
      ...Array(5).fill(['yes', 'no']),
      ...Array(10).fill(['no', 'yes']),
      ...Array(15).fill(['no', 'no']),
    ] as Array<[string, string]>;
    const rows = pattern.flatMap(([a, b], index) => [
      { imageId: ids[index]!, kind: 'gradable', value: a, annotator: 'dr-a' },
      { imageId: ids[index]!, kind: 'gradable', value: b, annotator: 'dr-b' },
    ]);
    rows.push(
      { imageId: ids[50]!, kind: 'gradable', value: 'yes', annotator: 'dr-a' },
      { imageId: ids[51]!, kind: 'gradable', value: 'no', annotator: 'dr-a' },
    );
    for (const annotator of ['dr-a', 'dr-b']) {
      labels.importLabels(
        rows.filter((row) => row.annotator === annotator),
        { annotator, origin: 'manual' },
      );
    }
    const [gradable] = agreement.agreement({ kind: 'gradable' });
    expect(gradable!.annotators).toEqual(['dr-a', 'dr-b']);
    expect(gradable!.pairs).toEqual([{ annotatorA: 'dr-a', annotatorB: 'dr-b', items: 50, percentAgreement: 0.7, kappa: 0.4, expectedAgreement: 0.5 }]);
    expect(gradable!.group).toBeNull();
    expect(agreement.disagreements({ kind: 'gradable' })).toHaveLength(15);
  });

  it("computes Fleiss' kappa for three annotators, lists disagreements and drops them once adjudicated", () => {
    const lib = library();
    const ids = insertSyntheticImages(lib, 4);
    const { labels, agreement } = services(lib);
    const ratings: Record<string, string[]> = {
      'dr-a': ['I', 'II', 'III', 'IV'],
      'dr-b': ['I', 'II', 'III', 'V'],
      'dr-c': ['I', 'III', 'III', 'V'],
    };
    for (const [annotator, values] of Object.entries(ratings)) {
      values.forEach((value, index) => labels.setLabel({ imageId: ids[index]!, kind: 'fitzpatrick', value, annotator }));
    }
    // A consensus label is not a rater.
    labels.adjudicate({ imageId: ids[0]!, kind: 'fitzpatrick', values: [{ value: 'I' }], annotator: 'dr-lead' });
    const [fitzpatrick] = agreement.agreement({ kind: 'fitzpatrick' });
    expect(fitzpatrick!.annotators).toEqual(['dr-a', 'dr-b', 'dr-c']);
    expect(fitzpatrick!.pairs.map((pair) => `${pair.annotatorA}/${pair.annotatorB}:${pair.items}:${pair.percentAgreement}`)).toEqual([
      'dr-a/dr-b:4:0.75',
      'dr-a/dr-c:4:0.5',
      'dr-b/dr-c:4:0.75',
    ]);
    // By hand: P_i = 1, 1/3, 1, 1/3 → P̄ = 2/3; shares I 3/12, II 2/12, III 4/12, IV 1/12, V 2/12 → P̄e = 34/144.
    // κ = (2/3 − 34/144)/(1 − 34/144) = 62/110.
    expect(fitzpatrick!.group).toMatchObject({ items: 4, unanimous: 0.5 });
    expect(fitzpatrick!.group!.kappa).toBeCloseTo(62 / 110, 5);
    expect(fitzpatrick!.group!.meanPairAgreement).toBeCloseTo(2 / 3, 5);

    const open = agreement.disagreements({ kind: 'fitzpatrick' });
    expect(open.map((item) => item.imageId)).toEqual([ids[1], ids[3]]);
    expect(open[0]!.ratings).toEqual([
      { annotator: 'dr-a', values: ['II'] },
      { annotator: 'dr-b', values: ['II'] },
      { annotator: 'dr-c', values: ['III'] },
    ]);
    agreement.adjudicate({ imageId: ids[1]!, kind: 'fitzpatrick', values: [{ value: 'II' }], annotator: 'dr-lead' });
    expect(agreement.disagreements({ kind: 'fitzpatrick' }).map((item) => item.imageId)).toEqual([ids[3]]);
    const all = agreement.disagreements({ kind: 'fitzpatrick', includeAdjudicated: true });
    expect(all.find((item) => item.imageId === ids[1])!.consensus).toEqual(['II']);
    expect(labels.consensus(ids[1]!)[0]).toMatchObject({ origin: 'consensus', value: 'II', annotator: 'dr-lead' });
  });

  it('compares multi-valued kinds as sets and per value (presence/absence)', () => {
    const lib = library();
    const ids = insertSyntheticImages(lib, 3);
    const { labels, agreement } = services(lib);
    const give = (annotator: string, imageId: number, values: string[]) =>
      labels.replaceLabels({ imageId, annotator, action: 'set', labels: [{ kind: 'condition', values: values.map((value) => ({ value })) }] });
    give('dr-a', ids[0]!, ['eczema', 'tinea']);
    give('dr-b', ids[0]!, ['tinea', 'eczema']);
    give('dr-a', ids[1]!, ['eczema']);
    give('dr-b', ids[1]!, ['eczema', 'psoriasis']);
    give('dr-a', ids[2]!, ['psoriasis']);
    give('dr-b', ids[2]!, ['psoriasis']);
    const [condition] = agreement.agreement({ kind: 'condition' });
    expect(condition!.pairs[0]!.percentAgreement).toBeCloseTo(2 / 3, 5);
    const eczema = condition!.perValue!.find((entry) => entry.value === 'eczema')!;
    expect(eczema.pairs[0]).toMatchObject({ items: 3, percentAgreement: 1, kappa: 1 });
    const psoriasis = condition!.perValue!.find((entry) => entry.value === 'psoriasis')!;
    expect(psoriasis.pairs[0]!.percentAgreement).toBeCloseTo(2 / 3, 5);
    expect(agreement.disagreements({ kind: 'condition' }).map((item) => item.imageId)).toEqual([ids[1]]);
  });
});

describe('label suggestions', () => {
  it('weights the labels of the k nearest labelled images by cosine similarity', () => {
    const lib = library();
    const [query, near, middle, far, unlabelled] = insertSyntheticImages(lib, 5);
    const embeddings = new EmbeddingsRepository(lib.db);
    embeddings.registerModel({ id: 'm', displayName: 'M', dim: 2, sha256: '1'.repeat(64), source: 'imported', preprocessing: null });
    const at = (degrees: number) => [Math.cos((degrees * Math.PI) / 180), Math.sin((degrees * Math.PI) / 180)];
    embeddings.put('m', '1'.repeat(64), [
      { imageId: query!, vector: at(0) },
      { imageId: near!, vector: at(0).map((value) => value * 3) }, // same direction, different length: cosine 1
      { imageId: middle!, vector: at(60) }, // cosine 0.5
      { imageId: far!, vector: at(180) }, // cosine −1: weight 0
      { imageId: unlabelled!, vector: at(1) },
    ]);
    const { labels, suggestions } = services(lib);
    labels.setLabel({ imageId: near!, kind: 'condition', value: 'eczema', annotator: 'dr-a' });
    labels.setLabel({ imageId: middle!, kind: 'condition', value: 'psoriasis', annotator: 'dr-a' });
    labels.setLabel({ imageId: middle!, kind: 'condition', value: 'tinea', annotator: 'dr-b' });
    labels.setLabel({ imageId: far!, kind: 'condition', value: 'melanoma', annotator: 'dr-a' });
    labels.setLabel({ imageId: query!, kind: 'condition', value: 'urticaria', annotator: 'dr-a' });

    const result = suggestions.suggest(query!, { k: 3 });
    expect(result.method).toBe('exact-cosine');
    expect(result.neighbours.map((neighbour) => neighbour.imageId)).toEqual([near, middle, far]);
    expect(result.neighbours[0]!.similarity).toBeCloseTo(1, 6);
    expect(result.neighbours[1]!.similarity).toBeCloseTo(0.5, 6);
    // Weights 1/1.5 and 0.5/1.5; the middle image's vote is split between its two annotators.
    const score = Object.fromEntries(result.suggestions.map((suggestion) => [suggestion.value, suggestion.score]));
    expect(score.eczema).toBeCloseTo(2 / 3, 6);
    expect(score.psoriasis).toBeCloseTo(1 / 6, 6);
    expect(score.tinea).toBeCloseTo(1 / 6, 6);
    expect(score.melanoma).toBe(0);
    expect(result.suggestions[0]!.value).toBe('eczema');
    expect(score.urticaria).toBeUndefined();

    // A consensus label outweighs the annotators of that neighbour.
    labels.adjudicate({ imageId: middle!, kind: 'condition', values: [{ value: 'tinea' }], annotator: 'dr-lead' });
    const after = Object.fromEntries(suggestions.suggest(query!, { k: 2 }).suggestions.map((suggestion) => [suggestion.value, suggestion.score]));
    expect(after.tinea).toBeCloseTo(1 / 3, 6);
    expect(after.psoriasis).toBeUndefined();
    expect(() => suggestions.suggest(query!, { k: 0 })).toThrow(/k must be/);
  });
});
