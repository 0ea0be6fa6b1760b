import type { Library } from './library/library.js';
import { openLibrary } from './library/library.js';
import { LibraryCheckService, removeAbandonedTemporaryFiles } from './check/library-check.service.js';
import { resolveLibraryFolder } from './library/library-location.js';
import { SettingsRepository } from './library/settings.repository.js';
import { writeTransaction } from './library/write-transaction.js';
import { ImagesRepository } from './images/images.repository.js';
import { ImageFacetsRepository } from './images/image-facets.repository.js';
import { ImportBatchLeases } from './import/import-batch-leases.js';
import { ImportBatchesRepository } from './import/import-batches.repository.js';
import { ImportFilesRepository } from './import/import-files.repository.js';
import { ImportService } from './import/import.service.js';
import { QualityRepository } from './quality/quality.repository.js';
import { QualityService } from './quality/quality.service.js';
import { EmbeddingService } from './embeddings/embedding.service.js';
import { EmbeddingsRepository } from './embeddings/embeddings.repository.js';
import { EmbeddingSampleRepository } from './embeddings/embedding-sample.repository.js';
import { bundledManifestFolders, defaultEncoderLocation } from './models/model-services.js';
import { ModelRegistry } from './models/model-registry.js';
import { TaxonomyRepository } from './labels/taxonomy.repository.js';
import { TaxonomyService } from './labels/taxonomy.service.js';
import { LabelsRepository } from './labels/labels.repository.js';
import { LabelsService } from './labels/labels.service.js';
import { AgreementService } from './labels/agreement.service.js';
import { LabelSuggestionsService } from './labels/label-suggestions.service.js';
import { SessionsRepository } from './sessions/sessions.repository.js';
import { SessionsService } from './sessions/sessions.service.js';
import { ProbesRepository } from './probes/probes.repository.js';
import { ProbesService } from './probes/probes.service.js';
import { appVersion } from './library/installation.js';
import { DatasetsRepository } from './datasets/datasets.repository.js';
import { DatasetsService, type ImageFileImporter } from './datasets/datasets.service.js';
import { ExportRepository } from './export/export.repository.js';
import { ExportService } from './export/export.service.js';
import { VectorIndexRepository } from './index/vector-index.repository.js';
import { VectorIndexService } from './index/vector-index.service.js';
import { SearchRepository } from './search/search.repository.js';
import { SearchService, type QueryEmbedder } from './search/search.service.js';
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
  /** Every repository of the library, built once; services and the app's read model share them. */
  readonly repositories: Repositories;
  close(): void;
}

/**
 * Every repository over one library, each built once. Repositories hold the side effects (SQL, files);
 * services get the ones they need from here, so two services never hold two copies of one repository.
 */
export interface Repositories {
  readonly settings: SettingsRepository;
  readonly images: ImagesRepository;
  readonly facets: ImageFacetsRepository;
  readonly importBatches: ImportBatchesRepository;
  readonly quality: QualityRepository;
  readonly embeddings: EmbeddingsRepository;
  readonly embeddingSamples: EmbeddingSampleRepository;
  readonly taxonomy: TaxonomyRepository;
  readonly labels: LabelsRepository;
  readonly sessions: SessionsRepository;
  readonly probes: ProbesRepository;
  readonly datasets: DatasetsRepository;
  readonly exports: ExportRepository;
  readonly vectorIndex: VectorIndexRepository;
  readonly search: SearchRepository;
  readonly cluster: ClusterRepository;
}

export function createRepositories(library: Library): Repositories {
  return {
    settings: new SettingsRepository(library.db),
    images: new ImagesRepository(library.db, library.paths),
    facets: new ImageFacetsRepository(library.db),
    importBatches: new ImportBatchesRepository(library.db),
    quality: new QualityRepository(library.db),
    embeddings: new EmbeddingsRepository(library.db),
    embeddingSamples: new EmbeddingSampleRepository(library.db),
    taxonomy: new TaxonomyRepository(library.db),
    labels: new LabelsRepository(library.db),
    sessions: new SessionsRepository(library.db),
    probes: new ProbesRepository(library.db),
    datasets: new DatasetsRepository(library.db),
    exports: new ExportRepository(library.db),
    vectorIndex: new VectorIndexRepository(library.db),
    search: new SearchRepository(library.db, library.paths.root),
    cluster: new ClusterRepository(library.db),
  };
}

/** The images repository, quality service and import service (createCore; medium tests build them alone). */
export function createImportServices(
  library: Library,
  repositories: Repositories = createRepositories(library),
): { images: ImagesRepository; quality: QualityService; import: ImportService; importBatches: ImportBatchesRepository } {
  const quality = new QualityService(repositories.quality, repositories.settings);
  const importService = new ImportService({
    images: repositories.images,
    batches: repositories.importBatches,
    leases: new ImportBatchLeases(library.paths.locks),
    files: new ImportFilesRepository(library.paths),
    quality,
    transaction: (work) => writeTransaction(library.db, work),
  });
  return { images: repositories.images, quality, import: importService, importBatches: repositories.importBatches };
}

/** Encoder models and the embedding service. */
export function createModelServices(
  library: Library,
  repositories: Repositories = createRepositories(library),
): { models: ModelRegistry; embeddings: EmbeddingService } {
  const models = new ModelRegistry({
    libraryModelsFolder: library.paths.models,
    bundledManifestFolders: bundledManifestFolders(),
    defaultEncoder: () => defaultEncoderLocation(),
  });
  return { models, embeddings: new EmbeddingService(repositories.embeddings, models, library.paths.root) };
}

export interface LabellingServices {
  taxonomy: TaxonomyService;
  labels: LabelsService;
  sessions: SessionsService;
  agreement: AgreementService;
  suggestions: LabelSuggestionsService;
}

/** Taxonomy, labels, sessions, agreement and suggestions (createCore; medium tests build them alone). */
export function createLabellingServices(
  library: Library,
  repositories: Repositories = createRepositories(library),
  now: () => Date = () => new Date(),
): LabellingServices {
  const taxonomy = new TaxonomyService(repositories.taxonomy, repositories.settings, now);
  const labels = new LabelsService(repositories.labels, taxonomy, now);
  return {
    taxonomy,
    labels,
    sessions: new SessionsService(repositories.sessions, labels, repositories.labels, repositories.embeddings, now),
    agreement: new AgreementService(labels),
    suggestions: new LabelSuggestionsService(labels, repositories.embeddings),
  };
}

/** The vector index and the search service; the embedder turns a query image into a vector (none in tests that search by stored image). */
export function createSearchServices(
  library: Library,
  embedder: QueryEmbedder | undefined,
  repositories: Repositories = createRepositories(library),
): { index: VectorIndexService; search: SearchService } {
  const index = new VectorIndexService(
    repositories.vectorIndex,
    repositories.embeddings,
    library.paths,
    {},
    () => repositories.settings.get<number>('index.recallTarget'),
    () => repositories.settings.get<boolean>('index.sketch'),
  );
  const search = new SearchService(repositories.search, index, repositories.embeddings, embedder);
  return { index, search };
}

export interface DatasetServiceDependencies {
  import: ImageFileImporter;
  images: ImagesRepository;
  labels: LabelsService;
  taxonomy: TaxonomyService;
  quality: QualityService;
}

/** Dataset import and export (createCore; medium tests build them alone). */
export function createDatasetServices(
  library: Library,
  dependencies: DatasetServiceDependencies,
  repositories: Repositories = createRepositories(library),
): { datasets: DatasetsService; exports: ExportService } {
  const datasets = new DatasetsService(repositories.datasets, dependencies.import, dependencies.labels);
  const exports = new ExportService({
    repository: repositories.exports,
    images: dependencies.images,
    labels: dependencies.labels,
    embeddings: repositories.embeddings,
    taxonomy: dependencies.taxonomy,
    qualityThresholds: () => dependencies.quality.thresholds(),
    appVersion: appVersion(),
    schemaVersion: library.schemaVersion,
  });
  return { datasets, exports };
}

/** The composition root: opens the library, builds every repository once and hands each service what it needs. */
export function createCore(config: CoreConfig = {}): Core {
  const library = openLibrary(resolveLibraryFolder(config.libraryFolder));
  const repositories = createRepositories(library);
  const importServices = createImportServices(library, repositories);
  if (!library.readOnly) {
    // A batch left 'running' by a process that died would otherwise say so until the same import is rerun.
    importServices.import.recoverInterrupted();
    removeAbandonedTemporaryFiles(library.paths);
  }
  const modelServices = createModelServices(library, repositories);
  const labelling = createLabellingServices(library, repositories);
  const searchServices = createSearchServices(library, modelServices.embeddings, repositories);
  const datasetServices = createDatasetServices(
    library,
    { import: importServices.import, images: importServices.images, labels: labelling.labels, taxonomy: labelling.taxonomy, quality: importServices.quality },
    repositories,
  );
  return {
    library,
    settings: repositories.settings,
    images: repositories.images,
    quality: importServices.quality,
    import: importServices.import,
    importBatches: repositories.importBatches,
    models: modelServices.models,
    embeddings: modelServices.embeddings,
    taxonomy: labelling.taxonomy,
    labels: labelling.labels,
    sessions: labelling.sessions,
    agreement: labelling.agreement,
    suggestions: labelling.suggestions,
    probes: new ProbesService(repositories.probes, repositories.embeddings),
    datasets: datasetServices.datasets,
    exports: datasetServices.exports,
    index: searchServices.index,
    search: searchServices.search,
    check: new LibraryCheckService(library),
    demo: new DemoLibraryService(library, datasetServices.datasets, labelling.labels, modelServices.embeddings),
    cluster: new ClusterService(
      repositories.cluster,
      repositories.embeddings,
      modelServices.embeddings,
      modelServices.models,
      repositories.settings,
      searchServices.index,
    ),
    map: new MapService(repositories.embeddingSamples, repositories.embeddings, searchServices.index, repositories.images, labelling.labels),
    repositories,
    close: () => {
      void searchServices.index.close();
      // Stops the encoder worker threads; termination starts now, so the process can exit.
      void modelServices.embeddings.close();
      library.close();
    },
  };
}
