import type { JobStatus } from '../jobs/job.js';

/**
 * One problem found while importing a dataset, located precisely enough to fix it in a spreadsheet:
 * the file, the physical line (1-based, the header is line 1), the column and the offending value.
 * `error` issues mean something was not imported; `warning` issues mean it was imported with a caveat.
 */
export interface DatasetIssue {
  severity: 'error' | 'warning';
  /** File name as given (for SCIN: scin_cases.csv / scin_labels.csv; else the CSV path). */
  file: string;
  line: number | null;
  column?: string;
  value?: string;
  message: string;
}

export interface DatasetImportReport {
  dataset: 'scin' | 'isic' | 'csv';
  status: JobStatus;
  files: string[];
  /** Data rows read (all CSVs together), and rows that contributed something. */
  rows: number;
  rowsApplied: number;
  cases: { created: number; existing: number };
  images: {
    /** Image files new to the library. */
    imported: number;
    /** Image files already in the library (a re-run, or the same file listed twice). */
    alreadyInLibrary: number;
    /** Listed in the CSV but absent on disk. */
    missing: number;
    /** Present but could not be decoded or read. */
    failed: number;
    /** Images linked to a case or given metadata/labels by this import. */
    matched: number;
  };
  metadata: { set: number; unchanged: number };
  /**
   * Labels by slot (one image, kind and annotator): slots whose values changed, slots that already held
   * exactly these values (a re-run), and the number of label values the slots hold.
   */
  labels: { changedSlots: number; unchangedSlots: number; values: number };
  issues: DatasetIssue[];
  /** Import batch that brought the image files in (SCIN), when files were imported. */
  importBatchId: number | null;
}

export function emptyReport(dataset: DatasetImportReport['dataset'], files: string[]): DatasetImportReport {
  return {
    dataset,
    status: 'success',
    files,
    rows: 0,
    rowsApplied: 0,
    cases: { created: 0, existing: 0 },
    images: { imported: 0, alreadyInLibrary: 0, missing: 0, failed: 0, matched: 0 },
    metadata: { set: 0, unchanged: 0 },
    labels: { changedSlots: 0, unchangedSlots: 0, values: 0 },
    issues: [],
    importBatchId: null,
  };
}

/** Collects issues for one file. */
export class IssueList {
  readonly issues: DatasetIssue[] = [];

  error(file: string, line: number | null, message: string, column?: string, value?: string): void {
    this.issues.push(issue('error', file, line, message, column, value));
  }

  warning(file: string, line: number | null, message: string, column?: string, value?: string): void {
    this.issues.push(issue('warning', file, line, message, column, value));
  }
}

function issue(severity: DatasetIssue['severity'], file: string, line: number | null, message: string, column?: string, value?: string): DatasetIssue {
  const entry: DatasetIssue = { severity, file, line, message };
  if (column !== undefined) entry.column = column;
  if (value !== undefined) entry.value = value;
  return entry;
}

/** "scin_cases.csv line 7, column image_2_path: …" — how an issue reads in the CLI's text output. */
export function formatIssue(entry: DatasetIssue): string {
  const place = [entry.file, entry.line === null ? undefined : `line ${entry.line}`, entry.column ? `column ${entry.column}` : undefined]
    .filter(Boolean)
    .join(', ');
  const value = entry.value !== undefined ? ` (value ${JSON.stringify(entry.value)})` : '';
  return `${entry.severity}: ${place}: ${entry.message}${value}`;
}
