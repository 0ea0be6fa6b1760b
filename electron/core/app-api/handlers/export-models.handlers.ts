import type { exportModelsCalls } from '../../../common/contract/export-models.js';
import fs from 'node:fs';
import path from 'node:path';
import type { CallOutput } from '../../../common/contract.js';
import type { ModelCheckResult } from '../../models/model-registry.js';
import type { HandlerGroup } from '../app-api.js';

/** What a check (modelsCheck) and an add (modelsAdd) answer: one contract shape, without the files' paths (they stay on this machine). */
function modelCheckOutput(result: ModelCheckResult): CallOutput<'modelsCheck' | 'modelsAdd'> {
  return {
    id: result.id,
    displayName: result.displayName,
    source: result.source,
    dim: result.dim,
    sha256: result.sha256,
    provider: result.provider,
    fallbackReason: result.fallbackReason,
    batchSize: result.batchSize,
    attempts: result.attempts.map((attempt) => ({ provider: attempt.provider, ...(attempt.error === undefined ? {} : { error: attempt.error }) })),
    inputs: result.inputs.map((value) => ({ name: value.name, type: value.type, shape: value.shape })),
    outputs: result.outputs.map((value) => ({ name: value.name, type: value.type, shape: value.shape })),
    sampleNorms: result.sampleNorms,
  };
}

export const exportModelsHandlers: HandlerGroup<keyof typeof exportModelsCalls> = {
  exportStart: (input, { core, jobs }) => {
    const job = jobs.start('export', async ({ signal, onProgress }) => {
      const report = await core.exports.export({
        folder: path.resolve(input.folder),
        signal,
        onProgress,
        ...(input.formats ? { formats: input.formats } : {}),
        ...(input.modelId ? { modelId: input.modelId } : {}),
        ...(input.images !== undefined ? { images: input.images } : {}),
        ...(input.overwrite !== undefined ? { overwrite: input.overwrite } : {}),
        ...(input.deidentify !== undefined ? { deidentify: input.deidentify } : {}),
        ...(input.dropMetadata ? { dropMetadata: input.dropMetadata } : {}),
        ...(input.filter ? { filter: input.filter } : {}),
      });
      return { status: report.status, result: report };
    });
    return { jobId: job.id };
  },
  modelsList: async (_input, { core }) => {
    const listing = await core.models.list();
    const stored = core.embeddings.storedModels();
    const counts = new Map(stored.map((model) => [model.id, model.count]));
    return {
      models: listing.models.map((model) => ({
        id: model.manifest.id,
        displayName: model.manifest.displayName,
        source: model.source,
        dim: model.manifest.output.dim,
        inputSize: `${model.manifest.input.width}×${model.manifest.input.height}`,
        licence: model.manifest.licence,
        description: model.manifest.description ?? null,
        assumptions: model.manifest.assumptions ?? [],
        embedded: counts.get(model.manifest.id) ?? 0,
        inputLayout: model.manifest.input.layout,
        sha256: model.manifest.sha256,
        origin: model.manifest.origin,
        fileExists: fs.existsSync(model.onnxPath),
        searchIndex: counts.has(model.manifest.id) ? core.index.calibrationSummary(model.manifest.id) : null,
      })),
      stored: stored.map((model) => ({
        id: model.id,
        displayName: model.displayName,
        source: model.source,
        dim: model.dim,
        sha256: model.sha256,
        images: model.count,
      })),
      problems: listing.problems,
      defaultModelId: listing.defaultModelId,
    };
  },
  modelsCheck: async (input, { core }) => modelCheckOutput(await core.models.check(input.modelId)),
  modelsAdd: async (input, { core }) => modelCheckOutput(await core.models.add(path.resolve(input.onnxPath), path.resolve(input.manifestPath))),
  embedStart: (input, { core, jobs, emit }) => {
    const job = jobs.start('embed', async ({ signal, onProgress }) => {
      try {
        const result = await core.embeddings.embedLibrary({
          signal,
          onProgress,
          ...(input.modelId ? { modelId: input.modelId } : {}),
          ...(input.batchSize ? { batchSize: input.batchSize } : {}),
        });
        return { status: result.status, result };
      } finally {
        emit({ type: 'library-changed', what: 'embeddings' });
      }
    });
    return { jobId: job.id };
  },
};
