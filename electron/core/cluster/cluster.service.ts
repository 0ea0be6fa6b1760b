import type { z } from 'zod';
import type { clusterImportReportSchema } from '../../common/contract.js';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { DermError } from '../../common/errors.js';
import { appVersion } from '../library/installation.js';
import type { EmbeddingService } from '../embeddings/embedding.service.js';
import type { EmbeddingsRepository } from '../embeddings/embeddings.repository.js';
import { readNpzEntries } from '../embeddings/npz.js';
import type { VectorIndexService } from '../index/vector-index.service.js';
import { ProgressReporter, type JobControl } from '../jobs/job.js';
import type { SettingsRepository } from '../library/settings.repository.js';
import { preprocessingRecord } from '../models/manifest-file.js';
import { sha256OfFile } from '../runtime/file-hash.js';
import type { ModelRegistry } from '../models/model-registry.js';
import { ensureWritableFolder } from './cluster-shard.js';
import { shardManifestSchema, type ShardManifest } from './cluster-shard.js';
import {
  newPlanId,
  planFileName,
  planFormat,
  planFormatVersion,
  readPlan,
  shardFiles,
  writeFileAtomically,
  type EmbeddingPlan,
  type PlanImage,
} from './cluster-plan.js';
import type { ClusterRepository } from './cluster.repository.js';

const libraryIdSetting = 'library.id';

export interface WritePlanOptions {
  /** Model id; default: the registry's default model. */
  modelId?: string;
  shardSize: number;
  /** The plan folder to create (must not exist, or be empty). */
  out: string;
  /** The folder keys are relative to; default: the deepest folder holding every image file. */
  root?: string;
}

export interface WritePlanResult {
  planFolder: string;
  planId: string;
  libraryId: string;
  modelId: string;
  modelSha256: string;
  root: string;
  images: number;
  shardSize: number;
  shards: number;
}

export type ClusterImportResult = z.infer<typeof clusterImportReportSchema>;

/**
 * Hands embedding work to a cluster and takes it back: `writePlan` describes the images still to be
 * embedded (paths relative to a root the cluster sees, with their sha256) and copies the model next
 * to it; workers run shards (cluster-shard.ts); `importResults` checks every finished shard against
 * the plan and the library and stores its vectors, one shard per transaction.
 */
export class ClusterService {
  constructor(
    private readonly repository: ClusterRepository,
    private readonly embeddingsRepository: EmbeddingsRepository,
    private readonly embeddings: EmbeddingService,
    private readonly registry: ModelRegistry,
    private readonly settings: SettingsRepository,
    private readonly index: VectorIndexService,
  ) {}

  /** This library's id (made on first use), which a plan carries so its shards merge only back here. */
  libraryId(): string {
    const existing = this.settings.get<string>(libraryIdSetting);
    if (typeof existing === 'string' && existing.length === 36) return existing;
    const id = crypto.randomUUID();
    this.settings.set(libraryIdSetting, id);
    return id;
  }

  async writePlan(options: WritePlanOptions): Promise<WritePlanResult> {
    if (!Number.isInteger(options.shardSize) || options.shardSize < 1 || options.shardSize > 1_000_000) {
      throw new DermError('invalid-input', `shardSize must be a whole number from 1 to 1000000; got ${options.shardSize}.`, { field: 'shardSize' });
    }
    const model = await this.registry.get(options.modelId);
    const { manifest, onnxPath } = model;
    if (!fs.existsSync(onnxPath)) {
      throw new DermError('model-invalid', `The model file ${onnxPath} named by ${model.manifestPath} does not exist; add or export it before planning.`, {
        file: onnxPath,
      });
    }
    const sha256 = await sha256OfFile(onnxPath);
    if (sha256 !== manifest.sha256) {
      throw new DermError(
        'model-invalid',
        `The model file ${onnxPath} has sha256 ${sha256}, but its manifest ${model.manifestPath} declares ${manifest.sha256}.`,
        { file: onnxPath },
      );
    }
    const stored = this.embeddingsRepository.model(manifest.id);
    if (stored && stored.source !== 'onnx') {
      throw new DermError(
        'conflict',
        `The library holds imported embeddings under the model id "${manifest.id}"; an ONNX model with the same id would mix two models.`,
        { modelId: manifest.id },
      );
    }

    const rows = this.repository.imagesToPlan(manifest.id, sha256);
    if (rows.length === 0) {
      throw new DermError('invalid-input', `Every image in the library already has an embedding from ${manifest.id}; there is nothing to plan.`, {
        modelId: manifest.id,
      });
    }
    const files = rows.map((row) => this.embeddings.readablePath(row));
    const root = path.resolve(options.root ?? commonFolder(files));
    const images: PlanImage[] = [];
    const seen = new Map<string, number>();
    rows.forEach((row, index) => {
      const file = files[index]!;
      const relative = path.relative(root, file);
      if (relative === '' || relative.startsWith('..') || path.isAbsolute(relative)) {
        throw new DermError(
          'invalid-input',
          `Image ${row.imageId} (${file}) is not inside the root ${root}; give a --root that holds every image, or leave it out.`,
          {
            file,
            field: 'root',
          },
        );
      }
      const key = relative.split(path.sep).join('/');
      const earlier = seen.get(key);
      if (earlier !== undefined)
        throw new DermError('conflict', `Images ${earlier} and ${row.imageId} are both read from ${file}; the plan needs one file per image.`, { file });
      seen.set(key, row.imageId);
      images.push({ key, imageId: row.imageId, sha256: row.fileSha256, bytes: row.bytes });
    });

    const planFolder = path.resolve(options.out);
    if (fs.existsSync(path.join(planFolder, planFileName))) {
      throw new DermError('conflict', `${planFolder} already holds a plan (${planFileName}); write the new plan to another folder.`, {
        file: path.join(planFolder, planFileName),
      });
    }
    if (fs.existsSync(planFolder) && fs.statSync(planFolder).isDirectory() && fs.readdirSync(planFolder).length > 0) {
      throw new DermError('invalid-input', `The plan folder ${planFolder} is not empty; give a new or empty folder.`, { file: planFolder });
    }
    ensureWritableFolder(planFolder);
    const modelFolder = path.join(planFolder, 'model');
    try {
      fs.mkdirSync(modelFolder, { recursive: true });
      copyOrLink(onnxPath, path.join(modelFolder, manifest.file));
      writeFileAtomically(path.join(modelFolder, `${manifest.id}.manifest.json`), `${JSON.stringify(manifest, null, 2)}\n`);
    } catch (error) {
      // A full disk or a quota mid-copy leaves the (new or empty) plan folder as it was, so the same command can run again.
      fs.rmSync(modelFolder, { recursive: true, force: true });
      throw new DermError(
        'invalid-input',
        `Cannot copy the model ${onnxPath} into ${modelFolder}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}.`,
        {
          file: modelFolder,
        },
      );
    }

    const shards: EmbeddingPlan['shards'] = [];
    for (let start = 0; start < images.length; start += options.shardSize)
      shards.push({ index: shards.length, images: images.slice(start, start + options.shardSize) });
    const plan: EmbeddingPlan = {
      format: planFormat,
      version: planFormatVersion,
      planId: newPlanId(),
      libraryId: this.libraryId(),
      createdAt: new Date().toISOString(),
      appVersion: appVersion(),
      model: { id: manifest.id, sha256, dim: manifest.output.dim, manifest, preprocessing: preprocessingRecord(manifest) },
      root,
      shardSize: options.shardSize,
      imageCount: images.length,
      shards,
    };
    // plan.json is written last: a folder without it is not a plan, whatever else it holds.
    try {
      writeFileAtomically(path.join(planFolder, planFileName), `${JSON.stringify(plan)}\n`);
    } catch (error) {
      fs.rmSync(modelFolder, { recursive: true, force: true });
      throw new DermError(
        'invalid-input',
        `Cannot write ${path.join(planFolder, planFileName)}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}.`,
        {
          file: path.join(planFolder, planFileName),
        },
      );
    }
    return {
      planFolder,
      planId: plan.planId,
      libraryId: plan.libraryId,
      modelId: manifest.id,
      modelSha256: sha256,
      root,
      images: images.length,
      shardSize: options.shardSize,
      shards: shards.length,
    };
  }

  /**
   * Merges every finished shard in `folder` (a shard output folder, which holds a copy of plan.json,
   * or the plan folder itself). Each shard is checked completely before anything of it is stored, and
   * stored in one transaction: a refused or cancelled shard leaves nothing behind. Vectors the library
   * already holds from the same model file are not written again, so a rerun adds only new shards.
   */
  async importResults(folder: string, control: JobControl = {}): Promise<ClusterImportResult> {
    const { plan, file: planFile, folder: resolved } = readPlan(folder);
    const libraryId = this.libraryId();
    if (plan.libraryId !== libraryId) {
      throw new DermError(
        'conflict',
        `${planFile} was written for another library (id ${plan.libraryId}); this library's id is ${libraryId}. Merge it into the library it was planned from. Nothing was imported.`,
        { file: planFile },
      );
    }
    const modelId = plan.model.id;
    const stored = this.embeddingsRepository.model(modelId);
    if (stored && stored.source !== 'onnx') {
      throw new DermError(
        'conflict',
        `The library holds imported embeddings under the model id "${modelId}"; the plan's ONNX embeddings would mix two models. Nothing was imported.`,
        {
          modelId,
        },
      );
    }
    if (stored && stored.dim !== plan.model.dim) {
      throw new DermError(
        'conflict',
        `Model "${modelId}" has ${stored.dim}-d embeddings in this library; the plan's are ${plan.model.dim}-d. Nothing was imported.`,
        { modelId },
      );
    }

    const result: ClusterImportResult = {
      status: 'success',
      folder: resolved,
      planId: plan.planId,
      modelId,
      shards: plan.shards.length,
      merged: [],
      stored: 0,
      alreadyStored: 0,
      missing: [],
      refused: [],
      failures: [],
      deletedSincePlan: 0,
      index: null,
    };
    const progress = new ProgressReporter('cluster-import', plan.shards.length, control.onProgress);
    progress.report(0, undefined, true);
    for (const shard of plan.shards) {
      if (control.signal?.aborted) {
        result.status = 'cancelled';
        break;
      }
      const files = shardFiles(resolved, shard.index);
      progress.report(shard.index, files.npz);
      if (!fs.existsSync(files.manifest)) {
        result.missing.push({
          shard: shard.index,
          reason: fs.existsSync(files.npz)
            ? `${files.npz} has no ${path.basename(files.manifest)}: the shard did not finish; run it again`
            : `no ${path.basename(files.manifest)} in ${resolved}: the shard has not run (or ran into another folder)`,
        });
        continue;
      }
      try {
        const checked = await this.checkShard(plan, shard, files);
        for (const failure of checked.manifest.failures) {
          result.failures.push({
            shard: shard.index,
            key: failure.key,
            imageId: checked.byKey.get(failure.key)?.imageId ?? null,
            file: failure.file,
            reason: failure.reason,
          });
        }
        const liveIds = [...checked.vectors.keys()];
        const hashes = this.repository.imageHashes(liveIds);
        const present = hashes.size === 0 ? new Set<number>() : this.repository.alreadyEmbedded(modelId, plan.model.sha256, liveIds);
        const rows: Array<{ imageId: number; vector: Float32Array }> = [];
        let deleted = 0;
        for (const [imageId, vector] of checked.vectors) {
          const image = hashes.get(imageId);
          if (!image || image.deleted) {
            deleted++;
            continue;
          }
          if (image.fileSha256 !== checked.planSha.get(imageId)) {
            throw new DermError(
              'embeddings-invalid',
              `image ${imageId} has sha256 ${image.fileSha256.slice(0, 12)}… in the library, but the plan and the shard say ${checked.planSha.get(imageId)!.slice(0, 12)}…`,
            );
          }
          if (!present.has(imageId)) rows.push({ imageId, vector });
        }
        if (control.signal?.aborted) {
          result.status = 'cancelled';
          break;
        }
        if (rows.length > 0) {
          this.repository.transaction(() => {
            this.embeddingsRepository.registerModel({
              id: modelId,
              displayName: plan.model.manifest.displayName,
              dim: plan.model.dim,
              sha256: plan.model.sha256,
              source: 'onnx',
              preprocessing: plan.model.preprocessing,
            });
            this.embeddingsRepository.put(modelId, plan.model.sha256, rows);
          });
        }
        result.deletedSincePlan += deleted;
        result.stored += rows.length;
        result.alreadyStored += checked.vectors.size - rows.length - deleted;
        result.merged.push({
          shard: shard.index,
          stored: rows.length,
          alreadyStored: checked.vectors.size - rows.length - deleted,
          failed: checked.manifest.failures.length,
        });
      } catch (error) {
        if (!(error instanceof DermError)) throw error;
        result.refused.push({ shard: shard.index, file: error.details?.file === files.npz ? files.npz : files.manifest, reason: error.message });
      }
      // Every shard is reported: a shard is a large unit of work, and a cancel takes effect between shards.
      progress.report(shard.index + 1, files.npz, true);
    }
    if (result.stored > 0) result.index = await this.updateIndex(modelId);
    if (result.status === 'success' && (result.missing.length > 0 || result.refused.length > 0 || result.failures.length > 0)) result.status = 'partial';
    progress.report(result.merged.length + result.missing.length + result.refused.length, undefined, true);
    return result;
  }

  /** Every check of one shard against its plan; throws a DermError (naming the file) when it is refused. */
  private async checkShard(plan: EmbeddingPlan, shard: EmbeddingPlan['shards'][number], files: { npz: string; manifest: string }) {
    const manifestFile = files.manifest;
    const refuse = (reason: string, file = manifestFile): never => {
      throw new DermError('embeddings-invalid', `${file}: ${reason}`, { file });
    };
    let json: unknown;
    try {
      json = JSON.parse(fs.readFileSync(manifestFile, 'utf8'));
    } catch (error) {
      return refuse(`not a readable shard manifest (${(error as Error).message})`);
    }
    const parsed = shardManifestSchema().safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      return refuse(`not a shard manifest of this version: field ${issue.path.join('.') || '(root)'}: ${issue.message}`);
    }
    const manifest: ShardManifest = parsed.data;
    if (manifest.planId !== plan.planId)
      return refuse(`the shard belongs to another plan (${manifest.planId}, library ${manifest.libraryId}), not to ${plan.planId}`);
    if (manifest.libraryId !== plan.libraryId) return refuse(`the shard was made for library ${manifest.libraryId}, not ${plan.libraryId}`);
    if (manifest.shard !== shard.index) return refuse(`the manifest is for shard ${manifest.shard}, not ${shard.index}`);
    if (manifest.model.id !== plan.model.id || manifest.model.sha256 !== plan.model.sha256) {
      return refuse(
        `made with model ${manifest.model.id} (sha256 ${manifest.model.sha256.slice(0, 12)}…); the plan's model is ${plan.model.id} (sha256 ${plan.model.sha256.slice(0, 12)}…)`,
      );
    }
    if (manifest.model.dim !== plan.model.dim) return refuse(`${manifest.model.dim}-d embeddings; the plan's model makes ${plan.model.dim}-d`);
    if (canonicalJson(manifest.model.preprocessing) !== canonicalJson(plan.model.preprocessing)) {
      return refuse(`its preprocessing ${canonicalJson(manifest.model.preprocessing)} differs from the plan's ${canonicalJson(plan.model.preprocessing)}`);
    }
    if (!fs.existsSync(files.npz)) return refuse(`its vectors ${path.basename(files.npz)} are missing`);
    const npzSha = await sha256OfFile(files.npz);
    if (npzSha !== manifest.npzSha256) {
      return refuse(
        `the file does not match its manifest (sha256 ${npzSha.slice(0, 12)}…, the manifest says ${manifest.npzSha256.slice(0, 12)}…): it is damaged or was replaced`,
        files.npz,
      );
    }
    const byKey = new Map(shard.images.map((image) => [image.key, image]));
    const embeddedSha = new Map<string, string>();
    for (const entry of manifest.embedded) {
      const planned = byKey.get(entry.key);
      if (!planned) return refuse(`key "${entry.key}" is not in shard ${shard.index} of the plan`);
      if (entry.sha256 !== planned.sha256) {
        return refuse(
          `the file for key "${entry.key}" had sha256 ${entry.sha256.slice(0, 12)}… on the worker; the plan and the library have ${planned.sha256.slice(0, 12)}…`,
        );
      }
      embeddedSha.set(entry.key, entry.sha256);
    }
    for (const failure of manifest.failures)
      if (!byKey.has(failure.key)) return refuse(`failure for key "${failure.key}", which is not in shard ${shard.index} of the plan`);
    const vectors = new Map<number, Float32Array>();
    const planSha = new Map<number, string>();
    // A shard where every image failed has an npz with no arrays (checked above by its sha256); there is nothing to read.
    if (embeddedSha.size === 0) return { manifest, vectors, planSha, byKey };
    try {
      for await (const entry of readNpzEntries(files.npz)) {
        const where = `key "${entry.key}"`;
        if (!embeddedSha.has(entry.key)) refuse(`${where} is not listed as embedded in ${path.basename(manifestFile)}`, files.npz);
        if (!(entry.data instanceof Float32Array)) refuse(`${where} is ${entry.dtype}; shard vectors are float32`, files.npz);
        const values = entry.shape.length === 1 ? entry.shape[0] : entry.shape.length === 2 && entry.shape[0] === 1 ? entry.shape[1] : -1;
        if (values !== plan.model.dim) refuse(`${where} has shape (${entry.shape.join(', ')}); expected (${plan.model.dim},)`, files.npz);
        for (let index = 0; index < entry.data.length; index++) {
          if (!Number.isFinite(entry.data[index]!)) refuse(`${where}: value ${index} is ${entry.data[index]}`, files.npz);
        }
        const image = byKey.get(entry.key)!;
        if (vectors.has(image.imageId)) refuse(`${where} appears twice`, files.npz);
        vectors.set(image.imageId, entry.data as Float32Array);
        planSha.set(image.imageId, image.sha256);
      }
    } catch (error) {
      if (error instanceof DermError && error.details?.file === files.npz && error.message.startsWith(files.npz)) throw error;
      return refuse(`cannot be read: ${(error as Error).message}`, files.npz);
    }
    if (vectors.size !== embeddedSha.size) {
      return refuse(`holds ${vectors.size} vectors; its manifest lists ${embeddedSha.size} embedded images`, files.npz);
    }
    return { manifest, vectors, planSha, byKey };
  }

  /**
   * Folds the new vectors into the model's HNSW index when it has one, through the index's change log
   * (added in place; rebuilt only when the index itself decides it must be, e.g. a projection refit).
   * A model without an index builds it on its first search.
   */
  private async updateIndex(modelId: string): Promise<ClusterImportResult['index']> {
    const before = await this.index.status(modelId);
    if (before.state === 'missing') return null;
    const { rebuilt } = await this.index.ensureReady(modelId);
    return { folded: before.pendingChanges, rebuilt: rebuilt !== null, indexed: this.index.size(modelId) };
  }
}

/** The deepest folder that contains every file. */
function commonFolder(files: string[]): string {
  let common = path.dirname(path.resolve(files[0]!)).split(path.sep);
  for (const file of files.slice(1)) {
    const parts = path.dirname(path.resolve(file)).split(path.sep);
    let length = 0;
    while (length < common.length && length < parts.length && common[length] === parts[length]) length++;
    common = common.slice(0, length);
  }
  return common.join(path.sep) || path.sep;
}

/** A hard link when the plan is on the same file system (a 1.5 GB model is not copied twice), else a copy. */
function copyOrLink(source: string, target: string): void {
  try {
    fs.linkSync(source, target);
  } catch {
    fs.copyFileSync(source, target);
  }
}

/** JSON with sorted object keys, so two records compare by content and not by key order. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${canonicalJson((value as Record<string, unknown>)[key])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}
