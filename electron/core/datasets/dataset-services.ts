import { appVersion } from '../installation.js';
import { EmbeddingsRepository } from '../embeddings/embeddings.repository.js';
import type { ImagesRepository } from '../images/images.repository.js';
import type { LabelsService } from '../labels/labels.service.js';
import type { TaxonomyService } from '../labels/taxonomy.service.js';
import type { Library } from '../library/library.js';
import type { QualityService } from '../quality/quality.service.js';
import { ExportRepository } from '../export/export.repository.js';
import { ExportService } from '../export/export.service.js';
import { DatasetsRepository } from './datasets.repository.js';
import { DatasetsService, type ImageFileImporter } from './datasets.service.js';

export interface DatasetServiceDependencies {
  import: ImageFileImporter;
  images: ImagesRepository;
  labels: LabelsService;
  taxonomy: TaxonomyService;
  quality: QualityService;
}

/** Wires dataset import and export over one library (used by createCore and tests). */
export function createDatasetServices(library: Library, dependencies: DatasetServiceDependencies): { datasets: DatasetsService; exports: ExportService } {
  const datasets = new DatasetsService(new DatasetsRepository(library.db), dependencies.import, dependencies.labels);
  const exports = new ExportService({
    repository: new ExportRepository(library.db),
    images: dependencies.images,
    labels: dependencies.labels,
    embeddings: new EmbeddingsRepository(library.db),
    taxonomy: dependencies.taxonomy,
    qualityThresholds: () => dependencies.quality.thresholds(),
    appVersion: appVersion(),
    schemaVersion: library.schemaVersion,
  });
  return { datasets, exports };
}
