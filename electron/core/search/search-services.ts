import { EmbeddingsRepository } from '../embeddings/embeddings.repository.js';
import { VectorIndexRepository } from '../index/vector-index.repository.js';
import { VectorIndexService } from '../index/vector-index.service.js';
import type { Library } from '../library/library.js';
import { SearchRepository } from './search.repository.js';
import { SearchService, type QueryEmbedder } from './search.service.js';

/** The vector index and the search service over one library (wired by createCore). */
export function createSearchServices(
  library: Library,
  embedder: QueryEmbedder | undefined,
  recallTargetSetting: () => number | undefined = () => undefined,
): { index: VectorIndexService; search: SearchService } {
  const embeddings = new EmbeddingsRepository(library.db);
  const index = new VectorIndexService(new VectorIndexRepository(library.db), embeddings, library.paths, {}, recallTargetSetting);
  const search = new SearchService(new SearchRepository(library.db, library.paths.root), index, embeddings, embedder);
  return { index, search };
}
