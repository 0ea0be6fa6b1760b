import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { LabelsRepository } from '../../electron/core/labels/labels.repository.js';
import { LabelsService } from '../../electron/core/labels/labels.service.js';
import { TaxonomyRepository } from '../../electron/core/labels/taxonomy.repository.js';
import { TaxonomyService } from '../../electron/core/labels/taxonomy.service.js';
import { openLibrary, type Library } from '../../electron/core/library/library.js';
import { SettingsRepository } from '../../electron/core/library/settings.repository.js';
import { insertSyntheticImages } from '../fixtures/library-fixture.js';
import { caughtDermError } from '../helpers/caught-derm-error.js';
import { librariesPerTest } from '../helpers/libraries-per-test.js';

function services(library: Library) {
  const taxonomy = new TaxonomyService(new TaxonomyRepository(library.db), new SettingsRepository(library.db));
  const labels = new LabelsService(new LabelsRepository(library.db), taxonomy);
  return { taxonomy, labels };
}

const { library } = librariesPerTest('dermws-labels-');

const values = (labels: { value: string; confidence: number | null }[]) =>
  labels.map((label) => (label.confidence === null ? label.value : `${label.value}:${label.confidence}`)).sort();

describe('taxonomy', () => {
  it('installs the starter taxonomy once, hierarchical, with SCIN body parts and hotkeys', () => {
    const lib = library();
    const { taxonomy } = services(lib);
    const entries = taxonomy.list();
    const conditions = entries.filter((entry) => entry.kind === 'condition');
    for (const code of [
      'eczema',
      'allergic_contact_dermatitis',
      'insect_bite',
      'urticaria',
      'psoriasis',
      'folliculitis',
      'irritant_contact_dermatitis',
      'tinea',
      'herpes_zoster',
      'drug_rash',
      'melanoma',
      'vitiligo',
    ]) {
      expect(conditions.some((entry) => entry.code === code)).toBe(true);
    }
    const tinea = conditions.find((entry) => entry.code === 'tinea')!;
    expect(tinea.parentCode).toBe('infectious');
    expect(tinea.depth).toBe(1);
    // Depth-first order: the group comes right before its first child.
    const infectiousIndex = conditions.findIndex((entry) => entry.code === 'infectious');
    expect(conditions[infectiousIndex + 1]!.parentCode).toBe('infectious');
    expect(entries.filter((entry) => entry.kind === 'body_site').map((entry) => entry.code)).toContain('FOOT_SOLE');
    expect(entries.filter((entry) => entry.kind === 'fitzpatrick').map((entry) => entry.code)).toEqual(['I', 'II', 'III', 'IV', 'V', 'VI']);
    expect(entries.filter((entry) => entry.kind === 'monk_tone')).toHaveLength(10);
    expect(entries.filter((entry) => entry.kind === 'quality_flag').map((entry) => entry.code)).toEqual([
      'blurry',
      'poor_lighting',
      'obstruction_or_hair',
      'not_skin',
      'too_far',
      'identifiable_features',
    ]);
    const count = entries.length;
    taxonomy.remove('condition', 'callus');
    expect(services(lib).taxonomy.list()).toHaveLength(count - 1);
  });

  it('imports a hierarchical CSV with hotkeys, and refuses a file with errors by line, changing nothing', () => {
    const lib = library();
    const { taxonomy } = services(lib);
    const folder = path.dirname(lib.paths.root);
    const good = path.join(folder, 'mine.csv');
    fs.writeFileSync(
      good,
      [
        'kind,code,display_name,parent,hotkey,sort_order',
        'condition,bullous,Bullous disorders,,,100',
        'condition,pemphigoid,Bullous pemphigoid,bullous,q,101',
        'condition,"pemphigus","Pemphigus, vulgaris",bullous,,102',
      ].join('\n'),
    );
    expect(taxonomy.importFile(good)).toMatchObject({ added: 3, updated: 0, entries: 3 });
    const pemphigus = taxonomy.get('condition', 'pemphigus')!;
    expect(pemphigus).toMatchObject({ displayName: 'Pemphigus, vulgaris', parentCode: 'bullous', builtIn: false });
    expect(taxonomy.get('condition', 'pemphigoid')!.hotkey).toBe('q');

    const before = taxonomy.list();
    const bad = path.join(folder, 'bad.csv');
    fs.writeFileSync(
      bad,
      [
        'kind,code,display_name,parent,hotkey',
        'condition,ok_one,Fine entry,,',
        'colour,red,Red,,', // line 3: unknown kind
        'condition,has space,Bad code,,', // line 4
        'condition,orphan,Orphan,no_such_parent,', // line 5
        'condition,ok_one,Again,,', // line 6: duplicate
        'condition,hot,Hot,,e', // line 7: 'e' is eczema's hotkey
        'condition,long_key,Long key,,ab', // line 8
      ].join('\n'),
    );
    const error = caughtDermError(() => taxonomy.importFile(bad));
    expect(error.code).toBe('invalid-input');
    const problems = error.details!.problems as Array<{ line: number; field: string }>;
    expect(problems.map((problem) => [problem.line, problem.field])).toEqual([
      [3, 'kind'],
      [4, 'code'],
      [5, 'parent'],
      [6, 'code'],
      [7, 'hotkey'],
      [8, 'hotkey'],
    ]);
    expect(error.message).toContain('bad.csv line 3');
    expect(error.message).toContain('nothing was imported');
    expect(taxonomy.list()).toEqual(before);
  });

  it('imports nested JSON, reports JSON paths, and detects parent cycles', () => {
    const lib = library();
    const { taxonomy } = services(lib);
    const folder = path.dirname(lib.paths.root);
    const file = path.join(folder, 'tree.json');
    fs.writeFileSync(
      file,
      JSON.stringify({
        entries: [{ kind: 'condition', code: 'genodermatoses', name: 'Genodermatoses', children: [{ code: 'ichthyosis', name: 'Ichthyosis', hotkey: 'j' }] }],
      }),
    );
    expect(taxonomy.importFile(file).added).toBe(2);
    expect(taxonomy.get('condition', 'ichthyosis')).toMatchObject({ parentCode: 'genodermatoses', hotkey: 'j' });

    fs.writeFileSync(
      file,
      JSON.stringify([
        { kind: 'condition', code: 'genodermatoses', name: 'G', parent: 'ichthyosis' },
        { kind: 'condition', name: 'No code' },
      ]),
    );
    const error = caughtDermError(() => taxonomy.importFile(file));
    const problems = error.details!.problems as Array<{ path: string; field: string }>;
    expect(problems).toEqual(
      expect.arrayContaining([expect.objectContaining({ path: '[1]', field: 'code' }), expect.objectContaining({ path: '[0]', field: 'parent' })]),
    );
    expect(taxonomy.get('condition', 'genodermatoses')!.parentCode).toBeNull();
  });

  it('refuses to remove an entry in use, with the count of labels using it', () => {
    const lib = library();
    const { taxonomy, labels } = services(lib);
    const [a, b, c] = insertSyntheticImages(lib, 3);
    labels.setLabel({ imageId: a!, kind: 'condition', value: 'psoriasis', confidence: 4, annotator: 'dr-a' });
    labels.setLabel({ imageId: b!, kind: 'condition', value: 'psoriasis', annotator: 'dr-a' });
    labels.setLabel({ imageId: c!, kind: 'condition', value: 'Psoriasis', annotator: 'dr-b' });
    const error = caughtDermError(() => taxonomy.remove('condition', 'psoriasis'));
    expect(error.code).toBe('in-use');
    expect(error.details!.count).toBe(3);
    expect(error.message).toContain('used by 3 labels');
    expect(taxonomy.get('condition', 'psoriasis')).toBeDefined();
    expect(caughtDermError(() => taxonomy.remove('condition', 'inflammatory')).message).toContain('parent of');
    labels.removeLabel({ imageId: c!, kind: 'condition', value: 'psoriasis', annotator: 'dr-b' });
    expect(caughtDermError(() => taxonomy.remove('condition', 'psoriasis')).details!.count).toBe(2);
  });
});

describe('labels', () => {
  it('keeps several condition values with confidence, replaces single-valued kinds, and validates values', () => {
    const lib = library();
    const { labels } = services(lib);
    const [image] = insertSyntheticImages(lib, 1);
    labels.setLabel({ imageId: image!, kind: 'condition', value: 'eczema', confidence: 3, annotator: 'dr-a' });
    labels.setLabel({ imageId: image!, kind: 'condition', value: 'Allergic contact dermatitis', confidence: 2, annotator: 'dr-a' });
    labels.setLabel({ imageId: image!, kind: 'condition', value: 'eczema', confidence: 5, annotator: 'dr-a' });
    labels.setLabel({ imageId: image!, kind: 'fitzpatrick', value: 'FST3', annotator: 'dr-a' });
    labels.setLabel({ imageId: image!, kind: 'fitzpatrick', value: 'IV', annotator: 'dr-a' });
    labels.setLabel({ imageId: image!, kind: 'note', value: '  raised border  ', annotator: 'dr-a' });
    const current = labels.currentLabels(image!, { annotator: 'dr-a' });
    expect(values(current.filter((label) => label.kind === 'condition'))).toEqual(['allergic_contact_dermatitis:2', 'eczema:5']);
    expect(values(current.filter((label) => label.kind === 'fitzpatrick'))).toEqual(['IV']);
    expect(values(current.filter((label) => label.kind === 'note'))).toEqual(['raised border']);
    expect(current.every((label) => label.annotator === 'dr-a' && label.origin === 'manual')).toBe(true);

    expect(caughtDermError(() => labels.setLabel({ imageId: image!, kind: 'condition', value: 'dragon pox', annotator: 'dr-a' })).message).toContain(
      '"dragon pox" is not in the condition taxonomy',
    );
    expect(caughtDermError(() => labels.setLabel({ imageId: image!, kind: 'fitzpatrick', value: 'II', confidence: 3, annotator: 'dr-a' })).message).toContain(
      'only be given to condition',
    );
    expect(caughtDermError(() => labels.setLabel({ imageId: image!, kind: 'condition', value: 'eczema', confidence: 6, annotator: 'dr-a' })).message).toContain(
      '1 to 5',
    );
    expect(caughtDermError(() => labels.setLabel({ imageId: image!, kind: 'colour', value: 'red', annotator: 'dr-a' })).message).toContain('not a label kind');
    expect(caughtDermError(() => labels.setLabel({ imageId: 9999, kind: 'condition', value: 'eczema', annotator: 'dr-a' })).code).toBe('not-found');
    expect(caughtDermError(() => labels.setLabel({ imageId: image!, kind: 'condition', value: 'eczema', annotator: ' ' })).message).toContain('annotator');
    // Failed calls changed nothing.
    expect(labels.currentLabels(image!)).toEqual(current);
  });

  it('two annotators label the same image without overwriting each other', () => {
    const lib = library();
    const { labels } = services(lib);
    const [image] = insertSyntheticImages(lib, 1);
    labels.setLabel({ imageId: image!, kind: 'fitzpatrick', value: 'II', annotator: 'dr-a' });
    labels.setLabel({ imageId: image!, kind: 'fitzpatrick', value: 'V', annotator: 'dr-b' });
    labels.setLabel({ imageId: image!, kind: 'fitzpatrick', value: 'III', annotator: 'dr-a' });
    expect(values(labels.currentLabels(image!, { annotator: 'dr-a' }))).toEqual(['III']);
    expect(values(labels.currentLabels(image!, { annotator: 'dr-b' }))).toEqual(['V']);
    labels.undo('dr-b');
    expect(labels.currentLabels(image!, { annotator: 'dr-b' })).toEqual([]);
    expect(values(labels.currentLabels(image!, { annotator: 'dr-a' }))).toEqual(['III']);
  });

  it('records every change in the append-only audit log and undoes/redoes across closing and reopening the library', () => {
    const lib = library();
    const { labels } = services(lib);
    const [one, two] = insertSyntheticImages(lib, 2);
    labels.setLabel({ imageId: one!, kind: 'condition', value: 'tinea', confidence: 4, annotator: 'dr-a', sessionId: 7 });
    labels.setLabel({ imageId: one!, kind: 'condition', value: 'eczema', confidence: 2, annotator: 'dr-a' });
    labels.replaceLabels({
      imageId: two!,
      annotator: 'dr-a',
      labels: [
        { kind: 'severity', values: [{ value: 'mild' }] },
        { kind: 'gradable', values: [{ value: 'yes' }] },
      ],
    });
    // A no-op is not an edit.
    expect(labels.setLabel({ imageId: one!, kind: 'condition', value: 'eczema', confidence: 2, annotator: 'dr-a' })).toEqual([]);

    const audit = labels.history({ imageId: one! });
    expect(audit.map((entry) => [entry.action, entry.annotator, values(entry.before), values(entry.after)])).toEqual([
      ['set', 'dr-a', [], ['tinea:4']],
      ['set', 'dr-a', ['tinea:4'], ['eczema:2', 'tinea:4']],
    ]);
    expect(audit[0]!.sessionId).toBe(7);
    expect(() => lib.db.prepare('DELETE FROM label_audit').run()).toThrow(/append-only/);
    expect(() => lib.db.prepare("UPDATE label_audit SET action = 'set'").run()).toThrow(/append-only/);

    const root = lib.paths.root;
    lib.close();
    const reopened = openLibrary(root);
    try {
      const again = services(reopened).labels;
      // The last edit set two kinds at once; one undo reverts both.
      const first = again.undo('dr-a');
      expect(first.edit!.description).toContain('severity, gradable');
      expect(first.changes).toHaveLength(2);
      expect(again.currentLabels(two!)).toEqual([]);
      again.undo('dr-a');
      expect(values(again.currentLabels(one!))).toEqual(['tinea:4']);
      reopened.close();

      const third = openLibrary(root);
      const after = services(third).labels;
      const redone = after.redo('dr-a');
      expect(redone.edit!.description).toContain('eczema');
      expect(values(after.currentLabels(one!))).toEqual(['eczema:2', 'tinea:4']);
      // Undo, then a new edit: redo now re-applies the new branch, never the abandoned one.
      after.undo('dr-a');
      after.setLabel({ imageId: one!, kind: 'condition', value: 'psoriasis', confidence: 1, annotator: 'dr-a' });
      expect(after.redo('dr-a').edit).toBeNull();
      after.undo('dr-a');
      expect(values(after.currentLabels(one!))).toEqual(['tinea:4']);
      expect(after.redo('dr-a').edit!.description).toContain('psoriasis');
      after.undo('dr-a');
      after.undo('dr-a');
      expect(after.currentLabels(one!)).toEqual([]);
      expect(after.undo('dr-a')).toMatchObject({ edit: null, canUndo: false, canRedo: true });
      const actions = after.history({ annotator: 'dr-a' }).map((entry) => entry.action);
      // Undo rows are per slot: the first undo reverted two kinds.
      expect(actions.filter((action) => action === 'undo')).toHaveLength(7);
      expect(actions.filter((action) => action === 'redo')).toHaveLength(2);
      third.close();
    } finally {
      if (reopened.db.open) reopened.close();
    }
  });

  it('refuses an undo whose labels were changed since, and changes nothing', () => {
    const lib = library();
    const { labels } = services(lib);
    const [image] = insertSyntheticImages(lib, 1);
    labels.setLabel({ imageId: image!, kind: 'condition', value: 'tinea', annotator: 'dr-a' });
    labels.adjudicate({ imageId: image!, kind: 'condition', values: [{ value: 'eczema' }], annotator: 'dr-c' });
    labels.importLabels([{ imageId: image!, kind: 'condition', value: 'urticaria' }], { annotator: 'dr-a', origin: 'manual' });
    const error = caughtDermError(() => labels.undo('dr-a'));
    expect(error.code).toBe('conflict');
    expect(error.message).toMatch(
      new RegExp(`^Cannot undo ".*": the condition labels of image ${image} were changed since \\(now .*urticaria.*\\)\\. Nothing was undone\\.$`),
    );
    expect(values(labels.currentLabels(image!, { annotator: 'dr-a', origins: ['manual'] }))).toEqual(['urticaria']);
  });

  it('refuses a redo whose labels were changed since the undo, and changes nothing', () => {
    const lib = library();
    const { labels } = services(lib);
    const [image] = insertSyntheticImages(lib, 1);
    labels.setLabel({ imageId: image!, kind: 'condition', value: 'tinea', annotator: 'dr-a' });
    labels.undo('dr-a');
    labels.importLabels([{ imageId: image!, kind: 'condition', value: 'urticaria' }], { annotator: 'dr-a', origin: 'manual' });
    const error = caughtDermError(() => labels.redo('dr-a'));
    expect(error.code).toBe('conflict');
    expect(error.message).toMatch(
      new RegExp(`^Cannot redo ".*": the condition labels of image ${image} were changed since \\(now .*urticaria.*\\)\\. Nothing was redone\\.$`),
    );
    expect(values(labels.currentLabels(image!, { annotator: 'dr-a', origins: ['manual'] }))).toEqual(['urticaria']);
  });

  it('imports dataset labels in bulk, idempotently, adding missing conditions and reporting bad rows', () => {
    const lib = library();
    const { labels, taxonomy } = services(lib);
    const [a, b] = insertSyntheticImages(lib, 2);
    const rows = [
      { imageId: a!, kind: 'condition', value: 'Eczema', confidence: 4 },
      { imageId: a!, kind: 'condition', value: 'Eczema', confidence: 2 },
      { imageId: a!, kind: 'condition', value: 'Inflicted skin lesions', confidence: 3 },
      { imageId: a!, kind: 'fitzpatrick', value: 'FST2' },
      { imageId: b!, kind: 'monk_tone', value: '7' },
      { imageId: b!, kind: 'gradable', value: 'yes' },
      { imageId: 4242, kind: 'condition', value: 'Eczema' },
      { imageId: b!, kind: 'body_site', value: 'ELBOW' },
      { imageId: b!, kind: 'fitzpatrick', value: 'I' },
      { imageId: b!, kind: 'fitzpatrick', value: 'II' },
    ];
    const report = labels.importLabels(rows, { annotator: 'scin-dermatologists' });
    expect(report.problems.map((problem) => problem.index)).toEqual([6, 7, 8, 9]);
    expect(report.problems[0]!.message).toContain('image 4242');
    expect(report.problems[1]!.message).toContain('"ELBOW" is not in the body_site taxonomy');
    expect(report.problems[2]!.message).toContain('one value');
    expect(report).toMatchObject({ changedSlots: 4, unchangedSlots: 0 });
    const added = taxonomy.resolve('condition', 'inflicted skin lesions')!;
    expect(added).toBe('inflicted_skin_lesions');
    const current = labels.currentLabels(a!);
    expect(current.every((label) => label.origin === 'imported' && label.annotator === 'scin-dermatologists')).toBe(true);
    expect(values(current)).toEqual(['II', 'eczema:4', 'inflicted_skin_lesions:3']);

    const auditBefore = labels.history().length;
    const again = labels.importLabels(rows, { annotator: 'scin-dermatologists' });
    expect(again).toMatchObject({ changedSlots: 0, unchangedSlots: 4 });
    expect(labels.history()).toHaveLength(auditBefore);
    expect(
      labels
        .labelsForImages([a!, b!])
        .get(b!)!
        .map((label) => label.kind)
        .sort(),
    ).toEqual(['gradable', 'monk_tone']);
  });

  it('stores adjudicated consensus labels apart from the annotators own labels', () => {
    const lib = library();
    const { labels } = services(lib);
    const [image] = insertSyntheticImages(lib, 1);
    labels.setLabel({ imageId: image!, kind: 'severity', value: 'mild', annotator: 'dr-a' });
    labels.setLabel({ imageId: image!, kind: 'severity', value: 'severe', annotator: 'dr-b' });
    labels.adjudicate({ imageId: image!, kind: 'severity', values: [{ value: 'moderate' }], annotator: 'dr-a' });
    labels.adjudicate({ imageId: image!, kind: 'severity', values: [{ value: 'severe' }], annotator: 'dr-c' });
    const consensus = labels.consensus(image!, 'severity');
    expect(consensus.map((label) => [label.value, label.origin, label.annotator])).toEqual([['severe', 'consensus', 'dr-c']]);
    expect(values(labels.currentLabels(image!, { annotator: 'dr-a', origins: ['manual'] }))).toEqual(['mild']);
    labels.undo('dr-c');
    expect(labels.consensus(image!, 'severity').map((label) => label.value)).toEqual(['moderate']);
  });
});
