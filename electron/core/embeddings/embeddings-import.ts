import fs from 'node:fs';
import path from 'node:path';
import { DermError } from '../../common/errors.js';
import { decodeCsvBytes, parseCsv } from '../csv/csv.js';
import { sha256OfFile } from '../runtime/file-hash.js';
import type { EmbeddingsRepository } from './embeddings.repository.js';
import { readNpyRows, type FloatArray } from './npy-format.js';
import { readNpzEntries } from './npz.js';

export interface ImportEmbeddingsOptions {
  /** `.npz` keyed by image path, or `.npy` matrix (images × dim) with `pathsCsv`. */
  file: string;
  /** CSV of image paths, one per matrix row (a header row naming a `path` or `image_path` column is allowed). */
  pathsCsv?: string;
  modelId: string;
  displayName?: string;
}

export interface ImportEmbeddingsResult {
  modelId: string;
  file: string;
  sha256: string;
  dim: number;
  /** Arrays (npz keys or matrix rows) read. */
  entries: number;
  stored: number;
  matchedByRelativePath: number;
  matchedByFileName: number;
  /** Keys that match no library image (or only a deleted one). */
  unmatched: string[];
  /** Keys whose file name matches more than one image, so none was chosen. */
  ambiguous: Array<{ key: string; imageIds: number[] }>;
  /** Keys that matched an image another key had already matched; the first one is kept. */
  duplicates: Array<{ key: string; imageId: number; keptKey: string }>;
}

const modelIdPattern = /^[a-z0-9][a-z0-9._-]{1,63}$/;

function normaliseKey(key: string): string {
  return key.replace(/\\/g, '/').replace(/^\.\//, '');
}

/**
 * Validates every array first, holding the matched vectors as Float32, and only then registers the
 * model and writes them all in one transaction: a file with one bad key (wrong dtype, shape or
 * dimension, a CRC mismatch, a truncated archive) stores nothing, not even the model row, and the
 * error names the file and the key.
 */
export async function importEmbeddingsFile(repository: EmbeddingsRepository, options: ImportEmbeddingsOptions): Promise<ImportEmbeddingsResult> {
  const file = path.resolve(options.file);
  if (!modelIdPattern.test(options.modelId)) {
    throw new DermError(
      'invalid-input',
      `The model id "${options.modelId}" must be 2–64 characters of a–z, 0–9, ".", "_" or "-", starting with a letter or digit.`,
      {
        field: 'modelId',
      },
    );
  }
  if (!fs.existsSync(file)) throw new DermError('not-found', `The embeddings file ${file} does not exist.`, { file });
  const extension = path.extname(file).toLowerCase();
  if (extension !== '.npz' && extension !== '.npy') {
    throw new DermError(
      'invalid-input',
      `${file}: expected an .npz file (arrays keyed by image path) or an .npy matrix with --paths; got "${extension || 'no extension'}".`,
      { file },
    );
  }
  if (extension === '.npy' && !options.pathsCsv) {
    throw new DermError('invalid-input', `${file} is an .npy matrix: give the CSV of image paths, one per row, with --paths.`, { file });
  }
  const sha256 = await sha256OfFile(file);
  const existing = repository.model(options.modelId);
  if (existing && existing.source !== 'imported') {
    throw new DermError(
      'conflict',
      `The model id "${options.modelId}" belongs to an ONNX encoder in this library; import under another id so the two are never mixed.`,
      {
        modelId: options.modelId,
      },
    );
  }
  if (existing && existing.sha256 !== sha256) {
    throw new DermError(
      'conflict',
      `The model id "${options.modelId}" already holds embeddings imported from another file (sha256 ${existing.sha256.slice(0, 12)}…); import ${file} under a new id.`,
      { modelId: options.modelId },
    );
  }

  const images = repository.imagePaths();
  const byRelativePath = new Map<string, number>();
  const byFileName = new Map<string, number[]>();
  for (const image of images) {
    if (image.relativePath) byRelativePath.set(normaliseKey(image.relativePath), image.imageId);
    const name = path.basename(normaliseKey(image.relativePath ?? image.originalPath));
    byFileName.set(name, [...(byFileName.get(name) ?? []), image.imageId]);
  }

  const result: ImportEmbeddingsResult = {
    modelId: options.modelId,
    file,
    sha256,
    dim: existing?.dim ?? 0,
    entries: 0,
    stored: 0,
    matchedByRelativePath: 0,
    matchedByFileName: 0,
    unmatched: [],
    ambiguous: [],
    duplicates: [],
  };
  const vectors = new Map<number, { key: string; vector: Float32Array }>();
  const wrongDimension: string[] = [];

  const accept = (key: string, values: FloatArray, shape: readonly number[], where: string) => {
    result.entries++;
    const perImage = shape.length === 1 ? shape[0]! : shape.length === 2 && shape[0] === 1 ? shape[1]! : -1;
    if (perImage <= 0) {
      throw new DermError('embeddings-invalid', `${where}: shape (${shape.join(', ')}) is not one embedding; expected (dim,) or (1, dim).`, { file, key });
    }
    if (result.dim === 0) result.dim = perImage;
    if (perImage !== result.dim) {
      wrongDimension.push(`${where} has ${perImage} values`);
      return;
    }
    for (let index = 0; index < values.length; index++) {
      if (!Number.isFinite(values[index]!)) {
        throw new DermError('embeddings-invalid', `${where}: value ${index} is ${values[index]}; embeddings must be finite numbers.`, { file, key });
      }
    }
    const normalised = normaliseKey(key);
    let imageId = byRelativePath.get(normalised);
    if (imageId !== undefined) result.matchedByRelativePath++;
    else {
      const candidates = byFileName.get(path.basename(normalised)) ?? [];
      if (candidates.length === 1) {
        imageId = candidates[0]!;
        result.matchedByFileName++;
      } else if (candidates.length > 1) {
        result.ambiguous.push({ key, imageIds: candidates });
        return;
      } else {
        result.unmatched.push(key);
        return;
      }
    }
    const earlier = vectors.get(imageId);
    if (earlier) {
      result.duplicates.push({ key, imageId, keptKey: earlier.key });
      return;
    }
    vectors.set(imageId, { key, vector: values instanceof Float32Array ? values : Float32Array.from(values) });
  };

  if (extension === '.npz') {
    for await (const entry of readNpzEntries(file)) accept(entry.key, entry.data, entry.shape, `${file}, key "${entry.key}"`);
  } else {
    const paths = readPathsCsv(options.pathsCsv!);
    let rows = -1;
    for (const { index, row, header } of readNpyRows(file)) {
      rows = header.shape[0]!;
      if (rows !== paths.length) {
        throw new DermError('embeddings-invalid', `${file} has ${rows} rows but ${options.pathsCsv} lists ${paths.length} paths; they must match one to one.`, {
          file,
        });
      }
      accept(paths[index]!, row, [row.length], `${file}, row ${index + 1} ("${paths[index]}")`);
    }
    if (rows === -1 && paths.length > 0) {
      throw new DermError('embeddings-invalid', `${file} has no rows but ${options.pathsCsv} lists ${paths.length} paths.`, { file });
    }
  }

  if (wrongDimension.length > 0) {
    throw new DermError(
      'embeddings-invalid',
      `${file}: ${wrongDimension.length} embedding(s) do not have ${result.dim} values (${wrongDimension.slice(0, 5).join('; ')}${wrongDimension.length > 5 ? '; …' : ''}). Nothing was imported.`,
      { file, wrongDimension: wrongDimension.length },
    );
  }
  if (result.entries === 0) throw new DermError('embeddings-invalid', `${file} holds no embeddings.`, { file });

  repository.registerAndPut(
    {
      id: options.modelId,
      displayName: options.displayName ?? existing?.displayName ?? options.modelId,
      dim: result.dim,
      sha256,
      source: 'imported',
      preprocessing: { importedFrom: path.basename(file), pathsCsv: options.pathsCsv ? path.basename(options.pathsCsv) : null },
    },
    [...vectors.entries()].map(([imageId, { vector }]) => ({ imageId, vector })),
  );
  result.stored = vectors.size;
  return result;
}

/** Paths in row order: the `path`/`image_path` column when the first row names one, else the first column. */
function readPathsCsv(file: string): string[] {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (error) {
    throw new DermError('not-found', `Cannot read the paths CSV ${file}: ${(error as Error).message}`, { file });
  }
  const text = decodeCsvBytes(bytes, file);
  const records = parseCsv(text, { file }).filter((record) => record.fields.some((field) => field.trim() !== ''));
  if (records.length === 0) return [];
  const header = records[0]!.fields.map((field) => field.trim().toLowerCase());
  const column = header.findIndex((name) => name === 'path' || name === 'image_path');
  const rows = column >= 0 ? records.slice(1) : records;
  const index = Math.max(0, column);
  return rows.map((record) => {
    const value = record.fields[index]?.trim();
    if (!value) throw new DermError('invalid-input', `${file} line ${record.line}: the path is empty.`, { file, line: record.line });
    return value;
  });
}
