import fs from 'node:fs';
import path from 'node:path';
import { DermError } from '../../common/errors.js';
import { modelManifestSchema, type ModelManifest } from './model-manifest.js';

/** Where a model's two files are: its manifest and the ONNX graph the manifest's `file` names. */
export interface ManifestLocation {
  manifestPath: string;
  onnxPath: string;
  manifest: ModelManifest;
}

/**
 * Reads and validates a manifest. Every problem is reported with the file and the field, e.g.
 * `manifest /x/m.json: field input.layout: Invalid option: expected one of "NHWC"|"NCHW" (got "CHW")`.
 */
export function readManifestFile(file: string): ManifestLocation {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    throw new DermError('not-found', `Cannot read the model manifest ${file}: ${(error as Error).message}`, { file });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new DermError('model-invalid', `manifest ${file} is not valid JSON: ${(error as Error).message}`, { file });
  }
  const parsed = modelManifestSchema().safeParse(json);
  if (!parsed.success) {
    const problems = parsed.error.issues.slice(0, 5).map((issue) => {
      const field = issue.path.join('.') || '(root)';
      const got = valueAt(json, issue.path);
      return `field ${field}: ${issue.message}${got === undefined ? '' : ` (got ${JSON.stringify(got)})`}`;
    });
    const more = parsed.error.issues.length > 5 ? `; and ${parsed.error.issues.length - 5} more` : '';
    throw new DermError('model-invalid', `manifest ${file}: ${problems.join('; ')}${more}.`, {
      file,
      fields: parsed.error.issues.map((issue) => issue.path.join('.')),
    });
  }
  const manifest = parsed.data;
  if (path.isAbsolute(manifest.file) || manifest.file.split(/[\\/]/).includes('..')) {
    throw new DermError('model-invalid', `manifest ${file}: field file: must be a file name next to the manifest, not "${manifest.file}".`, {
      file,
      field: 'file',
    });
  }
  return { manifestPath: path.resolve(file), onnxPath: path.resolve(path.dirname(file), manifest.file), manifest };
}

function valueAt(value: unknown, keys: PropertyKey[]): unknown {
  let current = value;
  for (const key of keys) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<PropertyKey, unknown>)[key];
  }
  return typeof current === 'object' ? undefined : current;
}

/** The preprocessing record stored with a model's embeddings, so the library says how they were made. */
export function preprocessingRecord(manifest: ModelManifest): Record<string, unknown> {
  return { ...manifest.input, outputName: manifest.output.name };
}
