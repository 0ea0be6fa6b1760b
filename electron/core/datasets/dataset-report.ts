import type { z } from 'zod';
import type { datasetImportReportSchema, datasetIssueSchema } from '../../common/contract.js';

export type DatasetIssue = z.infer<typeof datasetIssueSchema>;
export type DatasetImportReport = z.infer<typeof datasetImportReportSchema>;

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
