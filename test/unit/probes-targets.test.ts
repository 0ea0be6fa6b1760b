import { describe, expect, it } from 'vitest';
import {
  normaliseFitzpatrick,
  normaliseMonkTone,
  resolveMultiLabel,
  resolveQualityTargets,
  resolveSingleValue,
  type LabelRow,
} from '../../electron/core/probes/target-resolution.js';

const row = (imageId: number, value: string, origin: LabelRow['origin'] = 'manual', confidence: number | null = null): LabelRow => ({
  imageId,
  value,
  origin,
  confidence,
});

describe('turning labels into probe targets', () => {
  it('takes consensus over annotators, and any annotator above the confidence floor otherwise', () => {
    const resolved = resolveMultiLabel(
      [
        row(1, 'eczema', 'imported', 4),
        row(1, 'psoriasis', 'imported', 2),
        row(2, 'eczema', 'manual'),
        row(2, 'tinea', 'consensus'),
        row(3, 'acne', 'imported', 1),
      ],
      3,
    );
    expect(resolved.images).toEqual([1, 2, 3]);
    expect([...resolved.positives.get(1)!]).toEqual(['eczema']);
    expect([...resolved.unknown.get(1)!]).toEqual(['psoriasis']);
    expect([...resolved.positives.get(2)!]).toEqual(['tinea']);
    expect(resolved.positives.get(3)).toBeUndefined();
    expect([...resolved.unknown.get(3)!]).toEqual(['acne']);
  });

  it('keeps a value positive when one annotator is sure even if another is not', () => {
    const resolved = resolveMultiLabel([row(1, 'eczema', 'imported', 1), row(1, 'eczema', 'imported', 5)], 3);
    expect([...resolved.positives.get(1)!]).toEqual(['eczema']);
    expect(resolved.unknown.get(1)).toBeUndefined();
  });

  it('resolves single values by consensus, else majority, leaving ties out', () => {
    const resolved = resolveSingleValue([row(1, 'II'), row(1, 'II'), row(1, 'III'), row(2, 'IV'), row(2, 'V'), row(3, 'I'), row(3, 'VI', 'consensus')]);
    expect(resolved.get(1)).toBe('II');
    expect(resolved.has(2)).toBe(false);
    expect(resolved.get(3)).toBe('VI');
  });

  it('makes "ungradable" from gradable judgements and adds manual flags', () => {
    const resolved = resolveQualityTargets([row(1, 'no'), row(2, 'yes'), row(3, 'YES')], [row(2, 'blurry')], [{ imageId: 4, flag: 'dark' }]);
    expect(resolved.images).toEqual([1, 2, 3, 4]);
    expect([...resolved.positives.get(1)!]).toEqual(['ungradable']);
    expect([...resolved.positives.get(2)!]).toEqual(['blurry']);
    expect(resolved.positives.get(3)).toBeUndefined();
    expect([...resolved.positives.get(4)!]).toEqual(['dark']);
    expect([...resolved.unknown.get(4)!]).toEqual(['ungradable']);
  });

  it('normalises skin-tone values from labels and SCIN metadata', () => {
    expect(['FST3', 'III', '3', 'type iii', 'NONE_SELECTED', 'FST7'].map(normaliseFitzpatrick)).toEqual(['III', 'III', 'III', 'III', null, null]);
    expect(['1', ' 10 ', '11', 'x'].map(normaliseMonkTone)).toEqual(['1', '10', null, null]);
  });
});
