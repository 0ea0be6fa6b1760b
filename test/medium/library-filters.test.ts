import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { CallOutput } from '../../electron/common/contract.js';
import type { AppApi } from '../../electron/core/app-api/app-api.js';
import { createAppApi } from '../../electron/core/app-api/create-app-api.js';
import { parseCsvTable } from '../../electron/core/csv/csv.js';
import { insertSyntheticImages } from '../fixtures/library-fixture.js';
import { skinImagePixels } from '../fixtures/skin-images.js';
import { rawToFile } from './import-helpers.js';

/**
 * The library's filters and their counts, through the contract on a real library: SQL filters by
 * label, Fitzpatrick type (label or self-report), Monk tone, body site, case, session, annotator and
 * flag; facet counts under a filter; manual flags; and the "not an issue" override that re-flagging,
 * filters and exports respect. Expected numbers are computed from the generator's own rules, not from
 * SQL.
 */
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function openApi(): { api: AppApi; folder: string } {
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'dermws-filters-'));
  const api = createAppApi({ libraryFolder: path.join(folder, 'library') }, { mode: 'web', appVersion: 'test' });
  cleanups.push(() => fs.rmSync(folder, { recursive: true, force: true }));
  cleanups.push(() => api.close());
  return { api, folder };
}

const roman = ['I', 'II', 'III', 'IV', 'V', 'VI'];
const imageCount = 48;
/** The generator's rules, per image index. */
const selfReported = (index: number) => roman[index % 6]!;
const bodyParts = (index: number) => (index === 47 ? 'FOREARM' : index % 4 === 0 ? 'ARM;LEG' : 'TORSO_FRONT');
/** Body sites labelled by hand: image 0's is also in its body_parts list (counted once), image 1's is not. */
const labelledSite = (index: number) => (index === 0 ? 'ARM' : index === 1 ? 'PALM' : undefined);
const sitesOf = (index: number) => [...bodyParts(index).split(';'), ...(labelledSite(index) ? [labelledSite(index)!] : [])];
const condition = (index: number) => (index < 30 ? (index % 2 === 0 ? 'eczema' : 'psoriasis') : undefined);
const labelledFitzpatrick = (index: number) => (index >= 30 && index < 40 ? 'II' : undefined);
const monk = (index: number) => (index < 10 ? String((index % 3) + 1) : undefined);
const inSession = (index: number) => index >= 40;
const reviewFlag = (index: number) => index < 5;

async function generatedLibrary(api: AppApi): Promise<number[]> {
  const core = api.core;
  const ids = insertSyntheticImages(core.library, imageCount, {
    caseKeyOf: (index) => `case-${Math.floor(index / 3)}`,
    metadataOf: (index) => ({ fitzpatrick_self: `FST${(index % 6) + 1}`, body_parts: bodyParts(index) }),
  });
  ids.forEach((imageId, index) => {
    const value = condition(index);
    if (value) core.labels.setLabel({ imageId, kind: 'condition', value, annotator: 'alice' });
    const type = labelledFitzpatrick(index);
    if (type) core.labels.setLabel({ imageId, kind: 'fitzpatrick', value: type, annotator: 'bob' });
    const site = labelledSite(index);
    if (site) core.labels.setLabel({ imageId, kind: 'body_site', value: site, annotator: 'alice' });
    const tone = monk(index);
    if (tone) core.labels.setLabel({ imageId, kind: 'monk_tone', value: tone, annotator: 'bob' });
  });
  core.sessions.create({ name: 'triage', annotator: 'carol', imageIds: ids.filter((_, index) => inSession(index)) });
  await api.invoke('imagesFlag', { imageIds: ids.filter((_, index) => reviewFlag(index)), flag: 'needs_review', set: true });
  return ids;
}

type Facets = CallOutput<'libraryFacets'>;
const facet = (facets: Facets, field: string, kind?: string) => {
  const found = facets.facets.find((entry) => entry.field === field && (kind === undefined || entry.kind === kind));
  if (!found) throw new Error(`no ${field} facet`);
  return Object.fromEntries(found.values.map((value) => [value.value, value]));
};
const countsOf = (facets: Facets, field: string, kind?: string) =>
  Object.fromEntries(Object.entries(facet(facets, field, kind)).map(([value, entry]) => [value, entry.count]));

function tally(indexes: number[], valuesOf: (index: number) => string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const index of indexes) for (const value of new Set(valuesOf(index))) counts[value] = (counts[value] ?? 0) + 1;
  return counts;
}
const all = Array.from({ length: imageCount }, (_, index) => index);
const fitzpatrickOf = (index: number) => [selfReported(index), ...(labelledFitzpatrick(index) ? [labelledFitzpatrick(index)!] : [])];

describe('library filters with counts', () => {
  it('counts every facet in SQL and shows display names', async () => {
    const { api } = openApi();
    await generatedLibrary(api);
    const facets = (await api.invoke('libraryFacets', {})) as Facets;
    expect(facets.total).toBe(imageCount);
    expect(countsOf(facets, 'label', 'condition')).toEqual(tally(all, (index) => (condition(index) ? [condition(index)!] : [])));
    expect(facet(facets, 'label', 'condition').eczema!.display).toBe('Eczema');
    expect(countsOf(facets, 'fitzpatrick')).toEqual(tally(all, fitzpatrickOf));
    // Self-reported FST5 reads as "V", and types come in their natural order.
    expect(facet(facets, 'fitzpatrick').V!.display).toBe('V');
    expect(Object.keys(facet(facets, 'fitzpatrick'))).toEqual(roman);
    expect(countsOf(facets, 'monkTone')).toEqual(tally(all, (index) => (monk(index) ? [monk(index)!] : [])));
    expect(countsOf(facets, 'bodySite')).toEqual(tally(all, sitesOf));
    expect(facet(facets, 'bodySite').ARM!.display).toBe('Arm');
    expect(countsOf(facets, 'case')).toEqual(tally(all, (index) => [`case-${Math.floor(index / 3)}`]));
    expect(Object.values(facet(facets, 'session')).map((entry) => [entry.display, entry.count])).toEqual([['triage', all.filter(inSession).length]]);
    expect(countsOf(facets, 'annotator')).toEqual({
      alice: all.filter((index) => condition(index)).length,
      bob: all.filter((index) => labelledFitzpatrick(index) || monk(index)).length,
    });
    expect(countsOf(facets, 'flag')).toEqual({ needs_review: all.filter(reviewFlag).length });
  });

  it('filters in SQL, pages, and counts facets under the filter', async () => {
    const { api } = openApi();
    const ids = await generatedLibrary(api);
    const page = async (filter: Record<string, unknown>, offset = 0, limit = 1000) =>
      (await api.invoke('imagesPage', { filter, offset, limit })) as CallOutput<'imagesPage'>;
    const expectIds = (indexes: number[]) => indexes.map((index) => ids[index]!);

    expect((await page({ fitzpatrick: 'II' })).ids).toEqual(expectIds(all.filter((index) => fitzpatrickOf(index).includes('II'))));
    const eczemaV = all.filter((index) => condition(index) === 'eczema' && fitzpatrickOf(index).includes('V'));
    const combined = await page({ labels: [{ kind: 'condition', value: 'eczema' }], fitzpatrick: 'V' });
    expect(combined.ids).toEqual(expectIds(eczemaV));
    expect(combined.total).toBe(eczemaV.length);
    expect((await page({ monkTone: '2' })).ids).toEqual(expectIds(all.filter((index) => monk(index) === '2')));
    // ARM is a whole item of body_parts: FOREARM does not match it.
    expect((await page({ bodySite: 'ARM' })).ids).toEqual(expectIds(all.filter((index) => sitesOf(index).includes('ARM'))));
    expect((await page({ bodySite: 'PALM' })).ids).toEqual(expectIds([1]));
    expect((await page({ caseKey: 'case-4' })).ids).toEqual(expectIds([12, 13, 14]));
    expect((await page({ annotator: 'alice' })).total).toBe(30);
    const session = api.core.sessions.list()[0]!;
    expect((await page({ sessionId: session.id })).ids).toEqual(expectIds(all.filter(inSession)));
    expect((await page({ flags: ['needs_review'] })).ids).toEqual(expectIds(all.filter(reviewFlag)));

    const second = await page({ annotator: 'alice' }, 10, 10);
    expect(second.ids).toEqual(expectIds(all.filter((index) => condition(index)).slice(10, 20)));
    expect(second.total).toBe(30);

    const underEczema = (await api.invoke('libraryFacets', { filter: { labels: [{ kind: 'condition', value: 'eczema' }] } })) as Facets;
    const eczema = all.filter((index) => condition(index) === 'eczema');
    expect(underEczema.total).toBe(eczema.length);
    expect(countsOf(underEczema, 'fitzpatrick')).toEqual(tally(eczema, fitzpatrickOf));
    // The condition facet, which the filter uses, is counted without its own choice.
    expect(countsOf(underEczema, 'label', 'condition')).toEqual(tally(all, (index) => (condition(index) ? [condition(index)!] : [])));
    expect(countsOf(underEczema, 'flag')).toEqual({ needs_review: eczema.filter(reviewFlag).length });
    expect(countsOf(underEczema, 'bodySite')).toEqual(tally(eczema, sitesOf));
    const underTwo = (await api.invoke('libraryFacets', { filter: { labels: [{ kind: 'condition', value: 'eczema' }], fitzpatrick: 'V' } })) as Facets;
    expect(countsOf(underTwo, 'fitzpatrick')).toEqual(tally(eczema, fitzpatrickOf));
    expect(countsOf(underTwo, 'label', 'condition')).toEqual(
      tally(
        all.filter((index) => fitzpatrickOf(index).includes('V')),
        (index) => (condition(index) ? [condition(index)!] : []),
      ),
    );
    expect(underTwo.total).toBe(eczemaV.length);
    // A deleted image leaves every count.
    api.core.images.markDeleted([ids[0]!]);
    const afterDelete = (await api.invoke('libraryFacets', {})) as Facets;
    expect(afterDelete.total).toBe(imageCount - 1);
    expect(countsOf(afterDelete, 'fitzpatrick')).toEqual(tally(all.slice(1), fitzpatrickOf));
    expect(countsOf(afterDelete, 'flag')).toEqual({ needs_review: all.slice(1).filter(reviewFlag).length });
  });

  it('lists the 100 largest cases and counts the rest', async () => {
    const { api } = openApi();
    // 30 cases of two images, then 90 of one: 120 cases, the two-image ones first.
    insertSyntheticImages(api.core.library, 150, { caseKeyOf: (index) => (index < 60 ? `pair-${Math.floor(index / 2)}` : `single-${index}`) });
    const facets = (await api.invoke('libraryFacets', {})) as Facets;
    const cases = facets.facets.find((entry) => entry.field === 'case')!;
    expect(cases.values).toHaveLength(100);
    expect(cases.more).toBe(20);
    expect(cases.values.slice(0, 30).every((entry) => entry.value.startsWith('pair-') && entry.count === 2)).toBe(true);
  });

  it('refuses a filter value that cannot be one, naming the field', async () => {
    const { api } = openApi();
    await expect(api.invoke('imagesPage', { filter: { fitzpatrick: 'FST5' }, offset: 0, limit: 10 })).rejects.toThrow(/fitzpatrick/);
    await expect(api.invoke('imagesPage', { filter: { monkTone: '11' }, offset: 0, limit: 10 })).rejects.toThrow(/monkTone/);
    await expect(api.invoke('imagesFlag', { imageIds: [1], flag: 'Needs Review!', set: true })).rejects.toThrow(/flag/);
    // Filter clauses are explained by field, in words that fit the app and the CLI alike (no "--where").
    const refusal = api.invoke('sessionCreate', { name: 'x', annotator: 'a', where: ['label.colour=red'] });
    await expect(refusal).rejects.toThrow(/^Filter clause 1 "label\.colour=red": write label\.KIND with KIND one of condition/);
  });
});

describe('manual flags and the "not an issue" override', () => {
  async function importedLibrary() {
    const { api, folder } = openApi();
    const source = path.join(folder, 'photos');
    const lesion = skinImagePixels({ seed: 3, width: 480, height: 360, toneIndex: 3, lesions: 1 });
    await rawToFile(path.join(source, 'lesion.png'), lesion.data, 480, 360, (image) => image.png());
    const dark = Buffer.from(lesion.data).map((value) => Math.round(value * 0.03));
    await rawToFile(path.join(source, 'dark.png'), Buffer.from(dark), 480, 360, (image) => image.png());
    await rawToFile(path.join(source, 'darker.png'), Buffer.alloc(480 * 360 * 3, 1), 480, 360, (image) => image.png());
    await api.core.import.importPaths([source]);
    const idOf = (name: string) => api.core.images.list({ limit: 100 }).find((image) => image.originalPath.endsWith(name))!.id;
    return { api, folder, lesion: idOf('lesion.png'), dark: idOf('dark.png'), darker: idOf('darker.png') };
  }

  it('lists flagged images worst first, keeps a "not an issue" verdict through re-flagging, filters and exports, and withdraws it', async () => {
    const { api, folder, lesion, dark, darker } = await importedLibrary();
    const flagged = (await api.invoke('qualityFlagged', { flag: 'dark' })) as CallOutput<'qualityFlagged'>;
    expect(flagged.images.map((entry) => entry.imageId)).toEqual([darker, dark]);
    expect(flagged.images[0]!.value!).toBeLessThan(flagged.images[1]!.value!);
    expect(flagged.metric).toMatch(/Brightest/);

    const verdict = (await api.invoke('qualityNotAnIssue', { imageId: dark, flag: 'dark', notAnIssue: true })) as CallOutput<'qualityNotAnIssue'>;
    expect(verdict.flags).not.toContain('dark');
    // A threshold change re-flags the whole library: the verdict holds.
    await api.invoke('qualitySetThresholds', { change: { darkP99Below: 0.2 } });
    const page = (await api.invoke('imagesPage', { filter: { flags: ['dark'] }, offset: 0, limit: 10 })) as CallOutput<'imagesPage'>;
    expect(page.ids).toEqual([darker]);
    const after = (await api.invoke('qualityFlagged', { flag: 'dark' })) as CallOutput<'qualityFlagged'>;
    expect(after.notAnIssue.map((entry) => entry.imageId)).toEqual([dark]);
    expect(api.core.quality.flagCounts().dark).toBe(1);

    const exportFolder = path.join(folder, 'export');
    await api.core.exports.export({ folder: exportFolder });
    const rows = parseCsvTable(fs.readFileSync(path.join(exportFolder, 'images.csv'), 'utf8'), 'images.csv').rows;
    const flagsOf = (imageId: number) => {
      const row = rows.find((entry) => entry.values.image_id === String(imageId));
      if (!row) throw new Error(`image ${imageId} is not in images.csv`);
      return row.values['flags.auto'] ?? '';
    };
    expect(flagsOf(darker)).toContain('dark');
    expect(flagsOf(dark)).not.toContain('dark');
    expect(flagsOf(lesion)).not.toContain('dark');

    const withdrawn = (await api.invoke('qualityNotAnIssue', { imageId: dark, flag: 'dark', notAnIssue: false })) as CallOutput<'qualityNotAnIssue'>;
    expect(withdrawn.flags).toContain('dark');
  });

  it('flags and unflags a selection: manual flags come off, automatic ones become "not an issue"', async () => {
    const { api, lesion, dark, darker } = await importedLibrary();
    const set = (await api.invoke('imagesFlag', { imageIds: [lesion, dark], flag: 'needs_review', set: true })) as { changed: number };
    expect(set.changed).toBe(2);
    expect(api.core.images.get(lesion)!.flags).toContain('needs_review');
    const cleared = (await api.invoke('imagesFlag', { imageIds: [lesion, dark, darker], flag: 'needs_review', set: false })) as { changed: number };
    expect(cleared.changed).toBe(2);
    expect(api.core.images.get(lesion)!.flags).not.toContain('needs_review');

    await api.invoke('imagesFlag', { imageIds: [darker], flag: 'dark', set: false });
    expect(api.core.images.get(darker)!.flags).not.toContain('dark');
    api.core.quality.reflag();
    expect(api.core.images.get(darker)!.flags).not.toContain('dark');
    expect(api.core.images.get(dark)!.flags).toContain('dark');
  });
});
