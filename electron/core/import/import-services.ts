import { ImagesRepository } from '../images/images.repository.js';
import type { Library } from '../library/library.js';
import type { SettingsRepository } from '../library/settings.repository.js';
import { QualityRepository } from '../quality/quality.repository.js';
import { QualityService } from '../quality/quality.service.js';
import { ImportBatchLeases } from './import-batch-leases.js';
import { ImportBatchesRepository } from './import-batches.repository.js';
import { ImportFilesRepository } from './import-files.repository.js';
import { ImportService } from './import.service.js';
import { writeTransaction } from '../library/write-transaction.js';

/** Wires the images repository, quality service and import service over one library (used by createCore and tests). */
export function createImportServices(library: Library, settings: SettingsRepository): { images: ImagesRepository; quality: QualityService; import: ImportService; importBatches: ImportBatchesRepository } {
  const images = new ImagesRepository(library.db, library.paths);
  const quality = new QualityService(new QualityRepository(library.db), settings);
  const importBatches = new ImportBatchesRepository(library.db);
  const importService = new ImportService({
    images,
    batches: importBatches,
    leases: new ImportBatchLeases(library.paths.locks),
    files: new ImportFilesRepository(library.paths),
    quality,
    transaction: (work) => writeTransaction(library.db, work),
  });
  return { images, quality, import: importService, importBatches };
}
