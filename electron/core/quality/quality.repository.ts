import type Database from 'better-sqlite3';
import { metricsVersion, type QualityMetrics } from './quality-metrics.js';
import type { FlagDecision, QualityFlag } from './quality-flags.js';
import { writeTransaction } from '../library/write-transaction.js';
import type { ImagesRow, QualityMetricsRow } from '../library/table-rows.js';

/** A quality_metrics row with its image's size, as metricsSelect reads it. */
type MetricsRow = QualityMetricsRow & Pick<ImagesRow, 'width' | 'height'>;

/** Every read and write of `quality_metrics` and the automatic rows of `image_flags`. */
export class QualityRepository {
  constructor(private readonly db: Database.Database) {}

  saveMetrics(imageId: number, metrics: QualityMetrics): void {
    this.db
      .prepare(
        `INSERT INTO quality_metrics (image_id, metrics_version, brightness_mean, brightness_p05, brightness_p99, blur_score,
           laplacian_variance, entropy, saturation_mean, aspect_ratio, size_sqrt, extra)
         VALUES (@imageId, @version, @brightnessMean, @brightnessP05, @brightnessP99, @blurScore, @laplacianVariance, @entropy,
           @saturationMean, @aspectRatio, @sizeSqrt, @extra)
         ON CONFLICT(image_id) DO UPDATE SET metrics_version = excluded.metrics_version, brightness_mean = excluded.brightness_mean,
           brightness_p05 = excluded.brightness_p05, brightness_p99 = excluded.brightness_p99, blur_score = excluded.blur_score,
           laplacian_variance = excluded.laplacian_variance, entropy = excluded.entropy, saturation_mean = excluded.saturation_mean,
           aspect_ratio = excluded.aspect_ratio, size_sqrt = excluded.size_sqrt, extra = excluded.extra`,
      )
      .run({
        imageId,
        version: metricsVersion,
        brightnessMean: metrics.brightnessMean,
        brightnessP05: metrics.brightnessP05,
        brightnessP99: metrics.brightnessP99,
        blurScore: metrics.blurScore,
        laplacianVariance: metrics.laplacianVariance,
        entropy: metrics.entropy,
        saturationMean: metrics.saturationMean,
        aspectRatio: metrics.aspectRatio,
        sizeSqrt: metrics.sizeSqrt,
        extra: JSON.stringify({ greyStd: metrics.greyStd }),
      });
  }

  metrics(imageId: number): QualityMetrics | undefined {
    const row = this.db.prepare<unknown[], MetricsRow>(`${metricsSelect} WHERE q.image_id = ?`).get(imageId);
    return row ? rowToMetrics(row) : undefined;
  }

  /** Metrics of every image that is not deleted, in id order. */
  allMetrics(): Array<{ imageId: number; metrics: QualityMetrics }> {
    const rows = this.db.prepare<unknown[], MetricsRow>(`${liveMetricsSelect} ORDER BY q.image_id`).all();
    return rows.map((row) => ({ imageId: row.image_id, metrics: rowToMetrics(row) }));
  }

  sizes(): Array<{ imageId: number; sizeSqrt: number }> {
    return this.db
      .prepare<unknown[], { imageId: number; sizeSqrt: number }>(
        'SELECT q.image_id AS imageId, q.size_sqrt AS sizeSqrt FROM quality_metrics q JOIN live_images i ON i.id = q.image_id',
      )
      .all();
  }

  /** Groups of two or more non-deleted images with the same decoded pixels. */
  pixelDuplicateGroups(): number[][] {
    const rows = this.db
      .prepare<unknown[], { ids: string }>(
        `SELECT group_concat(id) AS ids FROM (SELECT id, pixel_sha256 FROM live_images ORDER BY id)
         GROUP BY pixel_sha256 HAVING COUNT(*) > 1`,
      )
      .all();
    return rows.map((row) =>
      row.ids
        .split(',')
        .map(Number)
        .sort((a, b) => a - b),
    );
  }

  /** Replaces the automatic flags named in `flags` for one image (manual flags are never touched). */
  replaceAutoFlags(imageId: number, decisions: FlagDecision[], flags: readonly QualityFlag[], at: string): void {
    const remove = this.db.prepare("DELETE FROM image_flags WHERE image_id = ? AND source = 'auto' AND flag = ?");
    for (const flag of flags) remove.run(imageId, flag);
    // A flag a person marked "not an issue" on this image is never set again.
    const insert = this.db.prepare(
      `INSERT INTO image_flags (image_id, flag, source, detail, set_at) SELECT ?, ?, 'auto', ?, ?
       WHERE NOT EXISTS (SELECT 1 FROM quality_overrides o WHERE o.image_id = ? AND o.flag = ?)`,
    );
    for (const decision of decisions) insert.run(imageId, decision.flag, decision.detail, at, imageId, decision.flag);
  }

  /** Adds a manual flag to each image; returns how many did not have it yet. */
  addManualFlag(imageIds: readonly number[], flag: string, detail: string | null, at: string): number {
    const insert = this.db.prepare(
      "INSERT OR IGNORE INTO image_flags (image_id, flag, source, detail, set_at) SELECT id, ?, 'manual', ?, ? FROM live_images WHERE id = ?",
    );
    let changed = 0;
    for (const imageId of imageIds) changed += insert.run(flag, detail, at, imageId).changes;
    return changed;
  }

  /** Removes the manual flag from each image; returns how many had it. */
  removeManualFlag(imageIds: readonly number[], flag: string): number {
    const remove = this.db.prepare("DELETE FROM image_flags WHERE image_id = ? AND flag = ? AND source = 'manual'");
    let changed = 0;
    for (const imageId of imageIds) changed += remove.run(imageId, flag).changes;
    return changed;
  }

  /** Records "not an issue" for an automatic flag of an image and removes the flag; returns whether the image had it. */
  addOverride(imageId: number, flag: string, at: string): boolean {
    this.db.prepare('INSERT OR IGNORE INTO quality_overrides (image_id, flag, set_at) SELECT id, ?, ? FROM images WHERE id = ?').run(flag, at, imageId);
    return this.db.prepare("DELETE FROM image_flags WHERE image_id = ? AND flag = ? AND source = 'auto'").run(imageId, flag).changes > 0;
  }

  /** Forgets a "not an issue" decision; returns whether there was one. The caller re-derives the flag. */
  removeOverride(imageId: number, flag: string): boolean {
    return this.db.prepare('DELETE FROM quality_overrides WHERE image_id = ? AND flag = ?').run(imageId, flag).changes > 0;
  }

  /** "Not an issue" decisions, per image, on images that are not deleted. */
  overrides(flag?: string): Array<{ imageId: number; flag: string; setAt: string }> {
    return this.db
      .prepare<unknown[], { imageId: number; flag: string; setAt: string }>(
        `SELECT o.image_id AS imageId, o.flag AS flag, o.set_at AS setAt FROM quality_overrides o JOIN live_images i ON i.id = o.image_id
         ${flag ? 'WHERE o.flag = ?' : ''} ORDER BY o.image_id, o.flag`,
      )
      .all(...(flag ? [flag] : []));
  }

  /** Whether the image exists and is not deleted. */
  /** The ids among these that are not images of the library, or are deleted ones, in the order given. */
  missingLiveImages(imageIds: readonly number[]): number[] {
    const live = this.db.prepare('SELECT 1 FROM live_images WHERE id = ?');
    return [...new Set(imageIds)].filter((imageId) => live.get(imageId) === undefined);
  }

  isLiveImage(imageId: number): boolean {
    return this.db.prepare('SELECT 1 FROM live_images WHERE id = ?').get(imageId) !== undefined;
  }

  /** Removes the automatic rows of the given flags from every image. */
  clearAutoFlags(flags: readonly QualityFlag[]): void {
    const remove = this.db.prepare("DELETE FROM image_flags WHERE source = 'auto' AND flag = ?");
    for (const flag of flags) remove.run(flag);
  }

  /** Number of non-deleted images carrying each flag (automatic or manual, counted once per image). */
  flagCounts(): Record<string, number> {
    const rows = this.db
      .prepare<unknown[], { flag: string; count: number }>(
        `SELECT f.flag AS flag, COUNT(DISTINCT f.image_id) AS count FROM image_flags f JOIN live_images i ON i.id = f.image_id GROUP BY f.flag ORDER BY f.flag`,
      )
      .all();
    return Object.fromEntries(rows.map((row) => [row.flag, row.count]));
  }

  flaggedImageCount(): number {
    return this.db
      .prepare<unknown[], { count: number }>('SELECT COUNT(DISTINCT f.image_id) AS count FROM image_flags f JOIN live_images i ON i.id = f.image_id')
      .get()!.count;
  }

  transaction<T>(work: () => T): T {
    return writeTransaction(this.db, work);
  }
}

const metricsSelect = `SELECT q.*, i.width AS width, i.height AS height FROM quality_metrics q JOIN images i ON i.id = q.image_id`;
const liveMetricsSelect = `SELECT q.*, i.width AS width, i.height AS height FROM quality_metrics q JOIN live_images i ON i.id = q.image_id`;

function rowToMetrics(row: MetricsRow): QualityMetrics {
  const extra = row.extra ? (JSON.parse(row.extra) as { greyStd?: number }) : {};
  return {
    brightnessMean: row.brightness_mean,
    brightnessP05: row.brightness_p05,
    brightnessP99: row.brightness_p99,
    blurScore: row.blur_score,
    laplacianVariance: row.laplacian_variance,
    entropy: row.entropy,
    saturationMean: row.saturation_mean,
    aspectRatio: row.aspect_ratio,
    sizeSqrt: row.size_sqrt,
    // Metrics rows written without greyStd count as having contrast, so blur is still judged.
    greyStd: extra.greyStd ?? Number.POSITIVE_INFINITY,
    width: row.width,
    height: row.height,
  };
}
