import fs from 'node:fs';
import path from 'node:path';
import { DermError, serializeError } from '../../common/errors.js';
import type { GraphValue, ProviderAttempt } from './encoder-session.js';
import { EncoderRuntime, type EncoderRuntimeOptions } from './encoder-runtime.js';
import type { ExecutionProvider } from './execution-providers.js';
import { readManifestFile, type ManifestLocation } from './manifest-file.js';
import { sha256OfFile } from '../runtime/file-hash.js';
import { resizeForModel, valuesPerImage, writeNormalised } from './preprocess.js';

/** Where a model was found: the bundled default encoder, `native-models/manifests`, or the library's `models/` folder. */
export type ModelSource = 'default' | 'bundled' | 'library';

export interface RegisteredModel extends ManifestLocation {
  source: ModelSource;
}

export interface ManifestProblem {
  file: string;
  message: string;
}

export interface ModelListing {
  models: RegisteredModel[];
  /** Manifests that were found but could not be used, each with the reason. */
  problems: ManifestProblem[];
  /** The model `dermws embed` uses when none is named (the bundled default encoder when it is available). */
  defaultModelId: string | null;
}

export interface ModelCheckResult {
  id: string;
  displayName: string;
  source: ModelSource | 'candidate';
  manifestPath: string;
  onnxPath: string;
  sha256: string;
  dim: number;
  /** The execution provider that actually runs the model. */
  provider: ExecutionProvider;
  /** Why faster providers were not used (e.g. "cuda: … Failed to load shared library"); null when the first one loaded. */
  fallbackReason: string | null;
  attempts: ProviderAttempt[];
  inputs: GraphValue[];
  outputs: GraphValue[];
  batchSize: number;
  /** L2 norms of the embeddings of the generated test images (finite and of the declared size). */
  sampleNorms: number[];
}

export interface ModelRegistryOptions {
  /** The library's `models/` folder (user-added models). */
  libraryModelsFolder: string;
  /** Folders of bundled manifests (`native-models/manifests`); missing folders are skipped. */
  bundledManifestFolders?: string[];
  /** Produces the bundled default encoder (converting it on first use) and returns where it is. */
  defaultEncoder?: () => Promise<ManifestLocation>;
  runtimeOptions?: EncoderRuntimeOptions;
}

/**
 * Finds every model the workstation can use and checks them. A manifest that does not validate is
 * never fatal for the listing: it is reported as a problem with its file and field, and the other
 * models stay usable.
 */
export class ModelRegistry {
  private defaultLocation: Promise<ManifestLocation> | undefined;

  constructor(private readonly options: ModelRegistryOptions) {}

  async list(): Promise<ModelListing> {
    const models: RegisteredModel[] = [];
    const problems: ManifestProblem[] = [];
    const byId = new Map<string, RegisteredModel>();
    const accept = (model: RegisteredModel) => {
      const earlier = byId.get(model.manifest.id);
      if (earlier) {
        problems.push({
          file: model.manifestPath,
          message: `manifest ${model.manifestPath}: field id: "${model.manifest.id}" is already used by ${earlier.manifestPath}; this one is ignored.`,
        });
        return;
      }
      byId.set(model.manifest.id, model);
      models.push(model);
    };
    let defaultModelId: string | null = null;
    if (this.options.defaultEncoder) {
      try {
        this.defaultLocation ??= this.options.defaultEncoder();
        const location = await this.defaultLocation;
        accept({ ...location, source: 'default' });
        defaultModelId = location.manifest.id;
      } catch (error) {
        this.defaultLocation = undefined;
        problems.push({ file: 'default encoder', message: `The bundled default encoder is not available: ${serializeError(error).message}` });
      }
    }
    for (const folder of this.options.bundledManifestFolders ?? []) {
      for (const file of manifestFiles(folder, false)) this.readInto(file, 'bundled', accept, problems);
    }
    for (const file of manifestFiles(this.options.libraryModelsFolder, true)) this.readInto(file, 'library', accept, problems);
    if (defaultModelId === null && models.length > 0) defaultModelId = models[0]!.manifest.id;
    return { models, problems, defaultModelId };
  }

  private readInto(file: string, source: ModelSource, accept: (model: RegisteredModel) => void, problems: ManifestProblem[]): void {
    try {
      accept({ ...readManifestFile(file), source });
    } catch (error) {
      problems.push({ file, message: serializeError(error).message });
    }
  }

  /** The model with this id, or the default model when `id` is undefined. */
  async get(id?: string): Promise<RegisteredModel> {
    const listing = await this.list();
    const wanted = id ?? listing.defaultModelId;
    const found = listing.models.find((model) => model.manifest.id === wanted);
    if (found) return found;
    const problem = listing.problems.find((entry) => entry.message.includes(`"${wanted}"`));
    const known = listing.models.map((model) => model.manifest.id).join(', ') || 'none';
    if (wanted === null || wanted === undefined) {
      throw new DermError(
        'not-found',
        `No encoder model is available (known models: none). ${listing.problems.map((entry) => entry.message).join(' ')}`.trim(),
      );
    }
    throw new DermError('not-found', `No model with id "${wanted}". Known models: ${known}.${problem ? ` ${problem.message}` : ''}`, { modelId: wanted });
  }

  /** Starts the model's encoder in a worker thread (sha256 and graph checked against the manifest). */
  async start(model: ManifestLocation, options: EncoderRuntimeOptions = {}): Promise<EncoderRuntime> {
    return EncoderRuntime.start(model, { ...this.options.runtimeOptions, ...options });
  }

  /**
   * Checks a model end to end: the file exists and has the declared sha256, onnxruntime loads it (with
   * the provider that will really be used, and why others were skipped), the graph's inputs and outputs
   * match the manifest, and generated images produce finite embeddings of the declared size.
   */
  async check(idOrModel?: string | RegisteredModel, options: EncoderRuntimeOptions = {}): Promise<ModelCheckResult> {
    const model = idOrModel === undefined || typeof idOrModel === 'string' ? await this.get(idOrModel) : idOrModel;
    return checkModel(model, model.source, { ...this.options.runtimeOptions, ...options });
  }

  /**
   * Adds a user's ONNX model to the library: the manifest is validated, the model is checked with
   * `onnxFile` standing for the manifest's `file`, and only then are both copied into
   * `models/<id>/` (through a temporary folder and a rename, so a failed add leaves nothing behind).
   */
  async add(onnxFile: string, manifestFile: string): Promise<ModelCheckResult> {
    const candidate = readManifestFile(manifestFile);
    const listing = await this.list();
    const clash = listing.models.find((model) => model.manifest.id === candidate.manifest.id);
    if (clash) {
      throw new DermError('conflict', `A model with id "${candidate.manifest.id}" already exists (${clash.manifestPath}); give the new manifest another id.`, {
        modelId: candidate.manifest.id,
      });
    }
    const source = path.resolve(onnxFile);
    if (!fs.existsSync(source)) throw new DermError('not-found', `The model file ${source} does not exist.`, { file: source });
    const checked = await checkModel({ ...candidate, onnxPath: source }, 'candidate', this.options.runtimeOptions ?? {});
    const id = candidate.manifest.id;
    const folder = path.join(this.options.libraryModelsFolder, id);
    if (fs.existsSync(folder)) throw new DermError('conflict', `The folder ${folder} already exists; remove it or choose another model id.`, { folder });
    const temporary = path.join(this.options.libraryModelsFolder, `.adding-${id}-${process.pid}`);
    fs.rmSync(temporary, { recursive: true, force: true });
    fs.mkdirSync(temporary, { recursive: true });
    try {
      const fileName = `${id}.onnx`;
      fs.copyFileSync(source, path.join(temporary, fileName));
      const copiedSha = await sha256OfFile(path.join(temporary, fileName));
      if (copiedSha !== candidate.manifest.sha256)
        throw new DermError('model-invalid', `The copy of ${source} does not have the declared sha256; the file changed while it was being added.`);
      const manifest = { ...candidate.manifest, file: fileName };
      fs.writeFileSync(path.join(temporary, `${id}.manifest.json`), `${JSON.stringify(manifest, null, 2)}\n`);
      fs.renameSync(temporary, folder);
    } catch (error) {
      fs.rmSync(temporary, { recursive: true, force: true });
      throw error;
    }
    return { ...checked, source: 'library', manifestPath: path.join(folder, `${id}.manifest.json`), onnxPath: path.join(folder, `${id}.onnx`) };
  }
}

/** `*.json` in a folder (and, for the library, in its sub-folders one level down). */
function manifestFiles(folder: string, nested: boolean): string[] {
  if (!fs.existsSync(folder)) return [];
  const found: string[] = [];
  for (const entry of fs.readdirSync(folder, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    if (entry.name.startsWith('.')) continue;
    const full = path.join(folder, entry.name);
    if (entry.isFile() && entry.name.endsWith('.json')) found.push(full);
    else if (nested && entry.isDirectory()) found.push(...manifestFiles(full, false));
  }
  return found;
}

async function checkModel(model: ManifestLocation, source: ModelSource | 'candidate', options: EncoderRuntimeOptions): Promise<ModelCheckResult> {
  const { manifest, onnxPath } = model;
  if (!fs.existsSync(onnxPath)) {
    throw new DermError('model-invalid', `The model file ${onnxPath} named by ${model.manifestPath} (field file) does not exist.`, { file: onnxPath });
  }
  const runtime = await EncoderRuntime.start(model, options);
  try {
    const count = Math.min(2, runtime.batchSize);
    const input = manifest.input;
    const batch = new Float32Array(count * valuesPerImage(input));
    for (let index = 0; index < count; index++) {
      writeNormalised(await resizeForModel({ pixels: checkImage(index) }, input), input, batch, index);
    }
    const output = await runtime.run(batch, count);
    const sampleNorms: number[] = [];
    for (let index = 0; index < count; index++) {
      let sum = 0;
      for (let value = 0; value < manifest.output.dim; value++) sum += output[index * manifest.output.dim + value]! ** 2;
      sampleNorms.push(Math.sqrt(sum));
    }
    return {
      id: manifest.id,
      displayName: manifest.displayName,
      source,
      manifestPath: model.manifestPath,
      onnxPath,
      sha256: runtime.sha256,
      dim: manifest.output.dim,
      provider: runtime.provider,
      fallbackReason: runtime.fallbackReason ?? null,
      attempts: runtime.attempts,
      inputs: runtime.inputs,
      outputs: runtime.outputs,
      batchSize: runtime.batchSize,
      sampleNorms,
    };
  } finally {
    await runtime.close();
  }
}

/** A generated 320x240 photo-like image (skin-tone gradient with a darker disc), different per index. */
function checkImage(index: number): { data: Uint8Array; width: number; height: number; channels: 3 } {
  const width = 320;
  const height = 240;
  const data = new Uint8Array(width * height * 3);
  const cx = width * (0.4 + 0.2 * index);
  const cy = height * 0.5;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const inside = (x - cx) ** 2 + (y - cy) ** 2 < (50 + 10 * index) ** 2;
      const shade = 0.8 + 0.2 * (y / height);
      const offset = (y * width + x) * 3;
      data[offset] = Math.round((inside ? 120 : 224 - 40 * index) * shade);
      data[offset + 1] = Math.round((inside ? 60 : 180 - 30 * index) * shade);
      data[offset + 2] = Math.round((inside ? 50 : 150 - 20 * index) * shade);
    }
  }
  return { data, width, height, channels: 3 };
}
