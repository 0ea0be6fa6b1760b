import type { Command } from 'commander';
import type { Core } from '../../core/core.js';
import type { BatchStatus } from '../../core/import/import-batches.repository.js';
import type { ImportReport } from '../../core/import/import.service.js';
import type { ProgressListener } from '../../core/jobs/job.js';
import type { LibraryCheckReport } from '../../core/check/library-check.service.js';
import { parseThresholdAssignment, qualityThresholdNames } from '../../core/quality/quality-flags.js';
import { callContract, exitCodes, printJobResult, printJson, progressPrinter, withCore, withInterrupt } from '../cli-context.js';

/**
 * `dermws import`, `dermws info` and `dermws qc`. JSON shapes are documented in docs/library.md
 * ("Importing images", "Image-quality flags").
 */
export function registerLibraryCommands(program: Command): void {
  program
    .command('import')
    .description('import image files and folders (recursive) into the library; running it again resumes an interrupted import')
    .argument('<paths...>', 'files and folders to import')
    .option('--copy', 'also copy each image into the library folder ("copy into library")')
    .option('--root <dir>', 'folder that stored relative paths are measured from (default: each folder given)')
    .action(async (paths: string[], options: { copy?: boolean; root?: string }, command: Command) => {
      await withCore(command, async (core, { json }) => {
        await withInterrupt(async (signal) => {
          const progress = json ? undefined : progressPrinter();
          const report = await core.import.importPaths(paths, {
            copyIntoLibrary: Boolean(options.copy),
            signal,
            ...(options.root ? { root: options.root } : {}),
            ...(progress ? { onProgress: progress } : {}),
          });
          if (json) await printJobResult('importReportSchema', report);
          else printImportReport(report);
          process.exitCode = report.status === 'cancelled' ? exitCodes.cancelled : report.failed > 0 ? exitCodes.partial : exitCodes.ok;
        });
      });
    });

  program
    .command('info')
    .description('what the library holds: images, formats, quality flags, import batches, schema version, folder')
    .action(async (_options: unknown, command: Command) => {
      await withCore(command, async (core, { json }) => {
        // --json prints libraryOverview, the call the app's library header reads; the folder is the text's (and appInfo's).
        if (json) printJson(await callContract(core, 'libraryOverview', {}));
        else {
          const info = libraryInfo(core);
          process.stdout.write(`Library ${info.library} (schema ${info.schemaVersion})\n`);
          process.stdout.write(
            `${info.images} images (${formatBytes(info.bytes)}), ${info.deletedImages} deleted, ${info.cases} cases, ${info.batches} import batches\n`,
          );
          process.stdout.write(`Formats: ${describeCounts(info.formats) || 'none'}\n`);
          process.stdout.write(`Flagged: ${info.flaggedImages} images — ${describeCounts(info.flags) || 'none'}\n`);
          if (info.lastImport) {
            const last = info.lastImport;
            process.stdout.write(
              `Last import: batch ${last.id}, ${last.status}, ${last.startedAt} — ${last.imported} imported, ${last.duplicates} duplicates, ${last.failed} failed of ${last.totalFiles}\n`,
            );
            const resume = unfinishedBatchHint[last.status];
            if (resume) process.stdout.write(`  ${resume} Run the same import again to resume it.\n`);
          }
        }
        process.exitCode = exitCodes.ok;
      });
    });

  program
    .command('check')
    .description(
      'check the library: database pages (quick, or --full integrity_check), schema record, embeddings (finite, right size), thumbnails and managed copies present',
    )
    .option('--full', 'run SQLite integrity_check (reads every page and checks every index; slower)')
    .option('--repair', 'regenerate missing thumbnails and managed copies from the library copy or the unchanged original file')
    .action(async (options: { full?: boolean; repair?: boolean }, command: Command) => {
      await withCore(command, async (core, { json }) => {
        // Ctrl-C stops the check between two units of work: what was checked is still reported, and a
        // repair stops after the file it is writing (written whole, then renamed into place).
        const controller = new AbortController();
        const onSignal = () => controller.abort();
        process.once('SIGINT', onSignal);
        let report: LibraryCheckReport;
        try {
          const progress = json ? undefined : stageProgressPrinter();
          report = await core.check.check({
            full: options.full === true,
            repair: options.repair === true,
            signal: controller.signal,
            ...(progress ? { onProgress: progress } : {}),
          });
        } finally {
          process.off('SIGINT', onSignal);
        }
        if (json) await printJobResult('libraryCheckReportSchema', report);
        else printCheckReport(report, core.library.readOnly);
        process.exitCode = report.status === 'cancelled' ? exitCodes.cancelled : report.ok ? exitCodes.ok : exitCodes.partial;
      });
    });

  program
    .command('qc')
    .description(`quality-flag counts and thresholds; --set NAME=VALUE changes a threshold and re-flags without decoding (${qualityThresholdNames.join(', ')})`)
    .option('--set <NAME=VALUE...>', 'change one or more thresholds, then re-flag every image')
    .option('--reflag', 're-flag every image from its stored metrics with the current thresholds')
    .action(async (options: { set?: string[]; reflag?: boolean }, command: Command) => {
      // Arguments are checked before the library is opened, so a typo never touches it.
      const change: Record<string, number> = {};
      for (const assignment of options.set ?? []) {
        const [name, value] = parseThresholdAssignment(assignment);
        change[name] = value;
      }
      await withCore(command, async (core, { json }) => {
        if (json) {
          // --set is the qualitySetThresholds call (the Quality screen's); the listing, after --reflag or not, is qualityOverview.
          if (Object.keys(change).length > 0) printJson(await callContract(core, 'qualitySetThresholds', { change }));
          else {
            if (options.reflag) core.quality.reflag();
            printJson(await callContract(core, 'qualityOverview', {}));
          }
          process.exitCode = exitCodes.ok;
          return;
        }
        const before = core.quality.thresholds();
        let reflagged = false;
        if (Object.keys(change).length > 0) {
          core.quality.setThresholds(change);
          reflagged = true;
        } else if (options.reflag) {
          core.quality.reflag();
          reflagged = true;
        }
        const thresholds = core.quality.thresholds();
        const changed = Object.keys(change).map((name) => ({
          name,
          from: before[name as keyof typeof before],
          to: thresholds[name as keyof typeof thresholds],
        }));
        const result = {
          images: core.images.count(),
          flaggedImages: core.quality.flaggedImageCount(),
          flags: core.quality.flagCounts(),
        };
        for (const entry of changed) process.stdout.write(`${entry.name}: ${entry.from} → ${entry.to}\n`);
        if (reflagged) process.stdout.write('Re-flagged every image from its stored metrics.\n');
        process.stdout.write(`${result.flaggedImages} of ${result.images} images flagged\n`);
        for (const [flag, count] of Object.entries(result.flags)) process.stdout.write(`  ${flag.padEnd(18)} ${count}\n`);
        process.stdout.write('Thresholds:\n');
        for (const [name, value] of Object.entries(thresholds)) process.stdout.write(`  ${name.padEnd(26)} ${value}\n`);
        process.exitCode = exitCodes.ok;
      });
    });
}

/** What `dermws info` says (its --json prints libraryOverview instead). */
export function libraryInfo(core: Core) {
  const totals = core.images.totals();
  const batches = core.importBatches.list(1);
  const last = batches[0];
  return {
    library: core.library.paths.root,
    schemaVersion: core.library.schemaVersion,
    images: totals.images,
    deletedImages: totals.deleted,
    bytes: totals.bytes,
    cases: totals.cases,
    formats: core.images.formatCounts(),
    flaggedImages: core.quality.flaggedImageCount(),
    flags: core.quality.flagCounts(),
    batches: core.importBatches.count(),
    lastImport: last
      ? {
          id: last.id,
          status: last.status,
          startedAt: last.startedAt,
          finishedAt: last.finishedAt,
          totalFiles: last.totalFiles,
          imported: last.imported,
          duplicates: last.duplicates,
          failed: last.failed,
        }
      : null,
  };
}

/** What `dermws info` says about a last import that did not complete. */
const unfinishedBatchHint: Partial<Record<BatchStatus, string>> = {
  running: 'Another process is importing it now.',
  interrupted: 'Its process stopped mid-import (killed, crashed or powered off); the images counted above are stored.',
  cancelled: 'It was cancelled.',
  failed: 'An error stopped it.',
};

/** The bar of progressPrinter, with the stage's name on its own line each time a stage starts. */
function stageProgressPrinter(): ProgressListener | undefined {
  const bar = progressPrinter();
  if (!bar) return undefined;
  let stage: string | undefined;
  return (progress) => {
    if (progress.stage !== stage) {
      stage = progress.stage;
      if (progress.message) process.stderr.write(`\r${progress.message}\x1b[K\n`);
    }
    bar(progress);
  };
}

function printCheckReport(report: LibraryCheckReport, readOnly: boolean): void {
  const out = process.stdout;
  const checked = report.status === 'cancelled' ? ' (cancelled; counts are what it checked)' : '';
  out.write(
    `Library ${report.library}${readOnly ? ' (read-only)' : ''}: ${report.level} check${checked} of ${report.counts.images} images, ${report.counts.embeddings} embeddings, ${report.counts.managedCopies} library copies\n`,
  );
  if (report.temporaryFilesRemoved.length > 0) out.write(`Removed ${report.temporaryFilesRemoved.length} temporary files left by interrupted writes.\n`);
  for (const problem of report.problems) out.write(`  ${problem.repaired ? 'repaired' : 'problem'} [${problem.kind}] ${problem.message}\n`);
  const left = report.problems.filter((problem) => !problem.repaired).length;
  if (report.status === 'cancelled') {
    const stages = report.stages
      .filter((stage) => stage.state !== 'not-run')
      .map((stage) => `${stage.stage} ${stage.checked} of ${stage.total}${stage.state === 'cancelled' ? ' (stopped)' : ''}`);
    const notRun = report.stages.filter((stage) => stage.state === 'not-run').map((stage) => stage.stage);
    out.write(`Cancelled. Checked: ${stages.join(', ') || 'nothing'}.${notRun.length > 0 ? ` Not checked: ${notRun.join(', ')}.` : ''}\n`);
    out.write(`${left} problems found so far; the library may hold others. Repairs made are complete files. Run the check again for a full report.\n`);
    return;
  }
  out.write(report.ok ? 'OK: no problems left.\n' : `${left} problems left.\n`);
}

function printImportReport(report: ImportReport): void {
  const out = process.stdout;
  for (const outcome of report.outcomes) {
    if (outcome.outcome === 'failed') out.write(`failed   ${outcome.path}: ${outcome.reason}\n`);
  }
  for (const outcome of report.outcomes) {
    if (outcome.outcome === 'skipped') out.write(`skipped  ${outcome.path}: ${outcome.reason}\n`);
  }
  const resumed = report.resumed ? ' (resumed an interrupted import)' : '';
  out.write(
    `Batch ${report.batchId}${resumed}: ${report.imported} imported, ${report.duplicates} already in the library, ${report.failed} failed, ${report.skipped} skipped, of ${report.total}.\n`,
  );
  if (report.status === 'cancelled') out.write('Cancelled. Run the same command again to resume.\n');
  else if (report.imported === 0 && report.duplicates > 0 && report.failed === 0) out.write('Nothing new: every image was already in the library.\n');
}

function describeCounts(counts: Record<string, number>): string {
  return Object.entries(counts)
    .filter(([, count]) => count > 0)
    .map(([name, count]) => `${name} ${count}`)
    .join(', ');
}

function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = -1;
  do {
    value /= 1024;
    unit++;
  } while (value >= 1024 && unit < units.length - 1);
  return `${value.toFixed(1)} ${units[unit]}`;
}
