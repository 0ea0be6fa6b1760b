/**
 * Library filter bench: a generated 100k-image library (LIBRARY_BENCH_IMAGES) shaped like SCIN —
 * self-reported Fitzpatrick type on every image, body_parts lists, condition labels on 60% from two
 * annotators, Monk tone labels on 30%, a 5,000-image labelling session, 5% flagged. Measures what the
 * Library screen asks for on every filter change: the facet counts and the first page of ids, with no
 * filter and with typical filters; and, side by side in the same run, the same queries without the
 * indexes of migration 0008 (labels_annotator_current, session_items_image).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ImageFacetsRepository } from '../../electron/core/images/image-facets.repository.js';
import { ImagesRepository, type ImageFilter } from '../../electron/core/images/images.repository.js';
import { openLibrary } from '../../electron/core/library/library.js';
import { insertSyntheticImages } from '../fixtures/library-fixture.js';

const ms = (value: number) => `${value.toFixed(value < 10 ? 1 : 0)} ms`;

function median(run: () => void, repeats = 5): number {
  const times: number[] = [];
  for (let index = 0; index < repeats; index++) {
    const start = performance.now();
    run();
    times.push(performance.now() - start);
  }
  return times.sort((a, b) => a - b)[Math.floor(times.length / 2)]!;
}

export async function run(): Promise<void> {
  const count = Number(process.env.LIBRARY_BENCH_IMAGES ?? 100_000);
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'dermws-filter-bench-'));
  const library = openLibrary(path.join(folder, 'library'));
  try {
    const conditions = ['eczema', 'psoriasis', 'acne', 'tinea', 'urticaria', 'impetigo', 'folliculitis', 'scabies'];
    const parts = ['ARM', 'LEG', 'TORSO_FRONT', 'HEAD_OR_NECK', 'PALM', 'FOOT_SOLE'];
    const ids = insertSyntheticImages(library, count, {
      caseKeyOf: (index) => `case-${Math.floor(index / 2)}`,
      metadataOf: (index) => ({ fitzpatrick_self: `FST${(index % 6) + 1}`, body_parts: `${parts[index % 6]};${parts[(index * 7) % 6]}` }),
    });
    const db = library.db;
    const now = new Date().toISOString();
    db.transaction(() => {
      const annotator = db.prepare('INSERT INTO annotators (name, created_at) VALUES (?, ?)');
      const alice = annotator.run('alice', now).lastInsertRowid;
      const bob = annotator.run('bob', now).lastInsertRowid;
      const label = db.prepare("INSERT INTO labels (image_id, kind, value, annotator_id, origin, created_at) VALUES (?, ?, ?, ?, 'manual', ?)");
      const flag = db.prepare("INSERT INTO image_flags (image_id, flag, source, set_at) VALUES (?, 'blurry', 'auto', ?)");
      ids.forEach((id, index) => {
        if (index % 10 < 6) label.run(id, 'condition', conditions[index % conditions.length], index % 2 === 0 ? alice : bob, now);
        if (index % 10 < 3) label.run(id, 'monk_tone', String((index % 10) + 1), bob, now);
        if (index % 20 === 0) flag.run(id, now);
      });
      const session = db
        .prepare(
          "INSERT INTO labelling_sessions (name, annotator_id, image_set, queue_order, seed, status, created_at, updated_at) VALUES ('bench', ?, '{}', 'random', 1, 'active', ?, ?)",
        )
        .run(alice, now, now).lastInsertRowid;
      const item = db.prepare('INSERT INTO session_items (session_id, position, image_id) VALUES (?, ?, ?)');
      for (let position = 0; position < Math.min(5000, ids.length); position++)
        item.run(session, position, ids[position * Math.floor(ids.length / 5000 || 1)] ?? ids[position]);
    })();
    db.exec('ANALYZE');

    const images = new ImagesRepository(db, library.paths);
    const facets = new ImageFacetsRepository(db);
    const filters: Array<[string, ImageFilter]> = [
      ['no filter', {}],
      ['Fitzpatrick V', { fitzpatrick: 'V' }],
      ['condition eczema + body site ARM', { labels: [{ kind: 'condition', value: 'eczema' }], bodySite: 'ARM' }],
      ['annotator bob', { annotator: 'bob' }],
      ['session', { sessionId: 1 }],
    ];
    const measure = () =>
      filters.map(([name, filter]) => ({
        name,
        facets: median(() => facets.facets(filter), 3),
        page: median(() => {
          images.count(filter);
          images.list({ ...filter, limit: 500 });
        }),
        pageDeep: median(() => images.list({ ...filter, offset: Math.floor(images.count(filter) / 2), limit: 500 })),
      }));
    const withIndexes = measure();
    db.exec('DROP INDEX labels_annotator_current; DROP INDEX session_items_image; ANALYZE');
    const without = measure();
    console.log(`${count.toLocaleString()} images; medians. "page" = count + first 500 ids; "deep" = 500 ids from the middle.`);
    console.log('filter                               facets    page    deep   | without 0008 indexes: facets    page   (ratio facets)');
    withIndexes.forEach((row, index) => {
      const other = without[index]!;
      console.log(
        `${row.name.padEnd(36)} ${ms(row.facets).padStart(8)} ${ms(row.page).padStart(7)} ${ms(row.pageDeep).padStart(7)}   |                     ${ms(other.facets).padStart(8)} ${ms(other.page).padStart(7)}   ${(other.facets / row.facets).toFixed(2)}×`,
      );
    });
  } finally {
    library.close();
    fs.rmSync(folder, { recursive: true, force: true });
  }
}
