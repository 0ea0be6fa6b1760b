/**
 * What a library check costs as the library grows: opening (with the bounded schema-record check),
 * SQLite's quick_check, integrity_check, and the embedding scan of `dermws check`, side by side on
 * libraries of synthetic rows with 1280-value embeddings (the default encoder's size).
 * `LIBRARY_CHECK_BENCH_SIZES=5000,20000` changes the sizes.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EmbeddingsRepository } from '../../electron/core/embeddings/embeddings.repository.js';
import { LibraryCheckService } from '../../electron/core/check/library-check.service.js';
import { openLibrary } from '../../electron/core/library/library.js';
import { insertSyntheticImages } from '../fixtures/library-fixture.js';

function seconds<T>(work: () => T): { value: T; seconds: number } {
  const started = performance.now();
  const value = work();
  return { value, seconds: (performance.now() - started) / 1000 };
}

export async function run(): Promise<void> {
  const sizes = (process.env.LIBRARY_CHECK_BENCH_SIZES ?? '5000,20000').split(',').map(Number);
  const dim = 1280;
  console.log('images | file MB | open s | quick_check s | integrity_check s | dermws check (quick, no files) s');
  for (const size of sizes) {
    const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'dermws-check-bench-'));
    try {
      const root = path.join(folder, 'library');
      const library = openLibrary(root);
      const ids = insertSyntheticImages(library, size, { metadataOf: (index) => ({ site: `site-${index % 17}` }) });
      const repository = new EmbeddingsRepository(library.db);
      repository.registerModel({ id: 'bench', displayName: 'bench', dim, sha256: 'b'.repeat(64), source: 'imported', preprocessing: null });
      for (let start = 0; start < ids.length; start += 1000) {
        repository.put(
          'bench',
          'b'.repeat(64),
          ids.slice(start, start + 1000).map((imageId) => {
            const vector = new Float32Array(dim);
            for (let index = 0; index < dim; index++) vector[index] = (index + imageId) % 3 === 0 ? 0 : ((index * imageId) % 97) / 97;
            return { imageId, vector };
          }),
        );
      }
      library.db.pragma('wal_checkpoint(TRUNCATE)');
      library.close();
      const megabytes = fs.statSync(path.join(root, 'library.sqlite')).size / 1e6;
      const opened = seconds(() => openLibrary(root));
      const quick = seconds(() => opened.value.db.pragma('quick_check'));
      const full = seconds(() => opened.value.db.pragma('integrity_check'));
      const checker = new LibraryCheckService(opened.value);
      const started = performance.now();
      await checker.check();
      const check = (performance.now() - started) / 1000;
      opened.value.close();
      console.log(
        `${size} | ${megabytes.toFixed(0)} | ${opened.seconds.toFixed(3)} | ${quick.seconds.toFixed(2)} | ${full.seconds.toFixed(2)} | ${check.toFixed(2)}`,
      );
    } finally {
      fs.rmSync(folder, { recursive: true, force: true });
    }
  }
}
