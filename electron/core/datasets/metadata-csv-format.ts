import { DermError } from '../../common/errors.js';
import type { CsvTable } from '../csv/csv.js';
import { isLabelKind, multiValuedKinds, type LabelKind } from '../labels/label-kinds.js';
import { IssueList } from './dataset-report.js';

/**
 * ISIC-style metadata and generic CSVs: one row per image, matched to images already in the library,
 * giving each image metadata, labels and optionally a case. Pure: turns a parsed table into row
 * records and issues; the service matches and writes.
 */
export interface MetadataRowLabel {
  kind: LabelKind;
  /** As written; resolved against the taxonomy by the service. */
  value: string;
  confidence: number | null;
  column: string;
}

export interface MetadataRowRecord {
  line: number;
  /** How to find the image: ISIC ids are file stems, generic rows give a relative path or file name. */
  match: { by: 'stem' | 'path-or-name'; value: string; column: string };
  caseKey: string | null;
  caseColumn: string | null;
  metadata: Record<string, { value: string; column: string }>;
  labels: MetadataRowLabel[];
}

export interface MetadataParseResult {
  records: MetadataRowRecord[];
  rows: number;
  issues: IssueList;
}

const metadataKeyPattern = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;

// ---------------------------------------------------------------------------------------------
// ISIC

export const isicAnnotator = 'isic';
const isicSexValues = new Set(['male', 'female']);

/**
 * ISIC metadata: `isic_id` is the image file's name without extension. `diagnosis`, or else the most
 * specific non-empty of `diagnosis_1..5` (newer exports go from "Benign" down to "Nevus"), becomes a
 * condition label by annotator 'isic'; `patient_id` (else `lesion_id`) groups images into a case; every
 * other non-empty column is stored as metadata under its own name (age_approx checked as a number, sex
 * as male/female), plus dataset = 'isic'.
 */
export function parseIsicTable(table: CsvTable): MetadataParseResult {
  if (!table.header.includes('isic_id')) {
    throw new DermError('invalid-input', `${table.file} is not an ISIC metadata file: it has no "isic_id" column.`, { file: table.file });
  }
  const issues = new IssueList();
  for (const bad of table.malformed) issues.error(table.file, bad.line, `the row ${bad.message}; it was skipped`);
  const caseColumn = table.header.includes('patient_id') ? 'patient_id' : table.header.includes('lesion_id') ? 'lesion_id' : null;
  const diagnosisColumns = table.header.includes('diagnosis')
    ? ['diagnosis']
    : table.header
        .filter((column) => /^diagnosis_\d$/.test(column))
        .sort()
        .reverse();
  const skip = new Set(['isic_id', ...diagnosisColumns, ...(caseColumn ? [caseColumn] : [])]);
  const seen = new Map<string, number>();
  const records: MetadataRowRecord[] = [];

  for (const row of table.rows) {
    const cell = (column: string) => (row.values[column] ?? '').trim();
    const id = cell('isic_id');
    if (id === '') {
      issues.error(table.file, row.line, 'the row has no isic_id; it was skipped', 'isic_id');
      continue;
    }
    const earlier = seen.get(id.toLowerCase());
    if (earlier !== undefined) {
      issues.error(table.file, row.line, `isic_id ${id} already appears on line ${earlier}; this row was skipped`, 'isic_id', id);
      continue;
    }
    seen.set(id.toLowerCase(), row.line);
    const record: MetadataRowRecord = {
      line: row.line,
      match: { by: 'stem', value: id, column: 'isic_id' },
      caseKey: caseColumn && cell(caseColumn) !== '' ? cell(caseColumn) : null,
      caseColumn,
      metadata: { dataset: { value: 'isic', column: 'isic_id' } },
      labels: [],
    };
    for (const column of table.header) {
      if (skip.has(column) || column === '') continue;
      const value = cell(column);
      if (value === '') continue;
      if (!metadataKeyPattern.test(column)) {
        issues.warning(table.file, row.line, 'the column name cannot be a metadata key (letters, digits, _ . - only); it was not stored', column);
        continue;
      }
      if (column === 'age_approx') {
        const age = Number(value);
        if (!Number.isFinite(age) || age < 0 || age > 130) {
          issues.error(table.file, row.line, 'expected an age in years from 0 to 130; age_approx was not set', column, value);
          continue;
        }
        record.metadata.age_approx = { value: String(age), column };
        continue;
      }
      if (column === 'sex') {
        if (!isicSexValues.has(value.toLowerCase())) {
          issues.error(table.file, row.line, 'expected male or female; sex was not set', column, value);
          continue;
        }
        record.metadata.sex = { value: value.toLowerCase(), column };
        continue;
      }
      record.metadata[column] = { value, column };
    }
    const diagnosisColumn = diagnosisColumns.find((column) => cell(column) !== '');
    if (diagnosisColumn) record.labels.push({ kind: 'condition', value: cell(diagnosisColumn), confidence: null, column: diagnosisColumn });
    records.push(record);
  }
  return { records, rows: table.rows.length + table.malformed.length, issues };
}

// ---------------------------------------------------------------------------------------------
// Generic CSV with a column mapping

export interface ColumnMapping {
  /** Column holding the image's path relative to its import folder, or its file name. */
  image: string;
  case?: string;
  metadata: Array<{ key: string; column: string }>;
  labels: Array<{ kind: LabelKind; column: string; confidenceColumn?: string }>;
}

/**
 * Parses `image=filename,case=patient_id,meta.sex=sex,label.condition=dx,confidence.condition=conf`.
 * Targets: image (required), case, meta.<key>, label.<kind>, confidence.<kind> (condition only).
 */
export function parseColumnMapping(spec: string): ColumnMapping {
  const fail = (message: string, part?: string): never => {
    throw new DermError('invalid-input', `--map ${part ? `"${part}"` : JSON.stringify(spec)}: ${message}`, { field: 'map', value: spec });
  };
  const mapping: ColumnMapping = { image: '', metadata: [], labels: [] };
  const confidences = new Map<LabelKind, string>();
  const targets = new Set<string>();
  const parts = spec
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== '');
  if (parts.length === 0) fail('is empty; expected e.g. image=filename,meta.sex=sex,label.condition=dx');
  for (const part of parts) {
    const equals = part.indexOf('=');
    if (equals <= 0 || equals === part.length - 1) fail('expected target=column', part);
    const target = part.slice(0, equals).trim();
    const column = part.slice(equals + 1).trim();
    if (targets.has(target)) fail(`the target "${target}" is mapped twice`, part);
    targets.add(target);
    if (target === 'image') mapping.image = column;
    else if (target === 'case') mapping.case = column;
    else if (target.startsWith('meta.')) {
      const key = target.slice('meta.'.length);
      if (!metadataKeyPattern.test(key)) fail(`"${key}" is not a metadata key (1–64 letters, digits, _ . -)`, part);
      mapping.metadata.push({ key, column });
    } else if (target.startsWith('label.')) {
      const kind = target.slice('label.'.length);
      if (!isLabelKind(kind)) fail(`"${kind}" is not a label kind`, part);
      mapping.labels.push({ kind: kind as LabelKind, column });
    } else if (target.startsWith('confidence.')) {
      const kind = target.slice('confidence.'.length);
      if (kind !== 'condition') fail('only condition labels have a confidence (confidence.condition=column)', part);
      confidences.set('condition', column);
    } else {
      fail(`unknown target "${target}"; expected image, case, meta.<key>, label.<kind> or confidence.condition`, part);
    }
  }
  if (mapping.image === '') fail('no image column: add image=<column holding the relative path or file name>');
  for (const [kind, column] of confidences) {
    const label = mapping.labels.find((entry) => entry.kind === kind);
    if (!label) fail(`confidence.${kind} needs label.${kind} too`);
    else label.confidenceColumn = column;
  }
  return mapping;
}

export function parseMappedTable(table: CsvTable, mapping: ColumnMapping): MetadataParseResult {
  const columns = [
    mapping.image,
    mapping.case,
    ...mapping.metadata.map((entry) => entry.column),
    ...mapping.labels.flatMap((entry) => [entry.column, entry.confidenceColumn]),
  ].filter((column): column is string => column !== undefined);
  const missing = [...new Set(columns)].filter((column) => !table.header.includes(column));
  if (missing.length > 0) {
    throw new DermError(
      'invalid-input',
      `${table.file} has no column ${missing.map((column) => `"${column}"`).join(', ')} (columns: ${table.header.join(', ')}).`,
      {
        file: table.file,
        missing,
      },
    );
  }
  const issues = new IssueList();
  for (const bad of table.malformed) issues.error(table.file, bad.line, `the row ${bad.message}; it was skipped`);
  const seen = new Map<string, number>();
  const records: MetadataRowRecord[] = [];
  for (const row of table.rows) {
    const cell = (column: string) => (row.values[column] ?? '').trim();
    const image = cell(mapping.image);
    if (image === '') {
      issues.error(table.file, row.line, 'no image named; the row was skipped', mapping.image);
      continue;
    }
    const key = image
      .replaceAll('\\', '/')
      .replace(/^(\.\/)+/, '')
      .toLowerCase();
    const earlier = seen.get(key);
    if (earlier !== undefined) {
      issues.error(table.file, row.line, `the image ${image} already appears on line ${earlier}; this row was skipped`, mapping.image, image);
      continue;
    }
    seen.set(key, row.line);
    const record: MetadataRowRecord = {
      line: row.line,
      match: { by: 'path-or-name', value: image, column: mapping.image },
      caseKey: mapping.case && cell(mapping.case) !== '' ? cell(mapping.case) : null,
      caseColumn: mapping.case ?? null,
      metadata: {},
      labels: [],
    };
    for (const entry of mapping.metadata) {
      const value = cell(entry.column);
      if (value !== '') record.metadata[entry.key] = { value, column: entry.column };
    }
    for (const entry of mapping.labels) {
      const raw = cell(entry.column);
      if (raw === '') continue;
      const values = multiValuedKinds.has(entry.kind)
        ? raw
            .split(';')
            .map((value) => value.trim())
            .filter((value) => value !== '')
        : [raw];
      let confidence: number | null = null;
      if (entry.confidenceColumn && cell(entry.confidenceColumn) !== '') {
        const parsed = Number(cell(entry.confidenceColumn));
        if (Number.isInteger(parsed) && parsed >= 1 && parsed <= 5) confidence = parsed;
        else
          issues.error(
            table.file,
            row.line,
            'expected a confidence from 1 to 5; the label was imported without one',
            entry.confidenceColumn,
            cell(entry.confidenceColumn),
          );
      }
      for (const value of values) record.labels.push({ kind: entry.kind, value, confidence, column: entry.column });
    }
    records.push(record);
  }
  return { records, rows: table.rows.length + table.malformed.length, issues };
}
