import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { DermError } from '../../common/errors.js';
import { modelManifestSchema, type ModelManifest } from './model-manifest.js';

/** Where a model's two files are: the ONNX graph and its manifest (whose `file` is relative to its folder). */
export interface ModelFiles {
  manifestPath: string;
  onnxPath: string;
  manifest: ModelManifest;
}

/** The manifest file name used for models written by native-models: `<id>.manifest.json`. */
export function manifestFileName(id: string): string {
  return `${id}.manifest.json`;
}

/** Writes a data file atomically: a temporary file in the same folder, then rename. */
export function writeFileAtomically(file: string, data: string | Uint8Array): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const temporary = `${file}.${randomUUID()}.partial`;
  try {
    fs.writeFileSync(temporary, data);
    fs.renameSync(temporary, file);
  } catch (error) {
    fs.rmSync(temporary, { force: true });
    throw error;
  }
}

/**
 * Validates a manifest against the model contract and writes it (stable key order, two-space
 * indent, trailing newline) atomically. An invalid manifest is never written.
 */
export function writeManifestFile(file: string, manifest: ModelManifest): ModelManifest {
  const parsed = modelManifestSchema().safeParse(manifest);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new DermError('model-invalid', `manifest ${file}: field ${issue.path.join('.') || '(root)'}: ${issue.message}.`);
  }
  writeFileAtomically(file, `${JSON.stringify(parsed.data, null, 2)}\n`);
  return parsed.data;
}
