import crypto from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import type { z } from 'zod';
import type { importReportSchema } from '../../common/contract.js';
import { DermError, isDermError } from '../../common/errors.js';
import type { ImagesRepository } from '../images/images.repository.js';
import { ProgressReporter, type JobControl, type ProgressListener } from '../jobs/job.js';
import { reduceForAnalysis } from '../quality/quality-reduce.js';
import type { QualityService } from '../quality/quality.service.js';
import { explainFileSystemError, listImportFiles, type ListedFile } from './file-walker.js';
import { decodeImage, defaultMaxPixels, makeThumbnail, type DecodedImage } from './image-decoder.js';
import type { Lease } from '../library/lease.js';
import type { ImportBatchLeases } from './import-batch-leases.js';
import { resumableBatchStatuses, type BatchStatus, type ImportBatchesRepository, type ImportOutcome } from './import-batches.repository.js';
import type { ImportFilesRepository } from './import-files.repository.js';

/** What a later step (e.g. embedding) receives for every newly imported image, from the import's one decode. */
export interface DecodedImageEvent {
  imageId: number;
  /** Absolute path the image was imported from. */
  path: string;
  /** 8-bit sRGB, row-major, after EXIF orientation and alpha flattening on white. */
  pixels: Buffer;
  width: number;
  height: number;
  channels: 3;
}

export interface ImportOptions extends JobControl {
  /** Also copy each file into the library's images/ folder ("copy into library"). */
  copyIntoLibrary?: boolean;
  /**
   * Folder that relative paths are measured from. Default: each folder given is its own root; a file
   * given directly is relative to its own folder.
   */
  root?: string;
  /** Pixel limit per image (default 100 MP, see image-decoder.ts). */
  maxPixels?: number;
  /** Files in flight at once (default: CPU cores + 1, at least 2, at most 8). */
  concurrency?: number;
  /**
   * Called after each new image is committed, with its decoded pixels, so another step can use the
   * same decode. Awaited before the worker takes its next file, which gives natural backpressure. An
   * error thrown here stops the import (images already committed stay) and rejects importPaths.
   */
  onDecoded?: (image: DecodedImageEvent) => Promise<void> | void;
}

export type ImportReport = z.infer<typeof importReportSchema>;

export interface ImportDependencies {
  images: ImagesRepository;
  batches: ImportBatchesRepository;
  /** Which live process owns which batch. */
  leases: ImportBatchLeases;
  files: ImportFilesRepository;
  quality: QualityService;
  /** Runs work in one SQLite transaction (the unit of work that makes an image appear). */
  transaction: <T>(work: () => T) => T;
  clock?: () => Date;
}

/** Errors writing into the library (disk full, permissions on the library folder) stop the whole import. */
class LibraryWriteError extends Error {}

/**
 * Imports image files and folders into the library. Each file is read once and decoded once; from
 * that decode come the pixel hash, the thumbnail, the quality metrics and the onDecoded event. Each
 * image is committed on its own (thumbnail renamed into place first, then the image row, metrics,
 * flags and outcome in one transaction), so an interrupted import loses nothing and running it again
 * resumes the same batch.
 */
export class ImportService {
  private readonly clock: () => Date;

  constructor(private readonly dependencies: ImportDependencies) {
    this.clock = dependencies.clock ?? (() => new Date());
  }

  async importPaths(paths: string[], options: ImportOptions = {}): Promise<ImportReport> {
    if (paths.length === 0) throw new DermError('invalid-input', 'Give at least one file or folder to import.', { field: 'paths' });
    const maxPixels = options.maxPixels ?? defaultMaxPixels;
    if (!Number.isFinite(maxPixels) || maxPixels <= 0)
      throw new DermError('invalid-input', `maxPixels must be a positive number; got ${maxPixels}.`, { field: 'maxPixels' });
    const concurrency = options.concurrency ?? Math.max(2, Math.min(8, os.availableParallelism() + 1));
    if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) {
      throw new DermError('invalid-input', `concurrency must be a whole number from 1 to 64; got ${concurrency}.`, { field: 'concurrency' });
    }
    const copyIntoLibrary = options.copyIntoLibrary ?? false;
    const sourcePaths = [...new Set(paths.map((given) => path.resolve(given)))];

    const listing = await listImportFiles(sourcePaths, options.root);
    this.recoverInterrupted();
    const claim = this.claimBatch(sourcePaths, copyIntoLibrary);
    let finalStatus: BatchStatus = 'failed';
    try {
      const report = await this.runBatch(claim.batchId, claim.resumed, listing, copyIntoLibrary, maxPixels, concurrency, options);
      finalStatus = report.status === 'cancelled' ? 'cancelled' : 'completed';
      return report;
    } finally {
      // A completed batch is never resumed again, so its lock file can go; an unfinished one keeps it.
      claim.lease.release({ removeFile: finalStatus === 'completed' });
    }
  }

  /**
   * Marks every batch left 'running' by a process that is gone (killed, crashed, powered off) as
   * interrupted, with its counts recomputed from the outcomes it stored (each committed image has
   * one); running the same import again resumes it. Batches a live process still owns are left alone.
   * Returns the ids recovered.
   */
  recoverInterrupted(): number[] {
    const { batches, leases, transaction } = this.dependencies;
    const recovered: number[] = [];
    for (const batch of batches.running()) {
      const lease = leases.tryAcquire(batch.id);
      if (!lease) continue;
      try {
        const changed = transaction(() => {
          if (batches.get(batch.id)?.status !== 'running') return false;
          batches.finish(batch.id, 'interrupted', null);
          return true;
        });
        if (changed) recovered.push(batch.id);
      } finally {
        lease.release();
      }
    }
    return recovered;
  }

  /**
   * The batch this run works on, with its lease held: the newest unfinished batch over the same paths
   * that no live process owns, or a new one. A new batch's lease is taken inside the transaction that
   * creates it, so no other process ever sees the batch without its owner.
   */
  private claimBatch(sourcePaths: string[], copyIntoLibrary: boolean): { batchId: number; resumed: boolean; lease: Lease } {
    const { batches, leases, transaction } = this.dependencies;
    for (const candidate of batches.findUnfinished(sourcePaths, copyIntoLibrary)) {
      const lease = leases.tryAcquire(candidate.id);
      if (!lease) continue;
      const claimed = transaction(() => {
        const status = batches.get(candidate.id)?.status;
        if (status === undefined || !resumableBatchStatuses.includes(status)) return false;
        batches.setRunning(candidate.id);
        return true;
      });
      if (claimed) return { batchId: candidate.id, resumed: true, lease };
      lease.release();
    }
    return transaction(() => {
      const batchId = batches.create(sourcePaths, copyIntoLibrary, this.clock());
      const lease = leases.tryAcquire(batchId);
      if (!lease) throw new DermError('internal', `The lock of new import batch ${batchId} is held by another process; nothing was imported.`, { batchId });
      return { batchId, resumed: false, lease };
    });
  }

  private async runBatch(
    batchId: number,
    resumed: boolean,
    listing: Awaited<ReturnType<typeof listImportFiles>>,
    copyIntoLibrary: boolean,
    maxPixels: number,
    concurrency: number,
    options: ImportOptions,
  ): Promise<ImportReport> {
    const { batches, quality, transaction } = this.dependencies;
    const total = listing.files.length + listing.problems.length;
    const settled = new Set((resumed ? batches.outcomes(batchId) : []).filter((outcome) => outcome.outcome !== 'failed').map((outcome) => outcome.path));
    transaction(() => {
      batches.setTotal(batchId, total);
      for (const problem of listing.problems) batches.recordOutcome(batchId, problem, this.clock());
    });
    const work = listing.files.filter((file) => !settled.has(file.path));

    let done = total - work.length;
    const reporter = new ProgressReporter('import', total, resumedRate(options.onProgress, done));
    reporter.report(done, undefined, true);

    const thresholds = quality.thresholds();
    let next = 0;
    let fatal: unknown;
    const stopped = () => options.signal?.aborted === true || fatal !== undefined;
    const worker = async () => {
      while (!stopped() && next < work.length) {
        const file = work[next++]!;
        try {
          const outcome = await this.importFile(file, batchId, copyIntoLibrary, maxPixels, thresholds, options.onDecoded);
          if (outcome.outcome !== 'imported') transaction(() => batches.recordOutcome(batchId, outcome, this.clock()));
        } catch (error) {
          fatal ??= error;
          return;
        }
        done++;
        reporter.report(done, file.path);
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, Math.max(1, work.length)) }, worker));

    const cancelled = fatal === undefined && options.signal?.aborted === true && done < total;
    if (listing.files.length > 0) quality.refreshLibraryFlags(thresholds);
    batches.finish(batchId, fatal !== undefined ? 'failed' : cancelled ? 'cancelled' : 'completed', cancelled || fatal !== undefined ? null : this.clock());
    if (fatal !== undefined) {
      if (fatal instanceof LibraryWriteError) {
        throw new DermError(
          'internal',
          `${fatal.message} The import stopped; images already imported are kept, and running the same import again resumes it.`,
          { batchId },
        );
      }
      throw fatal;
    }
    reporter.report(done, undefined, true);

    const outcomes = batches.outcomes(batchId);
    const count = (kind: ImportOutcome['outcome']) => outcomes.filter((outcome) => outcome.outcome === kind).length;
    const report: ImportReport = {
      batchId,
      status: 'success',
      resumed,
      total,
      imported: count('imported'),
      duplicates: count('duplicate'),
      failed: count('failed'),
      skipped: count('skipped'),
      outcomes,
    };
    if (cancelled) report.status = 'cancelled';
    else if (report.failed > 0) report.status = report.imported + report.duplicates > 0 ? 'partial' : 'failed';
    return report;
  }

  /** Imports one file. Problems with the file become its outcome; problems writing the library throw LibraryWriteError. */
  private async importFile(
    file: ListedFile,
    batchId: number,
    copyIntoLibrary: boolean,
    maxPixels: number,
    thresholds: ReturnType<QualityService['thresholds']>,
    onDecoded: ImportOptions['onDecoded'],
  ): Promise<ImportOutcome> {
    const { images, batches, files, quality, transaction } = this.dependencies;
    const failed = (reason: string): ImportOutcome => ({ path: file.path, outcome: 'failed', reason });

    let bytes: Buffer;
    try {
      bytes = await files.read(file.path);
    } catch (error) {
      return failed(explainFileSystemError(error, 'file'));
    }
    if (bytes.length === 0) return failed('The file is empty (0 bytes).');
    const fileSha256 = crypto.createHash('sha256').update(bytes).digest('hex');
    const known = images.findByFileSha256(fileSha256);
    if (known) return duplicateOf(file.path, known);

    let decoded: DecodedImage;
    try {
      decoded = await decodeImage(bytes, maxPixels);
    } catch (error) {
      return failed(isDermError(error) ? error.message : `The image could not be decoded: ${(error as Error).message}`);
    }
    // The full-size pixels are resized once (on sharp's threads, while this thread hashes them); the
    // thumbnail and the blur measures both come from that analysis image.
    const reducing = reduceForAnalysis(decoded.pixels, decoded.width, decoded.height);
    const pixelSha256 = crypto.createHash('sha256').update(`${decoded.width}x${decoded.height}x3\n`).update(decoded.pixels).digest('hex');
    const reduced = await reducing;
    const thumbnail = makeThumbnail({
      pixels: Buffer.from(reduced.pixels.buffer, reduced.pixels.byteOffset, reduced.pixels.byteLength),
      width: reduced.width,
      height: reduced.height,
    });
    const metrics = quality.computeMetrics(decoded.pixels, decoded.width, decoded.height, reduced);

    let thumbnailPath: string;
    let managedPath: string | null = null;
    try {
      thumbnailPath = await files.writeThumbnail(fileSha256, await thumbnail);
      if (copyIntoLibrary) managedPath = await files.writeManagedCopy(fileSha256, file.path, bytes);
    } catch (error) {
      throw new LibraryWriteError(`Could not write into the library while importing ${file.path}: ${(error as Error).message}.`);
    }

    const committed = transaction((): ImportOutcome => {
      // Checked again inside the transaction: two copies of one file can be in flight at the same time.
      const raced = images.findByFileSha256(fileSha256);
      if (raced) return duplicateOf(file.path, raced);
      const now = this.clock();
      const imageId = images.insert({
        fileSha256,
        pixelSha256,
        originalPath: file.path,
        relativePath: file.relativePath,
        managedPath,
        thumbnailPath,
        width: decoded.width,
        height: decoded.height,
        format: decoded.format,
        bytes: bytes.length,
        exifOrientation: decoded.exifOrientation,
        sourceColorSpace: decoded.sourceColorSpace,
        sourceBitDepth: decoded.sourceBitDepth,
        hadAlpha: decoded.hadAlpha,
        importedAt: now.toISOString(),
        batchId,
      });
      quality.recordImage(imageId, metrics, thresholds);
      const outcome: ImportOutcome = { path: file.path, outcome: 'imported', imageId };
      batches.recordOutcome(batchId, outcome, now);
      return outcome;
    });
    if (committed.outcome === 'imported' && onDecoded) {
      await onDecoded({ imageId: committed.imageId!, path: file.path, pixels: decoded.pixels, width: decoded.width, height: decoded.height, channels: 3 });
    }
    return committed;
  }
}

/**
 * Rate and ETA from the files this run processed: a resumed batch starts with many files already
 * done, which would otherwise count as work done in the first instant.
 */
function resumedRate(listener: ProgressListener | undefined, alreadyDone: number): ProgressListener | undefined {
  if (!listener || alreadyDone === 0) return listener;
  const startedAt = performance.now();
  return (progress) => {
    const seconds = (performance.now() - startedAt) / 1000;
    const ratePerSecond = seconds > 0 ? (progress.done - alreadyDone) / seconds : 0;
    const etaSeconds = ratePerSecond > 0 ? Math.max(0, (progress.total - progress.done) / ratePerSecond) : progress.done >= progress.total ? 0 : null;
    listener({ ...progress, ratePerSecond, etaSeconds });
  };
}

function duplicateOf(file: string, existing: { id: number; originalPath: string; deletedAt: string | null }): ImportOutcome {
  const where = existing.originalPath === file ? 'already imported from this path' : `imported from ${existing.originalPath}`;
  const deleted = existing.deletedAt ? '; that image is marked deleted and stays so' : '';
  return { path: file, outcome: 'duplicate', reason: `Same file as image ${existing.id} (${where}${deleted}).`, imageId: existing.id };
}
