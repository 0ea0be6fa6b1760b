import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { EmbeddingsRepository } from '../../electron/core/embeddings/embeddings.repository.js';
import { createLabellingServices } from '../../electron/core/core.js';
import { openLibrary, type Library } from '../../electron/core/library/library.js';
import { loadMigrations } from '../../electron/core/library/migrations.js';
import { seededRandom } from '../../electron/common/seeded-random.js';
import { insertSyntheticImages } from '../fixtures/library-fixture.js';
import { caughtDermError } from '../helpers/caught-derm-error.js';
import { librariesPerTest } from '../helpers/libraries-per-test.js';

const { library, afterThisTest } = librariesPerTest('dermws-sessions-');

const services = (lib: Library) => createLabellingServices(lib);

describe('labelling sessions', () => {
  it('resumes an interrupted session at the right image after the library is closed and reopened', () => {
    const lib = library();
    const ids = insertSyntheticImages(lib, 6);
    const { sessions } = services(lib);
    const session = sessions.create({ name: 'morning', annotator: 'dr-a', imageIds: ids, order: 'unlabelled-first' });
    expect(session).toMatchObject({ total: 6, position: 0, status: 'active', remaining: 6 });

    let next = sessions.next(session.id);
    expect(next.current!.imageId).toBe(ids[0]);
    expect(next.following!.imageId).toBe(ids[1]);
    sessions.record(session.id, ids[0]!, [{ kind: 'condition', values: [{ value: 'eczema', confidence: 4 }] }], 12.5);
    next = sessions.skip(session.id, undefined, 3);
    expect(next.current!.imageId).toBe(ids[2]);
    next = sessions.record(
      session.id,
      ids[2]!,
      [
        { kind: 'fitzpatrick', values: [{ value: 'III' }] },
        { kind: 'gradable', values: [{ value: 'yes' }] },
      ],
      20,
    );
    expect(next.current!.imageId).toBe(ids[3]);
    sessions.pause(session.id);
    expect(caughtDermError(() => sessions.record(session.id, ids[3]!, [], 1)).message).toContain('paused');

    const root = lib.paths.root;
    lib.close();
    const reopened = openLibrary(root);
    try {
      const again = services(reopened).sessions;
      const resumed = again.resume(session.id);
      expect(resumed.session).toMatchObject({ status: 'active', position: 3, labelled: 2, skipped: 1, remaining: 3, secondsSpent: 35.5 });
      expect(resumed.current!.imageId).toBe(ids[3]);
      expect(resumed.following!.imageId).toBe(ids[4]);

      // Previous goes back to review; the image shows the annotator's labels.
      const back = again.previous(session.id);
      expect(back.current!.imageId).toBe(ids[2]);
      expect(back.current!.labels.map((label) => `${label.kind}=${label.value}`).sort()).toEqual(['fitzpatrick=III', 'gradable=yes']);
      again.record(session.id, ids[2]!, [{ kind: 'fitzpatrick', values: [{ value: 'IV' }] }], 5);
      expect(again.next(session.id).current!.imageId).toBe(ids[3]);

      again.record(session.id, ids[3]!, [{ kind: 'severity', values: [{ value: 'mild' }] }], 4);
      again.record(session.id, ids[4]!, [{ kind: 'severity', values: [{ value: 'severe' }] }], 6);
      // Skipped images count as done, so the last record completes the session.
      const last = again.record(session.id, ids[5]!, [{ kind: 'severity', values: [{ value: 'moderate' }] }], 2);
      expect(last.current).toBeNull();
      expect(last.session).toMatchObject({ status: 'completed', labelled: 5, skipped: 1, remaining: 0 });

      const stats = again.stats(session.id);
      expect(stats.progress).toBe(1);
      expect(stats.secondsTotal).toBeCloseTo(52.5, 9);
      expect(stats.items.find((item) => item.imageId === ids[2])!.secondsSpent).toBe(25);
      // Labelled image times: 12.5, 25, 4, 6, 2 → median 6.
      expect(stats.secondsPerLabelledImage.median).toBe(6);
      expect(stats.labelCounts).toEqual({
        condition: { eczema: 1 },
        fitzpatrick: { IV: 1 },
        gradable: { yes: 1 },
        severity: { mild: 1, severe: 1, moderate: 1 },
      });
      // Labels carry the session id and the session's annotator.
      const labels = services(reopened).labels.currentLabels(ids[0]!);
      expect(labels.map((label) => [label.annotator, label.sessionId])).toEqual([['dr-a', session.id]]);
    } finally {
      reopened.close();
    }
  });

  it('lets two annotators label the same images in separate sessions without overwriting each other', () => {
    const lib = library();
    const ids = insertSyntheticImages(lib, 3);
    const { sessions, labels } = services(lib);
    const a = sessions.create({ name: 'A', annotator: 'dr-a', imageIds: ids });
    const b = sessions.create({ name: 'B', annotator: 'dr-b', imageIds: ids });
    sessions.record(a.id, ids[0]!, [{ kind: 'condition', values: [{ value: 'psoriasis', confidence: 5 }] }], 1);
    sessions.record(b.id, ids[0]!, [{ kind: 'condition', values: [{ value: 'eczema', confidence: 3 }] }], 1);
    expect(labels.currentLabels(ids[0]!, { annotator: 'dr-a' }).map((label) => label.value)).toEqual(['psoriasis']);
    expect(labels.currentLabels(ids[0]!, { annotator: 'dr-b' }).map((label) => label.value)).toEqual(['eczema']);
    expect(sessions.next(a.id).current!.labels.map((label) => label.value)).toEqual([]);
    expect(sessions.list().map((session) => [session.annotator, session.labelled])).toEqual([
      ['dr-a', 1],
      ['dr-b', 1],
    ]);
    // An image outside the session is refused.
    const [outside] = insertSyntheticImages(lib, 1);
    expect(caughtDermError(() => sessions.record(a.id, outside!, [], 1)).code).toBe('not-found');
  });

  it('refuses to record an image as done with no label, stores nothing, and keeps the image in the queue', () => {
    const lib = library();
    const ids = insertSyntheticImages(lib, 3);
    const { sessions, labels } = services(lib);
    const session = sessions.create({ name: 'stray enter', annotator: 'dr-a', imageIds: ids });
    const before = labels.history({ imageId: ids[0]! }).length;

    // Nothing given, empty kinds, and a note alone are all "nothing chosen".
    for (const attempt of [[], [{ kind: 'condition' as const, values: [] }], [{ kind: 'note' as const, values: [{ value: 'looks odd' }] }]]) {
      const error = caughtDermError(() => sessions.record(session.id, ids[0]!, attempt, 2));
      expect(error.code).toBe('invalid-input');
      expect(error.message).toContain(`image ${ids[0]}`);
      expect(error.message).toContain('skip');
    }
    expect(labels.currentLabels(ids[0]!)).toEqual([]);
    expect(labels.history({ imageId: ids[0]! }).length).toBe(before);
    expect(sessions.next(session.id)).toMatchObject({ session: { labelled: 0, skipped: 0, position: 0, secondsSpent: 0 }, current: { imageId: ids[0] } });

    // A real label is recorded; coming back and clearing it (leaving no label) is refused and rolled back.
    sessions.record(session.id, ids[0]!, [{ kind: 'condition', values: [{ value: 'eczema', confidence: 4 }] }], 2);
    sessions.previous(session.id);
    expect(caughtDermError(() => sessions.record(session.id, ids[0]!, [{ kind: 'condition', values: [] }], 1)).code).toBe('invalid-input');
    expect(labels.currentLabels(ids[0]!).map((label) => [label.kind, label.value, label.confidence])).toEqual([['condition', 'eczema', 4]]);
    expect(sessions.get(session.id)).toMatchObject({ labelled: 1, skipped: 0 });
  });

  it('makes agreement sessions blind by default and keeps the setting across reopening', () => {
    const lib = library();
    const ids = insertSyntheticImages(lib, 4);
    const { sessions } = services(lib);
    const solo = sessions.create({ name: 'solo', annotator: 'dr-a', imageIds: ids.slice(0, 2) });
    expect(solo).toMatchObject({ suggestions: 'shown', agreement: false });
    // Another annotator over an image of dr-a's session: agreement work, so blind.
    const second = sessions.create({ name: 'second reader', annotator: 'dr-b', imageIds: ids.slice(1, 3) });
    expect(second).toMatchObject({ suggestions: 'blind', agreement: true });
    const flagged = sessions.create({ name: 'flagged', annotator: 'dr-a', imageIds: [ids[3]!], agreement: true });
    expect(flagged).toMatchObject({ suggestions: 'blind', agreement: true });
    const chosen = sessions.create({ name: 'chosen', annotator: 'dr-c', imageIds: ids, agreement: true, suggestions: 'shown' });
    expect(chosen.suggestions).toBe('shown');
    expect(sessions.setSuggestions(solo.id, 'blind').suggestions).toBe('blind');
    expect(caughtDermError(() => sessions.setSuggestions(solo.id, 'peek' as 'blind')).message).toContain('peek');
    expect(caughtDermError(() => sessions.create({ name: 'x', annotator: 'dr-a', imageIds: ids, suggestions: 'peek' as 'blind' })).details).toMatchObject({
      field: 'suggestions',
    });

    const root = lib.paths.root;
    lib.close();
    const reopened = openLibrary(root);
    try {
      expect(
        services(reopened)
          .sessions.list()
          .map((session) => [session.name, session.suggestions, session.agreement]),
      ).toEqual([
        ['solo', 'blind', false],
        ['second reader', 'blind', true],
        ['flagged', 'blind', true],
        ['chosen', 'shown', true],
      ]);
    } finally {
      reopened.close();
    }
  });

  it('upgrades sessions made before blinding existed: those sharing images with another annotator become blind agreement sessions', () => {
    const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'dermws-sessions-upgrade-'));
    afterThisTest(() => fs.rmSync(folder, { recursive: true, force: true }));
    const all = loadMigrations();
    const blinding = all.findIndex((migration) => migration.name === 'labelling_session_blinding');
    expect(blinding).toBeGreaterThan(0);
    const before = path.join(folder, 'migrations-before');
    fs.mkdirSync(before);
    for (const migration of all.slice(0, blinding))
      fs.writeFileSync(path.join(before, `${String(migration.version).padStart(4, '0')}_${migration.name}.sql`), migration.sql);

    const old = openLibrary(path.join(folder, 'lib'), { migrationsFolder: before });
    const ids = insertSyntheticImages(old, 3);
    const at = '2026-01-01T00:00:00.000Z';
    const annotator = old.db.prepare('INSERT INTO annotators (name, created_at) VALUES (?, ?)');
    const [a, b] = [Number(annotator.run('dr-a', at).lastInsertRowid), Number(annotator.run('dr-b', at).lastInsertRowid)];
    const session = old.db.prepare(
      "INSERT INTO labelling_sessions (name, annotator_id, image_set, queue_order, seed, status, created_at, updated_at) VALUES (?, ?, '{}', 'random', 1, 'active', ?, ?)",
    );
    const item = old.db.prepare('INSERT INTO session_items (session_id, position, image_id) VALUES (?, ?, ?)');
    const add = (name: string, annotatorId: number, images: number[]) => {
      const id = Number(session.run(name, annotatorId, at, at).lastInsertRowid);
      images.forEach((imageId, position) => item.run(id, position, imageId));
    };
    add('a alone', a, [ids[0]!]);
    add('a shared', a, [ids[1]!]);
    add('b shared', b, [ids[1]!, ids[2]!]);
    add('a again on her own image', a, [ids[0]!]);
    old.close();

    const upgraded = openLibrary(path.join(folder, 'lib'));
    try {
      expect(
        services(upgraded)
          .sessions.list()
          .map((entry) => [entry.name, entry.suggestions, entry.agreement]),
      ).toEqual([
        ['a alone', 'shown', false],
        ['a shared', 'blind', true],
        ['b shared', 'blind', true],
        ['a again on her own image', 'shown', false],
      ]);
    } finally {
      upgraded.close();
    }
  });

  it('orders seeded random queues deterministically, and unlabelled-first puts images without labels first', () => {
    const lib = library();
    const ids = insertSyntheticImages(lib, 40);
    const { sessions, labels } = services(lib);
    const order = (id: number) => sessions.stats(id).items.map((item) => item.imageId);
    const first = order(sessions.create({ name: 'r1', annotator: 'dr-a', where: [], order: 'random', seed: 42 }).id);
    const second = order(sessions.create({ name: 'r2', annotator: 'dr-b', imageIds: [...ids].reverse(), order: 'random', seed: 42 }).id);
    const other = order(sessions.create({ name: 'r3', annotator: 'dr-a', where: [], order: 'random', seed: 43 }).id);
    expect(first).toEqual(second);
    expect(first).not.toEqual(other);
    expect(first).not.toEqual(ids);
    expect([...first].sort((a, b) => a - b)).toEqual(ids);

    labels.setLabel({ imageId: ids[0]!, kind: 'severity', value: 'mild', annotator: 'dr-a' });
    labels.setLabel({ imageId: ids[1]!, kind: 'severity', value: 'mild', annotator: 'dr-b' });
    const queue = order(sessions.create({ name: 'u', annotator: 'dr-a', imageIds: ids.slice(0, 5) }).id);
    // Nobody's labels first, then only others' labels, then the annotator's own.
    expect(queue).toEqual([ids[2], ids[3], ids[4], ids[1], ids[0]]);
  });

  it('builds the image set from a filter, and rejects malformed clauses naming them', () => {
    const lib = library();
    const ids = insertSyntheticImages(lib, 8, {
      caseKeyOf: (index) => (index < 2 ? 'case-1' : undefined),
      metadataOf: (index) => ({ body_parts: index % 2 ? 'ARM;LEG' : 'TORSO_FRONT', dataset: 'scin' }),
    });
    lib.db.prepare("INSERT INTO image_flags (image_id, flag, source, set_at) VALUES (?, 'blurry', 'auto', 'now')").run(ids[3]);
    const { sessions, labels } = services(lib);
    labels.setLabel({ imageId: ids[5]!, kind: 'condition', value: 'tinea', annotator: 'dr-a' });
    const set = (where: string[]) =>
      sessions
        .stats(sessions.create({ name: 'f', annotator: 'dr-x', where }).id)
        .items.map((item) => item.imageId)
        .sort((a, b) => a - b);
    expect(set(['meta.body_parts~arm'])).toEqual([ids[1], ids[3], ids[5], ids[7]]);
    expect(set(['meta.body_parts~arm', 'flag!=blurry', 'unlabelled'])).toEqual([ids[1], ids[7]]);
    expect(set(['label.condition=tinea'])).toEqual([ids[5]]);
    expect(set(['case=case-1'])).toEqual([ids[0], ids[1]]);
    expect(set(['labelled=condition'])).toEqual([ids[5]]);
    expect(caughtDermError(() => sessions.create({ name: 'f', annotator: 'a', where: ['meta.body_parts~arm', 'colour=red'] })).message).toContain(
      'clause 2 "colour=red"',
    );
    expect(caughtDermError(() => sessions.create({ name: 'f', annotator: 'a', where: ['batch=x'] })).message).toContain('batch');
    expect(caughtDermError(() => sessions.create({ name: 'f', annotator: 'a', where: ['case=nothing'] })).message).toContain('empty');
    expect(caughtDermError(() => sessions.create({ name: 'f', annotator: 'a', imageIds: [ids[0]!, 999] })).message).toContain('999');
    expect(sessions.list()).toHaveLength(5);
  });

  it('groups the queue by similarity cluster (k-means on the embeddings)', () => {
    const lib = library();
    const ids = insertSyntheticImages(lib, 60);
    const random = seededRandom(7);
    const dim = 96;
    const centres = [0, 1, 2].map(() => Array.from({ length: dim }, () => random() * 2 - 1));
    const truth = new Map<number, number>();
    const embeddings = new EmbeddingsRepository(lib.db);
    embeddings.registerModel({ id: 'test-model', displayName: 'Test', dim, sha256: '0'.repeat(64), source: 'imported', preprocessing: null });
    embeddings.put(
      'test-model',
      '0'.repeat(64),
      ids.slice(0, 57).map((imageId, index) => {
        // Interleave the clusters by id so that id order is not already grouped.
        const cluster = index % 3;
        truth.set(imageId, cluster);
        return { imageId, vector: centres[cluster]!.map((value) => value + (random() - 0.5) * 0.2) };
      }),
    );
    const { sessions } = services(lib);
    const session = sessions.create({ name: 'c', annotator: 'dr-a', where: [], order: 'cluster', clusters: 3, seed: 5 });
    expect(session.orderDetails).toMatchObject({ modelId: 'test-model', clusters: 3, withoutEmbedding: 3 });
    const queue = sessions.stats(session.id).items.map((item) => item.imageId);
    const groups = queue.slice(0, 57).map((id) => truth.get(id));
    // Each true cluster is one contiguous run of 19.
    expect([0, 19, 38].map((start) => new Set(groups.slice(start, start + 19)).size)).toEqual([1, 1, 1]);
    expect(queue.slice(57)).toEqual(ids.slice(57));
    const again = sessions
      .stats(sessions.create({ name: 'c2', annotator: 'dr-b', where: [], order: 'cluster', clusters: 3, seed: 5 }).id)
      .items.map((item) => item.imageId);
    expect(again).toEqual(queue);
  });

  it('orders by probe uncertainty when a probe run exists, and says so clearly when none does', () => {
    const lib = library();
    const ids = insertSyntheticImages(lib, 5);
    const { sessions } = services(lib);
    const error = caughtDermError(() => sessions.create({ name: 'u', annotator: 'dr-a', where: [], order: 'uncertain' }));
    expect(error.message).toContain('train a probe first');

    const run = lib.db
      .prepare(
        `INSERT INTO probe_runs (created_at, model_id, model_sha256, label_kind, labels, status, seed, folds, hyperparameters, filters, app_version, manifest)
         VALUES ('2026-01-01', 'm', 's', 'condition', '["eczema","tinea"]', 'completed', 1, 5, '{}', '{}', '0.1.0', '{}')`,
      )
      .run().lastInsertRowid;
    const insert = lib.db.prepare('INSERT INTO probe_predictions (run_id, image_id, label, probability) VALUES (?, ?, ?, ?)');
    const probabilities: Array<[number, number]> = [
      [0.95, 0.02],
      [0.6, 0.1],
      [0.2, 0.45],
      [0.99, 0.99],
    ];
    probabilities.forEach(([eczema, tinea], index) => {
      insert.run(run, ids[index], 'eczema', eczema);
      insert.run(run, ids[index], 'tinea', tinea);
    });
    const session = sessions.create({ name: 'u', annotator: 'dr-a', where: [], order: 'uncertain' });
    expect(session.orderDetails).toMatchObject({ probeRunId: Number(run), withoutPrediction: 1 });
    expect(sessions.stats(session.id).items.map((item) => item.imageId)).toEqual([ids[2], ids[1], ids[0], ids[3], ids[4]]);
  });
});
