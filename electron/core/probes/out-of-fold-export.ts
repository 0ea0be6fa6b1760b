import fs from 'node:fs';
import path from 'node:path';
import { DermError } from '../../common/errors.js';
import { formatCsv } from '../csv/csv.js';
import { writeNpz } from '../embeddings/npz.js';
import { appVersion } from '../library/installation.js';
import type { ExportedOutOfFoldImage, ProbeRunRecord } from './probes.repository.js';

/**
 * The out-of-fold predictions of a probe run as files an auditor can recompute every reported number
 * from: a table (CSV, or NumPy arrays in an npz) with one row per population image — identifiers, the
 * grouping key the folds were drawn by, the fold, and per label the truth and the out-of-fold
 * probability — and a manifest naming the run and everything that fixed its numbers.
 */

export type PredictionExportFormat = 'csv' | 'npz';

export interface PredictionExportManifest {
  kind: 'derm-workstation probe out-of-fold predictions';
  formatVersion: 1;
  exportedAt: string;
  /** The app that wrote this export; `run.appVersion` is the one that trained the run. */
  appVersion: string;
  run: {
    id: number;
    createdAt: string;
    appVersion: string;
    modelId: string;
    modelSha256: string;
    labelKind: string;
    labels: string[];
    seed: number;
    folds: number;
    repeats: number;
    tolerance: number | null;
    l2: number;
    classWeights: boolean;
    bootstrapReplicates: number;
    minClassCases: number | null;
  };
  /** What the run reported per label, to compare a recomputation with. */
  reported: Array<{ label: string; auc: number | null; ci95: [number, number] | null; tooSmall: string | null }>;
  images: number;
  groups: number;
  columns: Record<string, string>;
  /** npz only: the grouping key of each value of the `group` array. */
  groupKeys?: string[];
  file: string;
}

export function predictionExportFormat(file: string): PredictionExportFormat {
  const extension = path.extname(file).toLowerCase();
  if (extension === '.csv') return 'csv';
  if (extension === '.npz') return 'npz';
  throw new DermError('invalid-input', `The predictions file "${file}" must end in .csv or .npz; got "${extension || 'no extension'}".`, {
    field: 'predictions',
    value: file,
  });
}

/**
 * Resolves `fileName` inside `folder` and checks it is safe to create: it may not lead outside the
 * folder (by "..", an absolute path or a symbolic link), its folder must exist, and neither it nor
 * its manifest may exist yet. Returns the data and manifest paths.
 */
export function checkExportTarget(folder: string, fileName: string): { file: string; manifestFile: string } {
  if (typeof fileName !== 'string' || fileName.trim() === '')
    throw new DermError('invalid-input', 'The predictions file name is empty.', { field: 'predictions' });
  const root = path.resolve(folder);
  const file = path.resolve(root, fileName);
  const inside = (base: string, target: string) => {
    const relative = path.relative(base, target);
    return relative !== '' && !relative.startsWith('..') && !path.isAbsolute(relative);
  };
  if (!inside(root, file)) {
    throw new DermError('invalid-input', `The predictions file "${fileName}" escapes the folder ${root}; give a file name inside it.`, {
      field: 'predictions',
      value: fileName,
    });
  }
  const parent = path.dirname(file);
  if (!fs.existsSync(parent) || !fs.statSync(parent).isDirectory()) {
    throw new DermError('invalid-input', `The folder ${parent} for the predictions file does not exist; create it first.`, {
      field: 'predictions',
      value: fileName,
    });
  }
  const realRoot = fs.realpathSync(root);
  const realParent = fs.realpathSync(parent);
  if (realParent !== realRoot && !inside(realRoot, realParent)) {
    throw new DermError(
      'invalid-input',
      `The predictions file "${fileName}" escapes the folder ${root} through a symbolic link (${parent} is ${realParent}).`,
      {
        field: 'predictions',
        value: fileName,
      },
    );
  }
  const manifestFile = `${file}.manifest.json`;
  for (const target of [file, manifestFile]) {
    if (fs.existsSync(target) || isLink(target)) {
      throw new DermError('conflict', `${target} already exists; nothing was written. Choose another file name or remove it first.`, {
        field: 'predictions',
        value: target,
      });
    }
  }
  return { file, manifestFile };
}

function isLink(target: string): boolean {
  try {
    fs.lstatSync(target);
    return true;
  } catch {
    return false;
  }
}

export function predictionManifest(
  run: ProbeRunRecord,
  images: ExportedOutOfFoldImage[],
  format: PredictionExportFormat,
  file: string,
  exportedAt: string,
): PredictionExportManifest {
  const hyper = run.manifest.hyperparameters as ProbeRunRecord['manifest']['hyperparameters'] & { gradientTolerance?: number };
  const groupKeys = [...new Set(images.map((image) => image.groupKey))];
  const columns: Record<string, string> =
    format === 'csv'
      ? {
          image_id: 'image id in this library',
          file_sha256: 'sha256 of the image file (the same in any library)',
          path: 'path of the image inside the library, else where it was imported from',
          group_key: 'what the folds were grouped by: case:<case key>, or image:<file sha256> for an image without a case',
          fold: 'cross-validation fold (0-based) whose model never saw this case',
          'truth:<label>': '1 positive, 0 negative, empty when unknown for this image (left out of that label)',
          'oof:<label>': 'out-of-fold probability for the label',
        }
      : {
          image_id: 'float64 [images]: image id in this library',
          group: 'float64 [images]: index into groupKeys of this manifest',
          fold: 'float64 [images]: cross-validation fold (0-based)',
          truth: 'float64 [images, labels]: 1 positive, 0 negative, NaN unknown; labels in run.labels order',
          oof: 'float64 [images, labels]: out-of-fold probability',
        };
  return {
    kind: 'derm-workstation probe out-of-fold predictions',
    formatVersion: 1,
    exportedAt,
    appVersion: appVersion(),
    run: {
      id: run.id,
      createdAt: run.createdAt,
      appVersion: run.appVersion,
      modelId: run.modelId,
      modelSha256: run.modelSha256,
      labelKind: run.labelKind,
      labels: run.labels,
      seed: run.seed,
      folds: run.folds,
      repeats: hyper.repeats ?? 1,
      tolerance: hyper.tolerance ?? null,
      l2: hyper.l2,
      classWeights: hyper.classWeights,
      bootstrapReplicates: hyper.bootstrapReplicates,
      minClassCases: hyper.minClassCases ?? null,
    },
    reported: (run.metrics?.overall.perLabel ?? []).map((metrics) => ({
      label: metrics.label,
      auc: metrics.auc.status === 'measured' ? metrics.auc.value : null,
      ci95: metrics.auc.status === 'measured' ? metrics.auc.ci95 : null,
      tooSmall: metrics.auc.status === 'too-small' ? metrics.auc.reason : null,
    })),
    images: images.length,
    groups: groupKeys.length,
    columns,
    ...(format === 'npz' ? { groupKeys } : {}),
    file: path.basename(file),
  };
}

/** The CSV text of an export (header, then one row per image). */
export function predictionsCsv(labels: string[], images: ExportedOutOfFoldImage[]): string {
  const header = ['image_id', 'file_sha256', 'path', 'group_key', 'fold', ...labels.flatMap((label) => [`truth:${label}`, `oof:${label}`])];
  // Probabilities are written in full (the shortest text that reads back to the same double), so an AUC recomputed from the file matches exactly.
  const rows = images.map((image) => [
    image.imageId,
    image.fileSha256,
    image.relativePath ?? image.originalPath,
    image.groupKey,
    image.fold,
    ...labels.flatMap((_, index) => [image.truths[index] === null ? '' : image.truths[index], String(image.probabilities[index])]),
  ]);
  return formatCsv([header, ...rows]);
}

/** Writes the data file and its manifest, each to a temporary name first, then into place without replacing anything. */
export function writePredictionExport(
  target: { file: string; manifestFile: string },
  format: PredictionExportFormat,
  labels: string[],
  images: ExportedOutOfFoldImage[],
  manifest: PredictionExportManifest,
): void {
  const temporary = `${target.file}.${process.pid}.partial`;
  try {
    if (format === 'csv') fs.writeFileSync(temporary, predictionsCsv(labels, images), { flag: 'wx' });
    else {
      const groupIndex = new Map((manifest.groupKeys ?? []).map((key, index) => [key, index]));
      const count = images.length;
      const truth = new Float64Array(count * labels.length);
      const oof = new Float64Array(count * labels.length);
      images.forEach((image, row) =>
        labels.forEach((_, label) => {
          truth[row * labels.length + label] = image.truths[label] ?? Number.NaN;
          oof[row * labels.length + label] = image.probabilities[label]!;
        }),
      );
      writeNpz(temporary, [
        ['image_id', Float64Array.from(images, (image) => image.imageId), [count]],
        ['group', Float64Array.from(images, (image) => groupIndex.get(image.groupKey)!), [count]],
        ['fold', Float64Array.from(images, (image) => image.fold), [count]],
        ['truth', truth, [count, labels.length]],
        ['oof', oof, [count, labels.length]],
      ]);
    }
    // link() fails when the name exists, so a file created meanwhile is never replaced.
    fs.linkSync(temporary, target.file);
  } finally {
    fs.rmSync(temporary, { force: true });
  }
  try {
    fs.writeFileSync(target.manifestFile, `${JSON.stringify(manifest, null, 2)}\n`, { flag: 'wx' });
  } catch (error) {
    fs.rmSync(target.file, { force: true });
    throw error;
  }
}
