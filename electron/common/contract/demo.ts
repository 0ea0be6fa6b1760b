import { z } from 'zod';
import { defineCall } from '../contract-core.js';
import { embedReportSchema } from './export-models.js';
import { jobStartedSchema, jobResultStatusSchema, emptyInput } from './shared.js';

/** The demo library, and the dataset-import report it embeds (also what `dermws dataset import-*` prints). */

/**
 * One problem found while importing a dataset, located precisely enough to fix it in a spreadsheet:
 * the file, the physical line (1-based, the header is line 1), the column and the offending value.
 * `error` issues mean something was not imported; `warning` issues mean it was imported with a caveat.
 */
export const datasetIssueSchema = z.object({
  severity: z.enum(['error', 'warning']),
  /** File name as given (for SCIN: scin_cases.csv / scin_labels.csv; else the CSV path). */
  file: z.string(),
  line: z.int().nullable(),
  column: z.string().optional(),
  value: z.string().optional(),
  message: z.string(),
});

/** What a dataset import reports (`dermws dataset import-*`; the demo job's `datasetImport`). */
export const datasetImportReportSchema = z.object({
  dataset: z.enum(['scin', 'isic', 'csv']),
  status: jobResultStatusSchema,
  files: z.array(z.string()),
  /** Data rows read (all CSVs together), and rows that contributed something. */
  rows: z.int(),
  rowsApplied: z.int(),
  cases: z.object({ created: z.int(), existing: z.int() }),
  images: z.object({
    /** Image files new to the library. */
    imported: z.int(),
    /** Image files already in the library (a re-run, or the same file listed twice). */
    alreadyInLibrary: z.int(),
    /** Listed in the CSV but absent on disk. */
    missing: z.int(),
    /** Present but could not be decoded or read. */
    failed: z.int(),
    /** Images linked to a case or given metadata/labels by this import. */
    matched: z.int(),
  }),
  metadata: z.object({ set: z.int(), unchanged: z.int() }),
  /**
   * Labels by slot (one image, kind and annotator): slots whose values changed, slots that already held
   * exactly these values (a re-run), and the number of label values the slots hold.
   */
  labels: z.object({ changedSlots: z.int(), unchangedSlots: z.int(), values: z.int() }),
  issues: z.array(datasetIssueSchema),
  /** Import batch that brought the image files in (SCIN), when files were imported. */
  importBatchId: z.int().nullable(),
});

/** The result of the demo job (JobInfo.result of demoStart) and what `dermws demo --json` prints. */
export const demoReportSchema = z.object({
  status: jobResultStatusSchema,
  libraryFolder: z.string(),
  /** The generated dataset: `<folder>/dataset/scin_cases.csv`, `scin_labels.csv`, `images/`. */
  datasetFolder: z.string(),
  /** A photo that is not in the library, for trying similar-case search with an outside photo. */
  outsidePhoto: z.string(),
  cases: z.int(),
  photos: z.int(),
  /** Listed in the CSV but broken on purpose (the import reports them). */
  brokenFiles: z.array(z.string()),
  /** Copies made on purpose: byte-identical, same pixels re-encoded, and a slightly brighter re-take. */
  duplicateFiles: z.object({ byteCopy: z.string(), pixelCopy: z.string(), nearCopy: z.string() }),
  datasetImport: datasetImportReportSchema,
  /** The second reader's condition labels: label slots changed and unchanged, label values stored. */
  secondReader: z.object({ changedSlots: z.int(), unchangedSlots: z.int(), labels: z.int() }),
  embedding: embedReportSchema.nullable(),
});

export const demoCalls = {
  demoStart: defineCall({
    description:
      'Fills an empty library with the demo data (a generated SCIN-shaped dataset on all six Fitzpatrick types, two readers, broken and duplicate files), imports and embeds it; run again to resume after a cancel.',
    startsJob: 'demo',
    input: emptyInput,
    output: jobStartedSchema,
  }),
};
