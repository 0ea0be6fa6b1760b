import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isDermError } from '../../electron/common/errors.js';
import { EmbeddingsRepository } from '../../electron/core/embeddings/embeddings.repository.js';
import { exactSearch, normalizeRows } from '../../electron/core/math/vector-math.js';
import { parseSearchFilter } from '../../electron/core/search/search-filter.js';
import { createSearchServices } from '../../electron/core/core.js';
import { runDermws } from '../fixtures/cli-runner.js';
import { clusteredVectors } from '../fixtures/clustered-vectors.js';
import { createTestLibrary, insertSyntheticImages } from '../fixtures/library-fixture.js';

type TestLibrary = ReturnType<typeof createTestLibrary>;
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const dim = 32;
const conditions = ['eczema', 'psoriasis', 'acne', 'urticaria'];

/**
 * 600 images in two import batches, with SCIN-style metadata, labels and quality flags spread over
 * them by index, and clustered 32-d embeddings.
 */
function searchLibrary(count = 600) {
  const library = createTestLibrary('dermws-search-');
  const first = insertSyntheticImages(library, count / 2, {
    caseKeyOf: (index) => `case-${Math.floor(index / 3)}`,
    metadataOf: (index) => ({
      body_parts: index % 5 === 0 ? 'ARM;LEG' : 'TORSO_FRONT',
      fitzpatrick_self: `FST${(index % 6) + 1}`,
      dataset: index % 2 === 0 ? 'scin' : 'isic',
    }),
  });
  const second = insertSyntheticImages(library, count / 2, {
    caseKeyOf: (index) => `case-b-${Math.floor(index / 3)}`,
    metadataOf: (index) => ({ body_parts: 'HEAD_OR_NECK', dataset: 'scin', fitzpatrick_self: 'FST1', shot_type: index % 2 ? 'CLOSE_UP' : 'AT_AN_ANGLE' }),
  });
  const ids = [...first, ...second];
  const now = new Date().toISOString();
  const label = library.db.prepare("INSERT INTO labels (image_id, kind, value, origin, created_at) VALUES (?, ?, ?, 'imported', ?)");
  const flag = library.db.prepare("INSERT INTO image_flags (image_id, flag, source, set_at) VALUES (?, ?, 'auto', ?)");
  library.db.transaction(() => {
    ids.forEach((id, index) => {
      label.run(id, 'condition', conditions[index % 4]!, now);
      if (index % 7 === 0) label.run(id, 'body_site', 'ARM', now);
      if (index % 11 === 0) label.run(id, 'fitzpatrick', 'V', now);
      if (index % 3 === 0) flag.run(id, 'blurry', now);
    });
  })();
  const embeddings = new EmbeddingsRepository(library.db);
  embeddings.registerModel({ id: 'vectors', displayName: 'vectors', dim, sha256: 'a'.repeat(64), source: 'imported', preprocessing: null });
  const { data } = clusteredVectors({ count, dim, seed: 3 });
  embeddings.put(
    'vectors',
    'a'.repeat(64),
    ids.map((imageId, row) => ({ imageId, vector: data.subarray(row * dim, (row + 1) * dim) })),
  );
  const services = createSearchServices(library, undefined);
  cleanups.push(() => library.cleanup());
  cleanups.push(() => services.index.close());
  return { library, ids, first, second, data, embeddings, ...services };
}

function vectorOf(data: Float32Array, row: number): Float32Array {
  return data.subarray(row * dim, (row + 1) * dim);
}

function count(library: TestLibrary, sql: string): number {
  return (library.db.prepare(sql).get() as { n: number }).n;
}

describe('similar-case search', () => {
  it('returns the query image first with its card, and can leave it or its case out', async () => {
    const { search, ids, library } = searchLibrary();
    const response = await search.search({ query: { imageId: ids[10]! }, k: 5 });
    expect(response).toMatchObject({ modelId: 'vectors', k: 5, query: { kind: 'image', imageId: ids[10] }, eligible: 600 });
    expect(response.completeness).toMatchObject({ method: 'index', met: true, target: 0.99, probes: 256 });
    expect(response.completeness.summary).toMatch(/^index search: recall@10 [01]\.\d{3} measured on 256 probes$/);
    const [first] = response.results;
    expect(first).toMatchObject({
      rank: 1,
      imageId: ids[10],
      caseKey: 'case-3',
      width: 640,
      height: 480,
      batchId: expect.any(Number),
      metadata: { body_parts: 'ARM;LEG', dataset: 'scin', fitzpatrick_self: 'FST5' },
      flags: [],
      labels: { condition: ['acne'] },
    });
    expect(first!.similarity).toBeGreaterThan(0.9999);
    expect(first!.thumbnailPath).toBe(path.join(library.paths.root, `thumbnails/${ids[10]}.webp`));
    expect(response.results.map((hit) => hit.similarity)).toEqual([...response.results.map((hit) => hit.similarity)].sort((a, b) => b - a));

    const withoutSelf = await search.search({ query: { imageId: ids[10]! }, k: 5, excludeSelf: true });
    expect(withoutSelf.results.map((hit) => hit.imageId)).not.toContain(ids[10]);
    const withoutCase = await search.search({ query: { imageId: ids[10]! }, k: 20, excludeCase: true });
    expect(withoutCase.results.map((hit) => hit.caseKey)).not.toContain('case-3');
  });

  it('every library image, used as a query, comes back first', async () => {
    const { search, ids } = searchLibrary();
    for (const imageId of ids) {
      const { results } = await search.search({ query: { imageId }, k: 1 });
      expect(results[0]!.imageId).toBe(imageId);
    }
  });

  it('combines filters with similarity and never starves', async () => {
    const { search, ids, first, data, library } = searchLibrary();
    const query = { vector: vectorOf(data, 0) };
    const firstBatch = (library.db.prepare('SELECT batch_id AS n FROM images WHERE id = ?').get(first[0]) as { n: number }).n;
    const check = async (where: string[], predicate: (index: number) => boolean, k = 25) => {
      const expected = ids.filter((_, index) => predicate(index));
      const response = await search.search({ query, k, where });
      expect(response.eligible).toBe(expected.length);
      expect(response.results).toHaveLength(Math.min(k, expected.length));
      const allowed = new Set(expected);
      expect(response.results.every((hit) => allowed.has(hit.imageId))).toBe(true);
      const exact = exactSearch(normalizeRows(data.slice(0, dim), dim), normalizeRows(data.slice(), dim), ids, k, (id) => allowed.has(id));
      const found = new Set(response.results.map((hit) => hit.imageId));
      expect(exact.filter((neighbour) => found.has(neighbour.imageId)).length).toBeGreaterThanOrEqual(Math.floor(0.9 * exact.length));
      // A small library's filtered set is scanned exactly, and the response says so rather than quoting the index's recall.
      expect(response.completeness).toMatchObject({ method: 'exact', recall: null });
      return response;
    };
    await check(['flag!=blurry'], (index) => index % 3 !== 0);
    await check(['flag=blurry'], (index) => index % 3 === 0);
    await check(['label.condition=eczema'], (index) => index % 4 === 0);
    await check(['meta.body_parts~arm'], (index) => index < 300 && index % 5 === 0);
    await check(['body_site=ARM'], (index) => index % 7 === 0 || (index < 300 && index % 5 === 0));
    await check(['skin_type=V'], (index) => index % 11 === 0 || (index < 300 && index % 6 === 4));
    await check(['skin_type=FST1'], (index) => index >= 300 || index % 6 === 0);
    await check([`batch=${firstBatch}`], (index) => index < 300);
    await check(['dataset=isic'], (index) => index < 300 && index % 2 === 1);
    await check(
      ['label.condition=psoriasis and flag!=blurry', 'meta.shot_type=CLOSE_UP'],
      (index) => index >= 300 && index % 4 === 1 && index % 3 !== 0 && (index - 300) % 2 === 1,
    );
    // 6 of 600 images pass: all six come back even for k = 50.
    const rare = await check(
      ['label.condition=acne', 'body_site=ARM', 'flag!=blurry', 'dataset=scin'],
      (index) => {
        const armByLabel = index % 7 === 0;
        const armByMeta = index < 300 && index % 5 === 0;
        const dataset = index >= 300 || index % 2 === 0;
        return index % 4 === 2 && (armByLabel || armByMeta) && index % 3 !== 0 && dataset;
      },
      50,
    );
    expect(rare.results.length).toBeGreaterThan(0);
    expect((await search.search({ query, k: 5, where: ['case=no-such-case'] })).results).toEqual([]);
  });

  it('refuses malformed filters and bad queries with errors that name them, changing nothing', async () => {
    const { search, ids, library, embeddings } = searchLibrary(60);
    await search.search({ query: { imageId: ids[0]! }, k: 3 });
    const indexFile = path.join(library.paths.indexes, 'vectors.hnsw');
    const before = fs.readFileSync(indexFile);
    const rows = () => [count(library, 'SELECT COUNT(*) AS n FROM images WHERE deleted_at IS NULL'), count(library, 'SELECT COUNT(*) AS n FROM image_flags')];
    const rowsBefore = rows();
    const failures: Array<[() => Promise<unknown>, RegExp]> = [
      [() => search.search({ query: { imageId: ids[0]! }, where: ['flag~blurry'] }), /clause 1 "flag~blurry"/],
      [() => search.search({ query: { imageId: ids[0]! }, where: ['flag!=blurry', 'colour=red'] }), /clause 2 "colour=red".*unknown field "colour"/],
      [() => search.search({ query: { imageId: ids[0]! }, where: ['batch=three'] }), /batch takes "=" and a positive whole number/],
      [() => search.search({ query: { imageId: ids[0]! }, where: ['skin_type=VII'] }), /skin_type must be a Fitzpatrick type/],
      [() => search.search({ query: { imageId: ids[0]! }, where: ['label.mood=happy'] }), /label\.KIND/],
      [() => search.search({ query: { imageId: ids[0]! }, where: ['just words'] }), /clause 1 "just words"/],
      [() => search.search({ query: { imageId: 99999 } }), /no image 99999/],
      [() => search.search({ query: { imageId: ids[0]! }, k: 0 }), /k must be a whole number from 1 to 1000/],
      [() => search.search({ query: { imageId: ids[0]! }, k: 1001 }), /k must be a whole number from 1 to 1000/],
      [() => search.search({ query: { imageId: ids[0]! }, modelId: 'missing' }), /no embeddings for model "missing".*vectors/],
      [() => search.search({ query: { file: '/no/such/photo.jpg' } }), /photo\.jpg does not exist/],
      [() => search.search({ query: { vector: [1, 2, 3] } }), /3 values.*32/],
    ];
    for (const [attempt, message] of failures) {
      const error = await attempt().catch((caught: unknown) => caught);
      expect(isDermError(error)).toBe(true);
      expect((error as Error).message).toMatch(message);
    }
    embeddings.registerModel({ id: 'unused', displayName: 'unused', dim: 8, sha256: 'b'.repeat(64), source: 'imported', preprocessing: null });
    await expect(search.search({ query: { vector: new Float32Array(8).fill(1) }, modelId: 'unused' })).rejects.toThrow(/no embeddings for images/);
    expect(fs.readFileSync(indexFile).equals(before)).toBe(true);
    expect(rows()).toEqual(rowsBefore);
    expect(() => parseSearchFilter(['meta=1'])).toThrow(/meta\.KEY/);
  });

  it('groups near and exact duplicates and keeps one, flagging or deleting the others', async () => {
    const library = createTestLibrary('dermws-duplicates-');
    const services = createSearchServices(library, undefined);
    cleanups.push(() => library.cleanup());
    cleanups.push(() => services.index.close());
    const ids = insertSyntheticImages(library, 200);
    const { data } = clusteredVectors({ count: 200, dim, seed: 8, noise: 0.05 });
    // Near duplicates: 11 ≈ 10 and 12 ≈ 11 (a chain), 51 ≈ 50; exact pixel copies: 100, 150 and 199.
    const nudge = (row: number, from: number, amount: number) => {
      for (let index = 0; index < dim; index++) data[row * dim + index] = data[from * dim + index]! + amount * Math.sin(index + row);
    };
    nudge(11, 10, 0.004);
    nudge(12, 11, 0.004);
    nudge(51, 50, 0.003);
    library.db.prepare('UPDATE images SET pixel_sha256 = ? WHERE id IN (?, ?, ?)').run('same-pixels', ids[100], ids[150], ids[199]);
    library.db.prepare('UPDATE images SET width = 1024, height = 768 WHERE id = ?').run(ids[12]);
    const embeddings = new EmbeddingsRepository(library.db);
    embeddings.registerModel({ id: 'vectors', displayName: 'vectors', dim, sha256: 'a'.repeat(64), source: 'imported', preprocessing: null });
    embeddings.put(
      'vectors',
      'a'.repeat(64),
      ids.map((imageId, row) => ({ imageId, vector: vectorOf(data, row) })),
    );

    const report = await services.search.duplicates({ threshold: 0.999 });
    const groups = report.groups.map((group) => group.imageIds);
    expect(groups).toContainEqual([ids[10], ids[11], ids[12]]);
    expect(groups).toContainEqual([ids[50], ids[51]]);
    expect(groups).toContainEqual([ids[100], ids[150], ids[199]]);
    expect(groups).toHaveLength(3);
    const chain = report.groups.find((group) => group.imageIds.includes(ids[10]!))!;
    expect(chain.keep).toBe(ids[12]);
    expect(chain.exact).toBe(false);
    expect(chain.pairs.every((pair) => pair.similarity! >= 0.999)).toBe(true);
    expect(report.groups.find((group) => group.imageIds.includes(ids[100]!))!).toMatchObject({ exact: true, keep: ids[100] });

    // A bad id anywhere changes nothing.
    expect(() => services.search.resolveDuplicates({ keep: ids[10]!, others: [ids[11]!, 99999], action: 'flag' })).toThrow(/no image 99999/);
    expect(() => services.search.resolveDuplicates({ keep: ids[10]!, others: [ids[10]!], action: 'flag' })).toThrow(/is the one kept/);
    expect(count(library, 'SELECT COUNT(*) AS n FROM image_flags')).toBe(0);

    expect(services.search.resolveDuplicates({ keep: ids[12]!, others: [ids[10]!, ids[11]!], action: 'flag' })).toMatchObject({ changed: 2 });
    const flags = library.db
      .prepare("SELECT image_id AS imageId, detail FROM image_flags WHERE flag = 'duplicate' AND source = 'manual' ORDER BY image_id")
      .all();
    expect(flags).toEqual([
      { imageId: ids[10], detail: `duplicate of image ${ids[12]}` },
      { imageId: ids[11], detail: `duplicate of image ${ids[12]}` },
    ]);
    expect(services.search.resolveDuplicates({ keep: ids[100]!, others: [ids[150]!, ids[199]!], action: 'delete' })).toMatchObject({ changed: 2 });
    const after = await services.search.duplicates({ threshold: 0.999 });
    expect(after.groups.map((group) => group.imageIds)).not.toContainEqual([ids[100], ids[150], ids[199]]);
    const { results } = await services.search.search({ query: { imageId: ids[100]! }, k: 200 });
    expect(results.map((hit) => hit.imageId)).not.toContain(ids[150]);
    expect(results).toHaveLength(198);
  });
});

describe('dermws search / duplicates / index', () => {
  it('prints stable JSON, documented errors and exit codes', async () => {
    const { library, ids } = searchLibrary(90);
    const root = library.paths.root;
    library.close();

    const status = await runDermws('index', 'status', '--library', root, '--json');
    expect(status.code).toBe(0);
    expect(status.json).toEqual({ indexes: [expect.objectContaining({ modelId: 'vectors', state: 'missing', databaseCount: 90, modelDim: 32 })] });

    const rebuilt = await runDermws('index', 'rebuild', '--library', root, '--json');
    expect(rebuilt.json).toEqual({
      indexes: [expect.objectContaining({ status: 'success', modelId: 'vectors', elements: 90, graphDim: 32, projectionVersion: null })],
    });
    expect((await runDermws('index', 'status', '--library', root, '--json')).json.indexes[0].state).toBe('ready');

    const found = await runDermws('search', String(ids[4]), '-k', '3', '--where', 'flag!=blurry', '--library', root, '--json');
    expect(found.code).toBe(0);
    // searchSimilar's output: image cards name the file, never its folder or the library's own paths.
    expect(found.json).toMatchObject({ modelId: 'vectors', where: ['flag!=blurry'] });
    expect(found.json.results).toHaveLength(3);
    expect(found.json.results[0]).toMatchObject({ rank: 1, imageId: ids[4], flags: [] });
    expect(Object.keys(found.json.results[0]).sort()).toEqual(
      ['caseKey', 'fileName', 'flags', 'height', 'imageId', 'labels', 'metadata', 'rank', 'similarity', 'width'].sort(),
    );
    // The text output still shows where each hit's thumbnail lies.
    const text = await runDermws('search', String(ids[4]), '--library', root);
    expect(text.stdout).toMatch(/most similar to image/);
    expect(text.stdout).toMatch(/thumbnails\//);

    const malformed = await runDermws('search', String(ids[4]), '--where', 'flag~blurry', '--library', root, '--json');
    expect(malformed.code).toBe(2);
    expect(malformed.json.error).toMatchObject({ code: 'invalid-input', message: expect.stringContaining('"flag~blurry"') });
    expect((await runDermws('search', String(ids[4]), '-k', '0', '--library', root, '--json')).code).toBe(2);
    expect((await runDermws('search', '/nowhere/photo.png', '--library', root, '--json')).json.error.message).toMatch(/does not exist/);

    const duplicates = await runDermws('duplicates', '--threshold', '0.9999', '--library', root, '--json');
    expect(duplicates.code).toBe(0);
    expect(duplicates.json).toMatchObject({ modelId: 'vectors', threshold: 0.9999, groups: [] });
    expect((await runDermws('duplicates', '--threshold', '2', '--library', root, '--json')).code).toBe(2);
    const resolved = await runDermws('duplicates', '--keep', String(ids[1]), '--mark', `${ids[2]},${ids[3]}`, '--library', root, '--json');
    expect(resolved.json).toEqual({ changed: 2, changedImages: [ids[2], ids[3]] });
  });
});
