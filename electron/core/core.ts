import { openLibrary, type Library } from './library/library.js';
import { LibraryCheckService, removeAbandonedTemporaryFiles } from './check/library-check.service.js';
import { resolveLibraryFolder } from './library/library-location.js';
import { SettingsRepository } from './library/settings.repository.js';
import type { ImagesRepository } from './images/images.repository.js';
import type { ImportBatchesRepository } from './import/import-batches.repository.js';
import { createImportServices } from './import/import-services.js';
import type { ImportService } from './import/import.service.js';
import type { QualityService } from './quality/quality.service.js';
import type { EmbeddingService } from './embeddings/embedding.service.js';
import { createModelServices } from './models/model-services.js';
import type { ModelRegistry } from './models/model-registry.js';
import { createLabellingServices } from './labels/labelling-services.js';
import type { TaxonomyService } from './labels/taxonomy.service.js';
import type { LabelsService } from './labels/labels.service.js';
import type { AgreementService } from './labels/agreement.service.js';
import type { LabelSuggestionsService } from './labels/label-suggestions.service.js';
import type { SessionsService } from './sessions/sessions.service.js';
import { createProbesService } from './probes/probe-services.js';
import type { ProbesService } from './probes/probes.service.js';
import { createDatasetServices } from './datasets/dataset-services.js';
import type { DatasetsService } from './datasets/datasets.service.js';
import type { ExportService } from './export/export.service.js';
import { createSearchServices } from './search/search-services.js';
import type { VectorIndexService } from './index/vector-index.service.js';
import type { SearchService } from './search/search.service.js';
import { DemoLibraryService } from './demo/demo-library.js';
import { ClusterRepository } from './cluster/cluster.repository.js';
import { ClusterService } from './cluster/cluster.service.js';
import { MapService } from './map/map.service.js';

export interface CoreConfig {
  /** Library folder; when absent, DERMWS_LIBRARY or the OS application-data folder is used. */
  libraryFolder?: string;
}

/**
 * The workstation's services wired together over one library. The desktop app, the `dermws` CLI and
 * the local web mode all call createCore and use the same services.
 */
export interface Core {
  readonly library: Library;
  readonly settings: SettingsRepository;
  readonly images: ImagesRepository;
  readonly quality: QualityService;
  readonly import: ImportService;
  readonly importBatches: ImportBatchesRepository;
  /** Encoder models: listing, checking, adding. */
  readonly models: ModelRegistry;
  /** Embedding jobs, single-image embedding and precomputed-embedding import. */
  readonly embeddings: EmbeddingService;
  /** Label vocabularies: starter taxonomy, CSV/JSON import, removal guarded by usage. */
  readonly taxonomy: TaxonomyService;
  /** Labels per annotator with audit log and undo/redo; bulk import for datasets; consensus. */
  readonly labels: LabelsService;
  /** Labelling sessions: queues, progress, time per image, pause/resume. */
  readonly sessions: SessionsService;
  /** Cohen's/Fleiss' kappa, disagreements, adjudication. */
  readonly agreement: AgreementService;
  /** Labels of the k nearest labelled images, weighted by similarity. */
  readonly suggestions: LabelSuggestionsService;
  /** Linear probes: case-grouped CV with bootstrap CIs and subgroups, stored runs, predictions as suggestions. */
  readonly probes: ProbesService;
  /** Dataset import: SCIN folders, ISIC metadata, any CSV with a column mapping. */
  readonly datasets: DatasetsService;
  /** Exports: CSV (wide and long), embeddings npz/npy, image copies without EXIF/GPS, manifest. */
  readonly exports: ExportService;
  /** Persisted HNSW index per model, kept consistent with the embeddings (rebuild, status, sync). */
  readonly index: VectorIndexService;
  /** Similar-case search with filters, and near-duplicate review. */
  readonly search: SearchService;
  /** `dermws check`: database integrity, embedding sanity, thumbnails and managed copies present; repair. */
  readonly check: LibraryCheckService;
  /** The demo library of the first run: a generated SCIN-shaped dataset, imported and embedded. */
  readonly demo: DemoLibraryService;
  /** Cluster embedding: plans for Dask/SLURM workers and the merge of their shards. */
  readonly cluster: ClusterService;
  /** The embedding map's points: from the index's projected vectors when it has them, with progress. */
  readonly map: MapService;
  close(): void;
}

export function createCore(config: CoreConfig = {}): Core {
  const library = openLibrary(resolveLibraryFolder(config.libraryFolder));
  const settings = new SettingsRepository(library.db);
  const importServices = createImportServices(library, settings);
  if (!library.readOnly) {
    // A batch left 'running' by a process that died would otherwise say so until the same import is rerun.
    importServices.import.recoverInterrupted();
    removeAbandonedTemporaryFiles(library.paths);
  }
  const modelServices = createModelServices(library);
  const labelling = createLabellingServices(library, settings);
  const searchServices = createSearchServices(library, modelServices.embeddings, () => settings.get<number>('index.recallTarget'));
  const datasetServices = createDatasetServices(library, {
    import: importServices.import,
    images: importServices.images,
    labels: labelling.labels,
    taxonomy: labelling.taxonomy,
    quality: importServices.quality,
  });
  return {
    library,
    settings,
    images: importServices.images,
    quality: importServices.quality,
    import: importServices.import,
    importBatches: importServices.importBatches,
    models: modelServices.models,
    embeddings: modelServices.embeddings,
    taxonomy: labelling.taxonomy,
    labels: labelling.labels,
    sessions: labelling.sessions,
    agreement: labelling.agreement,
    suggestions: labelling.suggestions,
    probes: createProbesService(library),
    datasets: datasetServices.datasets,
    exports: datasetServices.exports,
    index: searchServices.index,
    search: searchServices.search,
    check: new LibraryCheckService(library),
    demo: new DemoLibraryService(library, datasetServices.datasets, labelling.labels, modelServices.embeddings),
    cluster: new ClusterService(
      new ClusterRepository(library.db),
      modelServices.embeddingsRepository,
      modelServices.embeddings,
      modelServices.models,
      settings,
      searchServices.index,
    ),
    map: new MapService(library.db, searchServices.index, importServices.images, labelling.labels),
    close: () => {
      void searchServices.index.close();
      // Stops the encoder worker threads; termination starts now, so the process can exit.
      void modelServices.embeddings.close();
      library.close();
    },
  };
}
