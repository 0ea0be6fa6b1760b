import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { z } from 'zod';
import { DermError } from '../../common/errors.js';
import { appVersion } from '../library/installation.js';
import { runEmbeddingPipeline, type PipelineImage } from '../embeddings/embedding-pipeline.js';
import { writeNpz } from '../embeddings/npz.js';
import { ProgressReporter, type JobControl } from '../jobs/job.js';
import { schemaBuiltAtFirstUse } from '../runtime/lazy-packages.js';
import { EncoderRuntime, type EncoderRuntimeOptions } from '../models/encoder-runtime.js';
import { sha256OfFile } from '../runtime/file-hash.js';
import { planFileName, planModelFile, planShard, readPlan, shardFiles, writeFileAtomically, type PlanImage } from './cluster-plan.js';

export const shardManifestFormat = 'dermws-embedding-shard';

/** The sidecar of `shard-K.npz`: what made it, from which plan, and what could not be embedded. */
export const shardManifestSchema = schemaBuiltAtFirstUse((z) => {
  const sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex characters');

  return z.strictObject({
    format: z.literal(shardManifestFormat),
    version: z.literal(1),
    planId: z.string(),
    libraryId: z.string(),
    shard: z.int().nonnegative(),
    model: z.strictObject({ id: z.string(), sha256, dim: z.int().positive(), preprocessing: z.record(z.string(), z.unknown()) }),
    provider: z.string(),
    fallbackReason: z.string().nullable(),
    batchSize: z.int().positive(),
    appVersion: z.string(),
    host: z.string(),
    startedAt: z.string(),
    finishedAt: z.string(),
    /** sha256 of shard-K.npz, so the merge can tell a damaged or swapped file. */
    npzSha256: sha256,
    counts: z.strictObject({ images: z.int().nonnegative(), embedded: z.int().nonnegative(), failed: z.int().nonnegative() }),
    /** Every embedded image with the sha256 of the bytes the worker actually decoded. */
    embedded: z.array(z.strictObject({ key: z.string(), sha256 })),
    failures: z.array(z.strictObject({ key: z.string(), file: z.string(), reason: z.string() })),
  });
});

export type ShardManifest = z.infer<ReturnType<typeof shardManifestSchema>>;

export interface RunShardOptions extends JobControl {
  planFolder: string;
  shard: number;
  outFolder: string;
  /** Where the plan's root is mounted on this machine; default: the plan's root. */
  root?: string;
  /** The ONNX file to load instead of the plan's model/ copy (it must have the plan's sha256). */
  modelFile?: string;
  batchSize?: number;
  runtimeOptions?: EncoderRuntimeOptions;
}

export interface RunShardResult {
  status: 'success' | 'partial' | 'skipped' | 'cancelled';
  shard: number;
  planId: string;
  npz: string;
  manifest: string;
  images: number;
  embedded: number;
  failed: ShardManifest['failures'];
  provider: string | null;
  fallbackReason: string | null;
  batchSize: number | null;
}

/**
 * Embeds one shard of a plan on this machine (a cluster node) with the project's own pipeline, and
 * writes `shard-K.npz` (float32 vectors keyed by image key) and then `shard-K.json`; both go through
 * a temporary file and a rename, and the manifest is written last, so a shard either is complete or
 * is not there. A shard whose manifest already matches the plan and its npz is skipped. Each file's
 * bytes are hashed before they are decoded: a file that differs from the plan is a per-image failure.
 */
export async function runShard(options: RunShardOptions): Promise<RunShardResult> {
  const { plan, file: planFile, folder: planFolder } = readPlan(options.planFolder);
  const shard = planShard(plan, planFile, options.shard);
  const outFolder = path.resolve(options.outFolder);
  ensureWritableFolder(outFolder);
  copyPlanInto(outFolder, planFile, plan.planId);
  const files = shardFiles(outFolder, options.shard);
  const base = { shard: options.shard, planId: plan.planId, npz: files.npz, manifest: files.manifest, images: shard.images.length };

  const finished = await finishedShard(files, plan.planId, options.shard);
  if (finished) {
    return {
      ...base,
      status: 'skipped',
      embedded: finished.counts.embedded,
      failed: finished.failures,
      provider: finished.provider,
      fallbackReason: finished.fallbackReason,
      batchSize: finished.batchSize,
    };
  }

  const onnxPath = planModelFile(plan, planFolder, options.modelFile);
  if (!fs.existsSync(onnxPath)) {
    throw new DermError(
      'model-invalid',
      `The model file ${onnxPath} does not exist on this machine. Copy the plan folder with its model/ folder, or give the ONNX file with --model-file (its sha256 must be ${plan.model.sha256}).`,
      { file: onnxPath },
    );
  }
  const root = path.resolve(options.root ?? plan.root);
  if (!fs.existsSync(root)) {
    throw new DermError(
      'not-found',
      `The image root ${root} does not exist on this machine; give the folder where the plan's root (${plan.root}) is mounted with --root.`,
      { file: root },
    );
  }
  const startedAt = new Date().toISOString();
  const runtime = await EncoderRuntime.start(
    { manifestPath: path.join(planFolder, 'model', `${plan.model.id}.manifest.json`), onnxPath, manifest: plan.model.manifest },
    options.runtimeOptions ?? {},
  );
  try {
    if (options.batchSize !== undefined && (!Number.isInteger(options.batchSize) || options.batchSize < 1 || options.batchSize > 1024)) {
      throw new DermError('invalid-input', `batchSize must be a whole number from 1 to 1024; got ${options.batchSize}.`, { field: 'batchSize' });
    }
    const batchSize = options.batchSize ?? runtime.batchSize;
    const dim = plan.model.dim;
    const batches: PlanImage[][] = [];
    for (let start = 0; start < shard.images.length; start += batchSize) batches.push(shard.images.slice(start, start + batchSize));
    const vectors = new Map<string, Float32Array>();
    const hashes = new Map<string, string>();
    const failures: ShardManifest['failures'] = [];
    const progress = new ProgressReporter('embed-shard', shard.images.length, options.onProgress);
    progress.report(0, undefined, true);
    let done = 0;
    const open = (image: PlanImage, file: string): PipelineImage<string> => ({
      key: image.key,
      file,
      open: async () => {
        let bytes: Buffer;
        try {
          bytes = await fs.promises.readFile(file);
        } catch (error) {
          throw new Error(`${file}: cannot be read on this machine (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`, { cause: error });
        }
        const digest = crypto.createHash('sha256').update(bytes).digest('hex');
        if (digest !== image.sha256) {
          throw new Error(
            `${file}: the file changed since the plan was written (sha256 ${digest.slice(0, 12)}…, the plan has ${image.sha256.slice(0, 12)}…); it was not embedded`,
          );
        }
        hashes.set(image.key, digest);
        return { bytes };
      },
    });
    const { cancelled } = await runEmbeddingPipeline(
      runtime,
      batches,
      (images) => images.map((image) => open(image, path.join(root, ...image.key.split('/')))),
      (batch) => {
        batch.keys.forEach((key, slot) => vectors.set(key, batch.vectors.slice(slot * dim, (slot + 1) * dim)));
        failures.push(...batch.failed.map((failure) => ({ key: failure.key, file: failure.file, reason: failure.reason })));
        done += batch.keys.length + batch.failed.length;
        progress.report(done, batch.lastFile);
      },
      options.signal,
    );
    const run = { provider: runtime.provider, fallbackReason: runtime.fallbackReason ?? null, batchSize };
    if (cancelled) return { ...base, status: 'cancelled', embedded: 0, failed: [], ...run };

    // Keys are written in plan order, so the same shard always gives the same npz bytes.
    const embeddedKeys = shard.images.map((image) => image.key).filter((key) => vectors.has(key));
    writeNpz(
      files.npz,
      embeddedKeys.map((key) => [key, vectors.get(key)!, [dim]] as [string, Float32Array, number[]]),
    );
    const manifest: ShardManifest = {
      format: shardManifestFormat,
      version: 1,
      planId: plan.planId,
      libraryId: plan.libraryId,
      shard: options.shard,
      model: { id: plan.model.id, sha256: runtime.sha256, dim, preprocessing: plan.model.preprocessing },
      ...run,
      appVersion: appVersion(),
      host: os.hostname(),
      startedAt,
      finishedAt: new Date().toISOString(),
      npzSha256: await sha256OfFile(files.npz),
      counts: { images: shard.images.length, embedded: embeddedKeys.length, failed: failures.length },
      embedded: embeddedKeys.map((key) => ({ key, sha256: hashes.get(key)! })),
      failures,
    };
    writeFileAtomically(files.manifest, `${JSON.stringify(manifest, null, 2)}\n`);
    progress.report(done, undefined, true);
    return { ...base, status: failures.length > 0 ? 'partial' : 'success', embedded: embeddedKeys.length, failed: failures, ...run };
  } finally {
    await runtime.close();
  }
}

/** The manifest of a shard already finished for this plan whose npz is intact, or undefined. */
async function finishedShard(files: { npz: string; manifest: string }, planId: string, shard: number): Promise<ShardManifest | undefined> {
  if (!fs.existsSync(files.manifest) || !fs.existsSync(files.npz)) return undefined;
  try {
    const manifest = shardManifestSchema().parse(JSON.parse(fs.readFileSync(files.manifest, 'utf8')));
    if (manifest.planId !== planId) {
      throw new DermError(
        'conflict',
        `${files.manifest} belongs to another plan (${manifest.planId}, not ${planId}); write this plan's shards to another folder with --out.`,
        { file: files.manifest },
      );
    }
    if (manifest.shard !== shard) return undefined;
    return (await sha256OfFile(files.npz)) === manifest.npzSha256 ? manifest : undefined;
  } catch (error) {
    if (error instanceof DermError) throw error;
    // An unreadable manifest is an unfinished shard: it is run again and replaced.
    return undefined;
  }
}

/**
 * Puts a copy of plan.json in the output folder, so that folder alone is what the merge reads
 * (`dermws embeddings import OUT_DIR`). A folder that already holds another plan's shards is refused.
 */
function copyPlanInto(outFolder: string, planFile: string, planId: string): void {
  const target = path.join(outFolder, planFileName);
  if (path.resolve(target) === path.resolve(planFile)) return;
  if (fs.existsSync(target)) {
    let existing: string | undefined;
    try {
      existing = (JSON.parse(fs.readFileSync(target, 'utf8')) as { planId?: string }).planId;
    } catch {
      existing = undefined;
    }
    if (existing === planId) return;
    throw new DermError(
      'conflict',
      `The output folder ${outFolder} holds ${existing ? `the shards of another plan (${existing})` : `a ${planFileName} that is not this plan's`}; write this plan's shards (${planId}) to another folder.`,
      { file: target },
    );
  }
  writeFileAtomically(target, fs.readFileSync(planFile, 'utf8'));
}

/** Creates the folder when needed and proves it can be written to, before any work is done. */
export function ensureWritableFolder(folder: string): void {
  try {
    fs.mkdirSync(folder, { recursive: true });
  } catch (error) {
    throw new DermError(
      'invalid-input',
      `The output folder ${folder} cannot be created: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}.`,
      { file: folder },
    );
  }
  if (!fs.statSync(folder).isDirectory()) throw new DermError('invalid-input', `The output folder ${folder} is a file, not a folder.`, { file: folder });
  const probe = path.join(folder, `.write-check-${process.pid}`);
  try {
    fs.writeFileSync(probe, '');
    fs.rmSync(probe, { force: true });
  } catch (error) {
    throw new DermError('invalid-input', `The output folder ${folder} is not writable: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}.`, {
      file: folder,
    });
  }
}
