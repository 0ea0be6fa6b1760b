import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { z } from 'zod';
import { DermError } from '../../common/errors.js';
import { schemaBuiltAtFirstUse } from '../runtime/lazy-packages.js';
import { modelManifestSchema } from '../models/model-manifest.js';

/**
 * A cluster embedding plan (`dermws embed plan`): everything a worker without the library needs to
 * embed a slice of it exactly as the desktop would, and everything the merge needs to check what
 * comes back. Written as `plan.json` in the plan folder, next to `model/` (a copy of the manifest
 * and the ONNX file, so the cluster sees the same bytes).
 */
export const planFileName = 'plan.json';
export const planFormat = 'dermws-embedding-plan';
export const planFormatVersion = 1;

const planSchemas = schemaBuiltAtFirstUse((z) => {
  const sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex characters');

  const image = z.strictObject({
    /** The key of the image's vector in the shard's npz: its path relative to the plan root, with '/'. */
    key: z.string().min(1),
    imageId: z.int().positive(),
    /** sha256 of the file's bytes as the library recorded it at import. */
    sha256,
    bytes: z.int().nonnegative(),
  });

  const plan = z.strictObject({
    format: z.literal(planFormat),
    version: z.literal(planFormatVersion),
    planId: z.string().regex(/^[0-9a-f-]{36}$/, 'must be a UUID'),
    libraryId: z.string().regex(/^[0-9a-f-]{36}$/, 'must be a UUID'),
    createdAt: z.string(),
    appVersion: z.string(),
    model: z.strictObject({
      id: z.string(),
      sha256,
      dim: z.int().positive(),
      /** The manifest as the desktop reads it; its `file` names the ONNX file in the plan's model/ folder. */
      manifest: modelManifestSchema(),
      /** The preprocessing record the library stores with the model's embeddings. */
      preprocessing: z.record(z.string(), z.unknown()),
    }),
    /** The folder every key is relative to, as the desktop saw it; a worker may mount it elsewhere (--root). */
    root: z.string().min(1),
    shardSize: z.int().positive(),
    imageCount: z.int().nonnegative(),
    shards: z.array(z.strictObject({ index: z.int().nonnegative(), images: z.array(image) })),
  });
  return { image, plan };
});
export const planImageSchema = () => planSchemas().image;
export const planSchema = () => planSchemas().plan;

export type EmbeddingPlan = z.infer<ReturnType<typeof planSchema>>;
export type PlanImage = z.infer<ReturnType<typeof planImageSchema>>;

/** Reads and checks a plan folder; every problem names the file and, for a bad field, the field. */
export function readPlan(planFolder: string): { plan: EmbeddingPlan; file: string; folder: string } {
  const folder = path.resolve(planFolder);
  if (!fs.existsSync(folder)) throw new DermError('not-found', `The plan folder ${folder} does not exist.`, { file: folder });
  if (!fs.statSync(folder).isDirectory()) throw new DermError('invalid-input', `${folder} is not a plan folder: it is a file, not a folder.`, { file: folder });
  const file = path.join(folder, planFileName);
  if (!fs.existsSync(file)) {
    throw new DermError('invalid-input', `${folder} is not an embedding plan: it has no ${planFileName} (write one with \`dermws embed plan\`).`, { file });
  }
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (error) {
    throw new DermError('invalid-input', `${file} is not an embedding plan: it is not valid JSON (${(error as Error).message}).`, { file });
  }
  if ((json as { format?: unknown } | null)?.format !== planFormat) {
    throw new DermError(
      'invalid-input',
      `${file} is not an embedding plan: field format is ${JSON.stringify((json as { format?: unknown } | null)?.format)}, expected "${planFormat}".`,
      { file },
    );
  }
  const parsed = planSchema().safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new DermError('invalid-input', `${file}: field ${issue.path.join('.') || '(root)'}: ${issue.message}.`, { file, field: issue.path.join('.') });
  }
  const plan = parsed.data;
  plan.shards.forEach((shard, index) => {
    if (shard.index !== index)
      throw new DermError('invalid-input', `${file}: field shards.${index}.index is ${shard.index}; shards must be numbered 0, 1, 2 … in order.`, { file });
  });
  return { plan, file, folder };
}

/** The shard a `--shard K` names, with an error that gives the valid range. */
export function planShard(plan: EmbeddingPlan, planFile: string, shard: number): EmbeddingPlan['shards'][number] {
  if (!Number.isInteger(shard) || shard < 0 || shard >= plan.shards.length) {
    throw new DermError(
      'invalid-input',
      `Shard ${shard} is out of range: the plan ${planFile} has ${plan.shards.length} shard(s), numbered 0 to ${plan.shards.length - 1}.`,
      { file: planFile, field: 'shard' },
    );
  }
  return plan.shards[shard]!;
}

/** The ONNX file a worker loads: `--model-file` when given, else the copy in the plan's model/ folder. */
export function planModelFile(plan: EmbeddingPlan, planFolder: string, override?: string): string {
  return override ? path.resolve(override) : path.join(planFolder, 'model', plan.model.manifest.file);
}

export function newPlanId(): string {
  return crypto.randomUUID();
}

/** Writes text through a temporary file and a rename, so a reader never sees half of it. */
export function writeFileAtomically(file: string, text: string): void {
  const temporary = `${file}.${process.pid}.partial`;
  try {
    fs.writeFileSync(temporary, text);
    fs.renameSync(temporary, file);
  } catch (error) {
    fs.rmSync(temporary, { force: true });
    throw error;
  }
}

/** Shard file names: `shard-K.npz` (vectors) and `shard-K.json` (its manifest, written last). */
export function shardFiles(folder: string, shard: number): { npz: string; manifest: string } {
  return { npz: path.join(folder, `shard-${shard}.npz`), manifest: path.join(folder, `shard-${shard}.json`) };
}
