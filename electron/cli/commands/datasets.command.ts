import type { Command } from 'commander';
import { DermError } from '../../common/errors.js';
import { formatIssue, type DatasetImportReport } from '../../core/datasets/dataset-report.js';
import type { ExportFilter, ExportFormat, ExportReport } from '../../core/export/export.service.js';
import { exportFormats } from '../../core/export/export-formats.js';
import type { JobStatus } from '../../core/jobs/job.js';
import { parseSearchFilter } from '../../core/search/search-filter.js';
import { exitCodes, parsePositiveInteger, printJobResult, progressPrinter, withCore, withInterrupt } from '../cli-context.js';

/**
 * `dermws dataset import-scin|import-isic|import-csv` and `dermws export`. With --json they print the
 * contract's schemas: datasetImportReportSchema (also the demo job's `datasetImport`) and
 * exportReportSchema (the exportStart job's result), documented in docs/datasets-and-export.md.
 */
export function registerDatasetsCommands(program: Command): void {
  const dataset = program.command('dataset').description('import datasets and metadata: SCIN, ISIC-style metadata, any CSV with a column mapping');

  dataset
    .command('import-scin')
    .description('import a SCIN download: <root>/dataset/scin_cases.csv, scin_labels.csv and the images they list (paths relative to <root>)')
    .argument('<root>', 'the folder that holds dataset/')
    .option('--copy', 'also copy each image into the library folder')
    .action(async (root: string, options: { copy?: boolean }, command: Command) => {
      await withCore(command, async (core, { json }) =>
        withInterrupt(async (signal) => {
          const progress = json ? undefined : progressPrinter();
          const report = await core.datasets.importScin(root, {
            copyIntoLibrary: Boolean(options.copy),
            signal,
            ...(progress ? { onProgress: progress } : {}),
          });
          await finishImport(report, Boolean(json));
        }),
      );
    });

  dataset
    .command('import-isic')
    .description(
      'add ISIC-style metadata (isic_id = image file name without extension; diagnosis, anatom_site_general, age_approx, sex, …) to images already imported',
    )
    .argument('<csv>', 'the metadata CSV')
    .action(async (csv: string, _options: unknown, command: Command) => {
      await withCore(command, async (core, { json }) =>
        withInterrupt(async (signal) => {
          const progress = json ? undefined : progressPrinter();
          const report = await core.datasets.importIsic(csv, { signal, ...(progress ? { onProgress: progress } : {}) });
          await finishImport(report, Boolean(json));
        }),
      );
    });

  dataset
    .command('import-csv')
    .description('add metadata, labels and cases from any CSV to images already imported, matched by relative path, then file name')
    .argument('<csv>', 'the CSV file (header line first)')
    .requiredOption('--map <mapping>', 'target=column pairs, e.g. image=filename,case=patient_id,meta.sex=sex,label.condition=dx,confidence.condition=conf')
    .option('--annotator <name>', 'annotator the labels are recorded under', 'csv-import')
    .action(async (csv: string, options: { map: string; annotator: string }, command: Command) => {
      // The mapping is checked before the library is opened, so a typo never touches it.
      const { parseColumnMapping } = await import('../../core/datasets/metadata-csv-format.js');
      const mapping = parseColumnMapping(options.map);
      await withCore(command, async (core, { json }) =>
        withInterrupt(async (signal) => {
          const progress = json ? undefined : progressPrinter();
          const report = await core.datasets.importCsv(csv, mapping, { annotator: options.annotator, signal, ...(progress ? { onProgress: progress } : {}) });
          await finishImport(report, Boolean(json));
        }),
      );
    });

  program
    .command('export')
    .description('export labels, flags and metadata (CSV), embeddings (npz/npy) and optionally images without EXIF/GPS, with a manifest.json, into <dir>')
    .argument('<dir>', 'export folder (created when missing)')
    .option('--format <formats...>', `one or more of ${exportFormats.join(', ')} (repeat or separate with commas)`, ['csv'])
    .option('--model <id>', 'model whose embeddings npz/npy hold (default: the only model with embeddings)')
    .option('--images', 'also write image copies re-encoded without EXIF/GPS under images/')
    .option('--overwrite', 'replace the files of an earlier export in <dir>')
    .option(
      '--deidentify',
      'for sharing: pseudonymous keys instead of file names, case keys and annotators; no paths, file hashes, import times, notes or settings',
    )
    .option('--drop-meta <key...>', 'leave these metadata columns out of images.csv (e.g. patient_name clinic)')
    .option('--batch <id>', 'only images of this import batch')
    .option('--case <key>', 'only images of this case')
    .option('--flag <flag...>', 'only images carrying every one of these quality flags')
    .option('--without-flag <flag...>', 'only images carrying none of these quality flags')
    .option('--meta <key=value...>', 'only images whose metadata has every one of these values')
    .option('--label <kind=value...>', 'only images with a current label of every one of these kinds and values')
    .option('--ids <list>', 'only these image ids (comma-separated)')
    .option('--where <clause...>', 'only images passing these clauses of the search filter grammar, e.g. flag!=blurry label.condition=eczema skin_type=IV')
    .action(async (dir: string, options: ExportCliOptions, command: Command) => {
      const formats = parseFormats(options.format);
      const filter = parseExportFilter(options);
      await withCore(command, async (core, { json }) =>
        withInterrupt(async (signal) => {
          const progress = json ? undefined : progressPrinter();
          const report = await core.exports.export({
            folder: dir,
            formats,
            images: Boolean(options.images),
            overwrite: Boolean(options.overwrite),
            deidentify: Boolean(options.deidentify),
            ...(options.dropMeta
              ? {
                  dropMetadata: options.dropMeta
                    .flatMap((entry) => entry.split(','))
                    .map((key) => key.trim())
                    .filter((key) => key !== ''),
                }
              : {}),
            filter,
            signal,
            ...(options.model ? { modelId: options.model } : {}),
            ...(progress ? { onProgress: progress } : {}),
          });
          if (json) await printJobResult('exportReportSchema', report);
          else printExportReport(report);
          process.exitCode = exitCodeFor(report.status);
        }),
      );
    });
}

interface ExportCliOptions {
  format: string[];
  model?: string;
  images?: boolean;
  overwrite?: boolean;
  deidentify?: boolean;
  dropMeta?: string[];
  batch?: string;
  case?: string;
  flag?: string[];
  withoutFlag?: string[];
  meta?: string[];
  label?: string[];
  ids?: string;
  where?: string[];
}

export function parseFormats(values: string[]): ExportFormat[] {
  const formats = values
    .flatMap((value) => value.split(','))
    .map((value) => value.trim())
    .filter((value) => value !== '');
  for (const format of formats) {
    if (!(exportFormats as readonly string[]).includes(format)) {
      throw new DermError('invalid-input', `--format "${format}" is not an export format; expected ${exportFormats.join(', ')}.`, {
        field: 'format',
        value: format,
      });
    }
  }
  return [...new Set(formats)] as ExportFormat[];
}

export function parseExportFilter(options: ExportCliOptions): ExportFilter {
  const filter: ExportFilter = {};
  if (options.batch !== undefined) filter.batchId = parsePositiveInteger('--batch', options.batch);
  if (options.case !== undefined) filter.caseKey = options.case;
  if (options.flag?.length) filter.flags = options.flag;
  if (options.withoutFlag?.length) filter.withoutFlags = options.withoutFlag;
  if (options.meta?.length) filter.metadata = Object.fromEntries(options.meta.map((pair) => splitPair('--meta', pair, 'key=value')));
  if (options.label?.length) filter.labels = options.label.map((pair) => splitPair('--label', pair, 'kind=value')).map(([kind, value]) => ({ kind, value }));
  if (options.where?.length) {
    // Checked here, before the library is opened, so a malformed clause never touches it.
    parseSearchFilter(options.where);
    filter.where = options.where;
  }
  if (options.ids !== undefined)
    filter.ids = options.ids
      .split(',')
      .filter((part) => part.trim() !== '')
      .map((part) => parsePositiveInteger('--ids', part.trim()));
  return filter;
}

function splitPair(option: string, pair: string, shape: string): [string, string] {
  const equals = pair.indexOf('=');
  if (equals <= 0) throw new DermError('invalid-input', `${option} "${pair}" must look like ${shape}.`, { field: option, value: pair });
  return [pair.slice(0, equals).trim(), pair.slice(equals + 1).trim()];
}

function exitCodeFor(status: JobStatus): number {
  if (status === 'cancelled') return exitCodes.cancelled;
  if (status === 'success') return exitCodes.ok;
  return exitCodes.partial;
}

const maxIssuesShown = 50;

async function finishImport(report: DatasetImportReport, json: boolean): Promise<void> {
  if (json) await printJobResult('datasetImportReportSchema', report);
  else printImportReport(report);
  process.exitCode = exitCodeFor(report.status);
}

function printImportReport(report: DatasetImportReport): void {
  const out = process.stdout;
  for (const issue of report.issues.slice(0, maxIssuesShown)) out.write(`${formatIssue(issue)}\n`);
  if (report.issues.length > maxIssuesShown) out.write(`… and ${report.issues.length - maxIssuesShown} more issues (--json lists them all)\n`);
  const { images, cases, metadata, labels } = report;
  // SCIN's rows are counted over both files, but only a scin_cases.csv row can place images in a case
  // (its labels row is joined to it), so "N of M rows" would read as half the dataset failing.
  if (report.dataset === 'scin') {
    out.write(
      `scin: ${report.rowsApplied} case rows placed at least one image in its case (${report.rows} rows read from scin_cases.csv and scin_labels.csv together).\n`,
    );
  } else {
    out.write(`${report.dataset}: ${report.rowsApplied} of ${report.rows} rows matched a library image and were applied.\n`);
  }
  if (report.dataset === 'scin') {
    out.write(`Images: ${images.imported} imported, ${images.alreadyInLibrary} already in the library, ${images.missing} missing, ${images.failed} failed.\n`);
  } else {
    out.write(`Images matched: ${images.matched}.\n`);
  }
  out.write(`Cases: ${cases.created} created, ${cases.existing} existing. Metadata: ${metadata.set} values set, ${metadata.unchanged} unchanged.\n`);
  out.write(`Labels: ${labels.changedSlots} image/kind/annotator slots changed, ${labels.unchangedSlots} unchanged (${labels.values} values).\n`);
  const errors = report.issues.filter((issue) => issue.severity === 'error').length;
  if (report.status === 'cancelled') out.write('Cancelled. Run the same command again to resume.\n');
  else if (errors > 0) out.write(`${errors} rows or values were not imported (see above); everything else was.\n`);
}

function printExportReport(report: ExportReport): void {
  const out = process.stdout;
  for (const issue of report.issues.slice(0, maxIssuesShown)) out.write(`note: ${issue.imageId === null ? '' : `image ${issue.imageId}: `}${issue.message}\n`);
  if (report.issues.length > maxIssuesShown) out.write(`… and ${report.issues.length - maxIssuesShown} more notes (--json lists them all)\n`);
  const { counts } = report;
  const dataFiles = report.files.filter((file) => !file.name.startsWith('images/'));
  for (const file of dataFiles) out.write(`${file.name.padEnd(40)} ${String(file.entries).padStart(8)} entries ${String(file.bytes).padStart(12)} bytes\n`);
  if (counts.imageFiles > 0) out.write(`images/ ${counts.imageFiles} image copies without EXIF/GPS\n`);
  out.write(
    `Exported ${counts.images} images (${counts.cases} cases, ${counts.labels} labels, ${counts.embeddings} embeddings${report.model ? ` of ${report.model.id}` : ''}) to ${report.folder}.\n`,
  );
  if (report.status === 'cancelled') out.write('Cancelled: the export is incomplete (no manifest.json). Run it again with --overwrite.\n');
}
