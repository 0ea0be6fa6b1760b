import { EmbeddingsRepository } from '../embeddings/embeddings.repository.js';
import type { Library } from '../library/library.js';
import type { SettingsRepository } from '../library/settings.repository.js';
import { SessionsRepository } from '../sessions/sessions.repository.js';
import { SessionsService } from '../sessions/sessions.service.js';
import { AgreementService } from './agreement.service.js';
import { LabelSuggestionsService } from './label-suggestions.service.js';
import { LabelsRepository } from './labels.repository.js';
import { LabelsService } from './labels.service.js';
import { TaxonomyRepository } from './taxonomy.repository.js';
import { TaxonomyService } from './taxonomy.service.js';

export interface LabellingServices {
  taxonomy: TaxonomyService;
  labels: LabelsService;
  sessions: SessionsService;
  agreement: AgreementService;
  suggestions: LabelSuggestionsService;
}

/** Wires taxonomy, labels, sessions, agreement and suggestions over one library (used by createCore and tests). */
export function createLabellingServices(library: Library, settings: SettingsRepository, now: () => Date = () => new Date()): LabellingServices {
  const taxonomy = new TaxonomyService(new TaxonomyRepository(library.db), settings, now);
  const labelsRepository = new LabelsRepository(library.db);
  const labels = new LabelsService(labelsRepository, taxonomy, now);
  const embeddings = new EmbeddingsRepository(library.db);
  return {
    taxonomy,
    labels,
    sessions: new SessionsService(new SessionsRepository(library.db), labels, labelsRepository, embeddings, now),
    agreement: new AgreementService(labels),
    suggestions: new LabelSuggestionsService(labels, embeddings),
  };
}
