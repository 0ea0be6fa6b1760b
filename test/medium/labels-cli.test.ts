import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runDermws } from '../fixtures/cli-runner.js';
import { insertSyntheticImages } from '../fixtures/library-fixture.js';
import { librariesPerTest } from '../helpers/libraries-per-test.js';

const { library: newLibrary } = librariesPerTest('dermws-labels-cli-');

const cli = (args: string[]) => runDermws(...args);

describe('dermws labelling commands', () => {
  it('labels, undoes and redoes, runs a session, measures agreement and adjudicates, all with --json', async () => {
    const library = newLibrary();
    const ids = insertSyntheticImages(library, 4);
    const root = library.paths.root;
    library.close();
    const run = (...args: string[]) => cli(['--library', root, '--json', ...args]);

    const taxonomy = await run('taxonomy', 'list', '--kind', 'body_site');
    expect(taxonomy.code).toBe(0);
    expect(taxonomy.json.entries.map((entry: { code: string }) => entry.code)).toContain('HEAD_OR_NECK');

    const file = path.join(path.dirname(root), 'extra.csv');
    fs.writeFileSync(file, 'code,display_name,hotkey\nchilblains,Chilblains,x\n');
    expect((await run('taxonomy', 'import', file, '--kind', 'condition')).json).toMatchObject({ added: 1, entries: 1 });

    const set = await run('label', String(ids[0]), '--kind', 'condition', '--value', 'chilblains', '--confidence', '4', '--annotator', 'dr-a');
    expect(set.code).toBe(0);
    expect(set.json.changes[0]).toMatchObject({ kind: 'condition', before: [], after: [{ value: 'chilblains', confidence: 4 }] });
    const shown = await run('label', String(ids[0]));
    expect(shown.json.labels.map((label: { value: string; annotator: string }) => `${label.annotator}:${label.value}`)).toEqual(['dr-a:chilblains']);

    const undo = await run('label', 'undo', '--annotator', 'dr-a');
    expect(undo.json).toMatchObject({ canUndo: false, canRedo: true, changes: [{ imageId: ids[0], after: [] }] });
    expect((await run('label', String(ids[0]))).json.labels).toEqual([]);
    const redo = await run('label', 'redo', '--annotator', 'dr-a');
    expect(redo.json.description).toContain('chilblains');
    expect((await run('label', 'history', '--image', String(ids[0]))).json.entries.map((entry: { action: string }) => entry.action)).toEqual([
      'set',
      'undo',
      'redo',
    ]);

    const removal = await run('taxonomy', 'remove', 'condition', 'chilblains');
    expect(removal.code).toBe(2);
    expect(removal.json.error).toMatchObject({ code: 'in-use', details: { count: 1 } });

    const created = await run('session', 'create', '--name', 'pair', '--annotator', 'dr-b', '--images', ids.join(','), '--order', 'random', '--seed', '3');
    expect(created.json).toMatchObject({ total: 4, order: 'random', seed: 3, status: 'active' });
    const first = await run('session', 'next', String(created.json.id));
    const current = first.json.current.imageId as number;
    const recorded = await run(
      'session',
      'record',
      String(created.json.id),
      String(current),
      '--label',
      'condition=eczema:3',
      '--label',
      'fitzpatrick=IV',
      '--seconds',
      '9',
    );
    expect(recorded.json.session).toMatchObject({ labelled: 1, secondsSpent: 9 });
    expect(recorded.json.current.imageId).toBe(first.json.following.imageId);
    const stats = await run('session', 'stats', String(created.json.id));
    expect(stats.json.labelCounts).toEqual({ condition: { eczema: 1 }, fitzpatrick: { IV: 1 } });
    expect((await run('session', 'list')).json.sessions).toHaveLength(1);
    // A record with nothing chosen is refused and the image stays the one to do.
    const empty = await run('session', 'record', String(created.json.id), String(recorded.json.current.imageId), '--seconds', '1');
    expect(empty.code).toBe(2);
    expect(empty.json.error).toMatchObject({ code: 'invalid-input', details: { field: 'labels', imageId: recorded.json.current.imageId } });
    expect((await run('session', 'next', String(created.json.id))).json.session).toMatchObject({ labelled: 1, skipped: 0 });
    // An agreement session is blind by default; the mode can be changed and is printed by list.
    const blind = await run('session', 'create', '--name', 'second read', '--annotator', 'dr-c', '--images', ids.join(','), '--agreement');
    expect(blind.json).toMatchObject({ agreement: true, suggestions: 'blind' });
    expect((await run('session', 'suggestions', String(blind.json.id), 'shown')).json.suggestions).toBe('shown');
    const badMode = await run('session', 'suggestions', String(blind.json.id), 'peek');
    expect(badMode.code).toBe(2);
    expect(badMode.json.error.message).toContain('peek');

    await run('label', String(current), '--kind', 'fitzpatrick', '--value', 'II', '--annotator', 'dr-a');
    const agreement = await run('agreement', '--kind', 'fitzpatrick', '--disagreements');
    expect(agreement.json.kinds[0]).toMatchObject({ kind: 'fitzpatrick', annotators: ['dr-a', 'dr-b'], pairs: [{ items: 1, percentAgreement: 0 }] });
    expect(agreement.json.disagreements).toEqual([
      {
        imageId: current,
        kind: 'fitzpatrick',
        ratings: [
          { annotator: 'dr-a', values: ['II'] },
          { annotator: 'dr-b', values: ['IV'] },
        ],
        consensus: null,
      },
    ]);
    const adjudicated = await run('adjudicate', String(current), '--kind', 'fitzpatrick', '--value', 'III', '--annotator', 'dr-lead');
    // adjudicate --json prints the adjudicate call's output: how many label slots changed and the consensus now stored.
    expect(adjudicated.json).toEqual({ changed: 1, values: ['III'] });
    expect((await run('agreement', '--kind', 'fitzpatrick', '--disagreements')).json.disagreements).toEqual([]);

    const bad = await run('session', 'create', '--name', 'x', '--annotator', 'a', '--where', 'colour=red');
    expect(bad.code).toBe(2);
    expect(bad.json.error.message).toContain('colour=red');
    const badLabel = await run('label', String(ids[1]), '--kind', 'condition', '--value', 'dragon pox', '--annotator', 'dr-a');
    expect(badLabel.code).toBe(2);
    expect(badLabel.json.error.message).toContain('dragon pox');
  });
});
