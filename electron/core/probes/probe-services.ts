import { EmbeddingsRepository } from '../embeddings/embeddings.repository.js';
import type { Library } from '../library/library.js';
import { ProbesRepository } from './probes.repository.js';
import { ProbesService } from './probes.service.js';

/** Wires the probes service over one library (used by createCore). */
export function createProbesService(library: Library): ProbesService {
  return new ProbesService(new ProbesRepository(library.db), new EmbeddingsRepository(library.db));
}
