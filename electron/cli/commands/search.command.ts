import fs from 'node:fs';
import type { Command } from 'commander';
import { DermError } from '../../common/errors.js';
import type { Core } from '../../core/core.js';
import type { DuplicateReport, SearchResponse } from '../../core/search/search.service.js';
import { parsePositiveInteger, printCallOutput, printCliOutput, progressPrinter, withCore, withInterrupt } from '../cli-context.js';

/**
 * `dermws search`, `dermws duplicates` and `dermws index status|rebuild`. With --json: search prints
 * searchSimilar's output, duplicates duplicatesFind's (duplicatesResolve's with --keep/--mark,
 * duplicatesUndo's with --unflag/--restore), computed by the same core functions as those calls and
 * mapped by their handlers' own functions; index status and rebuild print their schemas in
 * cli-outputs.ts (`{indexes: [...]}`, one entry per model), documented in docs/search-index.md
 * ("Commands").
 */
export function registerSearchCommands(program: Command): void {
  program
    .command('search')
    .description('find the library images most similar to a library image (by id) or to a photo file (embedded on the fly, not imported)')
    .argument('<query>', 'an image id, or the path of an image file')
    .option('-k, --k <n>', 'number of results, 1..1000 (default 10)')
    .option('--model <id>', 'embedding model (default: the only model with embeddings)')
    .option('--where <clause>', 'filter clause, repeatable (e.g. flag!=blurry, label.condition=eczema, meta.body_parts~ARM, batch=3, skin_type=V)', collect, [])
    .option('--exclude-self', 'leave the query image out of the results')
    .option('--exclude-case', "leave out every image of the query image's case")
    .option('--exact', 'compare with every eligible embedding instead of searching the index (complete, slower)')
    .action(async (queryText: string, options: SearchCliOptions, command: Command) => {
      await withCore(command, async (core, { json }) => {
        const k = options.k === undefined ? 10 : parseK(options.k);
        const query = /^\d+$/.test(queryText) && !fs.existsSync(queryText) ? { imageId: Number(queryText) } : { file: queryText };
        const response = await withCancellation((signal) => {
          const onProgress = progressPrinter();
          return core.search.search(
            {
              query,
              k,
              where: options.where,
              ...(options.model === undefined ? {} : { modelId: options.model }),
              ...(options.excludeSelf ? { excludeSelf: true } : {}),
              ...(options.excludeCase ? { excludeCase: true } : {}),
              ...(options.exact ? { exact: true } : {}),
            },
            { signal, ...(onProgress ? { onProgress } : {}) },
          );
        });
        if (json) {
          // The handler's mapping: image cards name the file, not its folder (paths stay in the text output).
          const { searchSimilarOutput } = await import('../../core/app-api/handlers/search.handlers.js');
          await printCallOutput('searchSimilar', searchSimilarOutput(response));
        } else printSearch(response);
      });
    });

  program
    .command('duplicates')
    .description(
      'near-duplicate review, most similar first: groups in which every two images are nearly identical (cliques, not chains), plus exact pixel duplicates; --keep/--mark acts on a group, --unflag/--restore undoes',
    )
    .option('--threshold <t>', 'cosine similarity at or above which two images count as near duplicates (default 0.97)')
    .option('--model <id>', 'embedding model (default: the only model with embeddings)')
    .option('--per-image <n>', 'nearest neighbours examined per image (default 10)')
    .option('--keep <id>', 'with --mark: the image to keep')
    .option('--mark <ids>', 'with --keep: comma-separated images to flag as duplicates of it')
    .option('--delete', 'with --keep/--mark: mark those images deleted instead of flagging them')
    .option('--unflag <ids>', 'undo: remove the manual duplicate flag of these comma-separated images')
    .option('--restore <ids>', 'undo: bring back these comma-separated images marked deleted')
    .action(async (options: DuplicatesCliOptions, command: Command) => {
      await withCore(command, async (core, { json }) => {
        if (options.unflag !== undefined || options.restore !== undefined) {
          if (options.unflag !== undefined && options.restore !== undefined) {
            throw new DermError('invalid-input', '--unflag and --restore are separate undos; give one of them.', { field: 'unflag' });
          }
          const flag = options.unflag !== undefined;
          const list = (flag ? options.unflag : options.restore)!;
          const result = core.search.undoDuplicates({
            images: list.split(',').map((id) => parsePositiveInteger(flag ? '--unflag' : '--restore', id.trim())),
            action: flag ? 'flag' : 'delete',
          });
          if (json) await printCallOutput('duplicatesUndo', { changed: result.changed, changedImages: result.changedImages });
          else
            process.stdout.write(
              `${flag ? 'unflagged' : 'restored'} ${result.changed} of ${result.images.join(', ')}${result.changed < result.images.length ? ` (the others ${flag ? 'had no manual duplicate flag' : 'were not deleted'})` : ''}\n`,
            );
          return;
        }
        if (options.keep !== undefined || options.mark !== undefined) {
          if (options.keep === undefined || options.mark === undefined) {
            throw new DermError('invalid-input', '--keep and --mark go together: --keep ID --mark ID,ID…', { field: 'keep' });
          }
          const result = core.search.resolveDuplicates({
            keep: parsePositiveInteger('--keep', options.keep),
            others: options.mark.split(',').map((id) => parsePositiveInteger('--mark', id.trim())),
            action: options.delete ? 'delete' : 'flag',
          });
          if (json) await printCallOutput('duplicatesResolve', { changed: result.changed, changedImages: result.changedImages });
          else
            process.stdout.write(
              `kept image ${result.keep}; ${result.action === 'flag' ? 'flagged' : 'deleted'} ${result.changed} of ${result.images.join(', ')}\n`,
            );
          return;
        }
        const threshold = options.threshold === undefined ? undefined : Number(options.threshold);
        if (threshold !== undefined && !(threshold > 0 && threshold <= 1)) {
          throw new DermError('invalid-input', `--threshold must be a number above 0 and at most 1; got "${options.threshold}".`, { field: 'threshold' });
        }
        const report = await withCancellation((signal) => {
          const onProgress = progressPrinter();
          return core.search.duplicates({
            ...(threshold === undefined ? {} : { threshold }),
            ...(options.model === undefined ? {} : { modelId: options.model }),
            ...(options.perImage === undefined ? {} : { perImage: parsePositiveInteger('--per-image', options.perImage, 100) }),
            signal,
            ...(onProgress ? { onProgress } : {}),
          });
        });
        if (json) {
          const { duplicatesFindOutput } = await import('../../core/app-api/handlers/search.handlers.js');
          await printCallOutput('duplicatesFind', duplicatesFindOutput(report));
        } else printDuplicates(report);
      });
    });

  const index = program.command('index').description('the HNSW vector index of each model (a cache of the embeddings)');
  index
    .command('status')
    .description('check each index against the library: ready, behind (pending changes), missing, corrupt or stale')
    .option('--model <id>', 'only this model (default: every model with embeddings)')
    .action(async (options: { model?: string }, command: Command) => {
      await withCore(command, async (core, { json }) => {
        const statuses = [];
        for (const modelId of modelsOf(core, options.model)) statuses.push(await core.index.status(modelId));
        if (json) {
          await printCliOutput('indexStatus', { indexes: statuses });
          return;
        }
        if (statuses.length === 0) process.stdout.write('no models with embeddings\n');
        const { describeCalibration } = await import('../../core/index/index-calibration.js');
        for (const status of statuses) {
          process.stdout.write(
            `${status.modelId}: ${status.state} (${status.reason}); ${status.indexedCount ?? 0}/${status.databaseCount} images, ` +
              `${status.modelDim}-d${status.projectionVersion === null ? '' : ` projected to ${status.graphDim}-d (projection v${status.projectionVersion})`}\n`,
          );
          process.stdout.write(
            `  ${status.calibration ? describeCalibration(status.calibration) : 'recall not measured yet (measured at the next build or search)'}\n`,
          );
          const copy = status.embeddingCopy;
          if (copy.state !== 'unused')
            process.stdout.write(
              `  re-rank from ${copy.rerankFrom === 'copy' ? `the flat ${copy.precision} copy` : 'SQLite'}: ${copy.state} (${copy.reason})\n`,
            );
        }
      });
    });
  index
    .command('rebuild')
    .description('rebuild the index from the embeddings (Ctrl-C leaves the previous index in place)')
    .option('--model <id>', 'only this model (default: every model with embeddings)')
    .option('--refit', 'fit a new PCA projection first (high-dimensional models)')
    .option(
      '--recall-target <r>',
      'recall@10 the index calibrates itself to, above 0 and at most 1 (saved as the library setting index.recallTarget; default 0.99)',
    )
    .option(
      '--sketch <on|off>',
      'keep a 4-bit sketch of the embeddings in memory (3 KB an image at 6144-d) that picks the candidates read: faster when the flat copy is not in the page cache (saved as the library setting index.sketch; default off)',
    )
    .action(async (options: { model?: string; refit?: boolean; recallTarget?: string; sketch?: string }, command: Command) => {
      await withCore(command, async (core, { json }) => {
        if (options.sketch !== undefined) {
          if (options.sketch !== 'on' && options.sketch !== 'off')
            throw new DermError('invalid-input', `--sketch must be "on" or "off"; got "${options.sketch}".`, { field: 'sketch' });
          core.settings.set('index.sketch', options.sketch === 'on');
        }
        if (options.recallTarget !== undefined) {
          const target = Number(options.recallTarget);
          if (!(target > 0 && target <= 1)) {
            throw new DermError('invalid-input', `--recall-target must be a number above 0 and at most 1; got "${options.recallTarget}".`, {
              field: 'recallTarget',
            });
          }
          core.settings.set('index.recallTarget', target);
        }
        const results = [];
        for (const modelId of modelsOf(core, options.model)) {
          results.push(
            await withCancellation((signal) => {
              const onProgress = progressPrinter();
              return core.index.rebuild(modelId, { signal, ...(onProgress ? { onProgress } : {}) }, { refit: options.refit ?? false });
            }),
          );
        }
        if (json) {
          await printCliOutput('indexRebuild', { indexes: results });
          return;
        }
        const { describeCalibration } = await import('../../core/index/index-calibration.js');
        for (const result of results) {
          process.stdout.write(
            `${result.modelId}: ${result.elements} images, ${result.graphDim}-d graph${result.projectionVersion === null ? '' : ` (projection v${result.projectionVersion}, ${((result.explainedVariance ?? 0) * 100).toFixed(1)}% of variance)`} in ${result.buildSeconds.toFixed(1)} s\n`,
          );
          if (result.calibration) process.stdout.write(`  ${describeCalibration(result.calibration)}\n`);
        }
      });
    });
}

interface SearchCliOptions {
  k?: string;
  model?: string;
  where: string[];
  excludeSelf?: boolean;
  excludeCase?: boolean;
  exact?: boolean;
}

interface DuplicatesCliOptions {
  threshold?: string;
  model?: string;
  perImage?: string;
  keep?: string;
  mark?: string;
  delete?: boolean;
  unflag?: string;
  restore?: string;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function parseK(value: string): number {
  const k = Number(value);
  if (!Number.isInteger(k) || k < 1 || k > 1000)
    throw new DermError('invalid-input', `-k must be a whole number from 1 to 1000; got "${value}".`, { field: 'k' });
  return k;
}

function modelsOf(core: Core, modelId: string | undefined): string[] {
  if (modelId !== undefined) return [core.search.resolveModel(modelId)];
  return core.embeddings
    .storedModels()
    .filter((model) => model.count > 0)
    .map((model) => model.id);
}

/** Ctrl-C stops an index build; the AbortError it ends with is reported as 'cancelled' (exit 130). */
async function withCancellation<T>(work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  try {
    return await withInterrupt(work);
  } catch (error) {
    if (error instanceof Error && error.name === 'AbortError') throw new DermError('cancelled', 'Cancelled; the previous index (if any) was left in place.');
    throw error;
  }
}

function printSearch(response: SearchResponse): void {
  const what =
    response.query.kind === 'image'
      ? `image ${response.query.imageId}`
      : response.query.kind === 'file'
        ? response.query.file
        : `a ${response.query.dim}-d vector`;
  process.stdout.write(
    `${response.results.length} most similar to ${what} (model ${response.modelId}; ${response.eligible} eligible images${response.where.length > 0 ? `; where ${response.where.join(' and ')}` : ''})\n`,
  );
  process.stdout.write(`${response.completeness.summary}\n`);
  process.stdout.write(
    `${'rank'.padStart(4)} ${'cosine'.padStart(7)} ${'image'.padStart(7)}  ${'case'.padEnd(14)} ${'size'.padEnd(10)} ${'flags'.padEnd(18)} thumbnail\n`,
  );
  for (const hit of response.results) {
    process.stdout.write(
      `${String(hit.rank).padStart(4)} ${hit.similarity.toFixed(4).padStart(7)} ${String(hit.imageId).padStart(7)}  ${(hit.caseKey ?? '-').slice(0, 14).padEnd(14)} ${`${hit.width}x${hit.height}`.padEnd(10)} ${(hit.flags.join(',') || '-').slice(0, 18).padEnd(18)} ${hit.thumbnailPath}\n`,
    );
  }
}

function printDuplicates(report: DuplicateReport): void {
  process.stdout.write(
    `${report.groups.length} duplicate groups, most similar first; every two images of a group are at or above ${report.threshold}${report.modelId ? ` (model ${report.modelId})` : ' (exact pixel duplicates only)'}\n`,
  );
  for (const group of report.groups) {
    const range =
      group.imageIds.length > 2
        ? `similarity ${group.minSimilarity.toFixed(4)}–${group.maxSimilarity.toFixed(4)}`
        : `similarity ${group.maxSimilarity.toFixed(4)}`;
    process.stdout.write(`  images ${group.imageIds.join(', ')}: ${range}${group.exact ? ', identical pixels' : ''}; suggested keep ${group.keep}\n`);
  }
  if (report.groups.length > 0)
    process.stdout.write('Act on a group with: dermws duplicates --keep ID --mark ID,ID [--delete]; undo with --unflag ID,ID or --restore ID,ID\n');
}
