import path from 'node:path';
import { DermError } from '../../common/errors.js';
import type { CsvRow, CsvTable } from '../csv/csv.js';
import type { LabelKind } from '../labels/label-kinds.js';
import { IssueList } from './dataset-report.js';
import { fitzpatrickMetadataValue, fitzpatrickValue, gradableValue, monkToneValue } from './label-values.js';
import { parseNumberList, parseStringList, parseStringNumberDict } from './python-literal.js';

/**
 * How SCIN's two CSVs become library records. Pure: reads parsed tables, returns cases and issues;
 * the service does the writing. What maps where (documented in docs/datasets-and-export.md):
 *
 * - image_metadata (per image of the case): sex (from sex_at_birth, lower case), age_group,
 *   fitzpatrick_self (self-reported FST1..FST6), body_parts (the body_parts_* columns that are YES, as
 *   SCIN codes joined by ';'), shot_type (image_N_shot_type), monk_tone_us / monk_tone_india,
 *   condition_weights (weighted_skin_condition_label as JSON), dataset = 'scin'.
 * - labels, origin 'imported' (dermatologist judgements): condition (one label per distinct condition
 *   name, confidence = the highest confidence any mention gave it) by 'scin-dermatologists';
 *   gradable yes/no and fitzpatrick I..VI by 'scin-dermatologist-1..3' (the labelling slot N of the
 *   _N columns, not a fixed person); monk_tone by 'scin-monk-us' and 'scin-monk-india'.
 */
export const scinFiles = { cases: 'scin_cases.csv', labels: 'scin_labels.csv' } as const;
export const scinConditionAnnotator = 'scin-dermatologists';
export const scinSlotAnnotator = (slot: number): string => `scin-dermatologist-${slot}`;
export const scinMonkAnnotator = (panel: 'us' | 'india'): string => `scin-monk-${panel}`;

export interface ScinImageReference {
  /** As written in the CSV, with forward slashes: relative to the dataset root and the npz key. */
  path: string;
  column: string;
  line: number;
  shotType: string | null;
}

export interface ScinLabel {
  kind: LabelKind;
  /** For conditions the SCIN name (the service resolves it to a taxonomy code); else the final value. */
  value: string;
  confidence: number | null;
  annotator: string;
  file: string;
  line: number;
  column: string;
}

export interface ScinCaseRecord {
  caseId: string;
  line: number;
  labelsLine: number | null;
  images: ScinImageReference[];
  metadata: Record<string, string>;
  labels: ScinLabel[];
}

export interface ScinParseResult {
  cases: ScinCaseRecord[];
  rows: number;
  issues: IssueList;
}

const ageGroupPattern = /^AGE_(\d+_TO_\d+|\d+_OR_ABOVE|\d+_OR_BELOW|UNDER_\d+|UNKNOWN)$/;
const sexValues = new Set(['FEMALE', 'MALE', 'OTHER_OR_UNSPECIFIED']);
const shotTypePattern = /^[A-Z][A-Z_]*$/;

export function parseScinTables(cases: CsvTable, labels: CsvTable): ScinParseResult {
  requireColumns(cases, ['case_id', 'image_1_path']);
  requireColumns(labels, ['case_id']);
  const issues = new IssueList();
  for (const bad of cases.malformed) issues.error(scinFiles.cases, bad.line, `the row ${bad.message}; it was skipped`);
  for (const bad of labels.malformed) issues.error(scinFiles.labels, bad.line, `the row ${bad.message}; it was skipped`);

  const records = new Map<string, ScinCaseRecord>();
  for (const row of cases.rows) {
    const caseId = (row.values.case_id ?? '').trim();
    if (caseId === '') {
      issues.error(scinFiles.cases, row.line, 'the row has no case_id; it was skipped', 'case_id');
      continue;
    }
    const earlier = records.get(caseId);
    if (earlier) {
      issues.error(scinFiles.cases, row.line, `case_id ${caseId} already appears on line ${earlier.line}; this row was skipped`, 'case_id', caseId);
      continue;
    }
    records.set(caseId, caseRecord(caseId, row, cases.header, issues));
  }

  const labelLines = new Map<string, number>();
  for (const row of labels.rows) {
    const caseId = (row.values.case_id ?? '').trim();
    if (caseId === '') {
      issues.error(scinFiles.labels, row.line, 'the row has no case_id; it was skipped', 'case_id');
      continue;
    }
    const earlierLine = labelLines.get(caseId);
    if (earlierLine !== undefined) {
      issues.error(scinFiles.labels, row.line, `case_id ${caseId} already has labels on line ${earlierLine}; this row was skipped`, 'case_id', caseId);
      continue;
    }
    labelLines.set(caseId, row.line);
    const record = records.get(caseId);
    if (!record) {
      issues.error(scinFiles.labels, row.line, `case_id ${caseId} matches no case in ${scinFiles.cases}; its labels were skipped`, 'case_id', caseId);
      continue;
    }
    record.labelsLine = row.line;
    applyLabelsRow(record, row, issues);
  }
  return { cases: [...records.values()], rows: cases.rows.length + cases.malformed.length + labels.rows.length + labels.malformed.length, issues };
}

function requireColumns(table: CsvTable, columns: string[]): void {
  const missing = columns.filter((column) => !table.header.includes(column));
  if (missing.length > 0) {
    throw new DermError('invalid-input', `${table.file} is not a SCIN file: it has no ${missing.map((name) => `"${name}"`).join(', ')} column.`, {
      file: table.file,
      missing,
    });
  }
}

function caseRecord(caseId: string, row: CsvRow, header: string[], issues: IssueList): ScinCaseRecord {
  const file = scinFiles.cases;
  const cell = (column: string) => (row.values[column] ?? '').trim();
  const metadata: Record<string, string> = { dataset: 'scin' };

  const ageGroup = cell('age_group');
  if (ageGroup !== '') {
    if (ageGroupPattern.test(ageGroup)) metadata.age_group = ageGroup;
    else
      issues.error(file, row.line, 'not an age group (expected e.g. AGE_18_TO_29, AGE_80_OR_ABOVE, AGE_UNKNOWN); age_group was not set', 'age_group', ageGroup);
  }
  const sex = cell('sex_at_birth');
  if (sex !== '') {
    if (sexValues.has(sex)) metadata.sex = sex.toLowerCase();
    else issues.error(file, row.line, 'expected FEMALE, MALE or OTHER_OR_UNSPECIFIED; sex was not set', 'sex_at_birth', sex);
  }
  const fitzpatrick = cell('fitzpatrick_skin_type');
  if (fitzpatrick !== '' && !/^NONE/.test(fitzpatrick)) {
    const value = fitzpatrickMetadataValue(fitzpatrick);
    if (value.ok) metadata.fitzpatrick_self = value.value;
    else issues.error(file, row.line, `${value.message}; fitzpatrick_self was not set`, 'fitzpatrick_skin_type', fitzpatrick);
  }
  const bodyParts: string[] = [];
  for (const column of header.filter((name) => name.startsWith('body_parts_'))) {
    const value = cell(column).toUpperCase();
    if (value === 'YES' || value === 'TRUE') bodyParts.push(column.slice('body_parts_'.length).toUpperCase());
    else if (value !== '' && value !== 'NO' && value !== 'FALSE')
      issues.warning(file, row.line, 'expected YES or an empty cell; read as not selected', column, cell(column));
  }
  if (bodyParts.length > 0) metadata.body_parts = bodyParts.join(';');

  const images: ScinImageReference[] = [];
  for (let slot = 1; slot <= 3; slot++) {
    const column = `image_${slot}_path`;
    const raw = cell(column);
    if (raw === '') continue;
    const relative = raw.replaceAll('\\', '/').replace(/^\.\//, '');
    if (path.posix.isAbsolute(relative) || /^[A-Za-z]:/.test(relative) || path.posix.normalize(relative).split('/').includes('..')) {
      issues.error(file, row.line, 'an image path must be relative to the dataset folder and stay inside it; the image was skipped', column, raw);
      continue;
    }
    if (images.some((image) => image.path === relative)) {
      issues.warning(file, row.line, `the same image is already listed in ${images.find((image) => image.path === relative)!.column}`, column, raw);
      continue;
    }
    const shot = cell(`image_${slot}_shot_type`);
    let shotType: string | null = null;
    if (shot !== '') {
      if (shotTypePattern.test(shot)) shotType = shot;
      else
        issues.error(
          file,
          row.line,
          'expected a shot type such as CLOSE_UP, AT_AN_ANGLE or AT_DISTANCE; shot_type was not set',
          `image_${slot}_shot_type`,
          shot,
        );
    }
    images.push({ path: relative, column, line: row.line, shotType });
  }
  if (images.length === 0) issues.warning(file, row.line, `case ${caseId} lists no image`, 'image_1_path');
  return { caseId, line: row.line, labelsLine: null, images, metadata, labels: [] };
}

function applyLabelsRow(record: ScinCaseRecord, row: CsvRow, issues: IssueList): void {
  const file = scinFiles.labels;
  const cell = (column: string) => (row.values[column] ?? '').trim();
  const label = (kind: LabelKind, value: string, annotator: string, column: string, confidence: number | null = null) =>
    record.labels.push({ kind, value, confidence, annotator, file, line: row.line, column });

  const namesColumn = 'dermatologist_skin_condition_on_label_name';
  const confidenceColumn = 'dermatologist_skin_condition_confidence';
  let names: string[] = [];
  try {
    names = parseStringList(cell(namesColumn))
      .map((name) => name.trim())
      .filter((name) => name !== '');
  } catch (error) {
    issues.error(file, row.line, `${(error as Error).message} No condition labels were imported for this case.`, namesColumn, cell(namesColumn));
  }
  let confidences: Array<number | null> = names.map(() => null);
  if (names.length > 0) {
    try {
      const parsed = parseNumberList(cell(confidenceColumn));
      if (parsed.length === names.length) {
        confidences = parsed.map((value) => (Number.isInteger(value) && value >= 1 && value <= 5 ? value : null));
        if (confidences.some((value) => value === null)) {
          issues.warning(
            file,
            row.line,
            'confidences must be whole numbers from 1 to 5; those outside were left empty',
            confidenceColumn,
            cell(confidenceColumn),
          );
        }
      } else if (cell(confidenceColumn) !== '') {
        issues.error(
          file,
          row.line,
          `${parsed.length} confidences for ${names.length} condition names; the conditions were imported without confidences`,
          confidenceColumn,
          cell(confidenceColumn),
        );
      }
    } catch (error) {
      issues.error(file, row.line, `${(error as Error).message} The conditions were imported without confidences.`, confidenceColumn, cell(confidenceColumn));
    }
  }
  // One label per distinct condition; SCIN lists one mention per dermatologist, so keep the strongest.
  const best = new Map<string, number | null>();
  names.forEach((name, index) => {
    const confidence = confidences[index] ?? null;
    const previous = best.get(name);
    if (!best.has(name) || (confidence !== null && (previous === null || previous === undefined || confidence > previous))) best.set(name, confidence);
  });
  for (const [name, confidence] of best) label('condition', name, scinConditionAnnotator, namesColumn, confidence);

  const weightsColumn = 'weighted_skin_condition_label';
  if (cell(weightsColumn) !== '') {
    try {
      const weights = parseStringNumberDict(cell(weightsColumn));
      if (weights.size > 0) record.metadata.condition_weights = JSON.stringify(Object.fromEntries(weights));
    } catch (error) {
      issues.error(file, row.line, `${(error as Error).message} condition_weights was not set.`, weightsColumn, cell(weightsColumn));
    }
  }

  for (let slot = 1; slot <= 3; slot++) {
    const gradableColumn = `dermatologist_gradable_for_skin_condition_${slot}`;
    const gradable = cell(gradableColumn);
    if (gradable !== '') {
      const value = gradableValue(gradable);
      if (value.ok) label('gradable', value.value, scinSlotAnnotator(slot), gradableColumn);
      else issues.error(file, row.line, value.message, gradableColumn, gradable);
    }
    const fitzpatrickGradableColumn = `dermatologist_gradable_for_fitzpatrick_skin_type_${slot}`;
    const fitzpatrickColumn = `dermatologist_fitzpatrick_skin_type_label_${slot}`;
    const fitzpatrickGradable = cell(fitzpatrickGradableColumn);
    const notGradable =
      fitzpatrickGradable !== '' && gradableValue(fitzpatrickGradable).ok && (gradableValue(fitzpatrickGradable) as { value: string }).value === 'no';
    const fitzpatrick = cell(fitzpatrickColumn);
    if (fitzpatrick !== '' && !notGradable && !/^NONE/.test(fitzpatrick.toUpperCase())) {
      const value = fitzpatrickValue(fitzpatrick);
      if (value.ok) label('fitzpatrick', value.value, scinSlotAnnotator(slot), fitzpatrickColumn);
      else issues.error(file, row.line, value.message, fitzpatrickColumn, fitzpatrick);
    }
  }

  for (const panel of ['us', 'india'] as const) {
    const column = `monk_skin_tone_label_${panel}`;
    const raw = cell(column);
    if (raw === '') continue;
    const value = monkToneValue(raw);
    if (!value.ok) {
      issues.error(file, row.line, value.message, column, raw);
      continue;
    }
    record.metadata[`monk_tone_${panel}`] = value.value;
    label('monk_tone', value.value, scinMonkAnnotator(panel), column);
  }
}
