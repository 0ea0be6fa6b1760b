import { DermError } from '../../common/errors.js';
import { isLabelKind, labelKinds } from '../labels/label-kinds.js';

/**
 * The image-set filter of a labelling session: clauses that must all hold, written as in the CLI's
 * `--where`:
 *
 *   batch=3                 images of import batch 3
 *   case=SCIN-123           images of the case with this external key
 *   flag=blurry  flag!=blurry          has / has not the quality flag (automatic or manual)
 *   meta.KEY=VALUE  meta.KEY!=VALUE  meta.KEY~TEXT   metadata equals / differs (or is absent) / contains
 *   label.KIND=VALUE  label.KIND!=VALUE              some annotator's current label has / none has the value
 *   labelled  unlabelled  labelled=KIND  unlabelled=KIND   has any current label (of the kind) or none
 *
 * Deleted images are never included.
 */
export type FilterClause =
  | { field: 'batch'; op: '='; value: number }
  | { field: 'case'; op: '='; value: string }
  | { field: 'flag'; op: '=' | '!='; value: string }
  | { field: 'meta'; key: string; op: '=' | '!=' | '~'; value: string }
  | { field: 'label'; kind: string; op: '=' | '!='; value: string }
  | { field: 'labelled'; negate: boolean; kind: string | null };

const clausePattern = /^([a-z_]+)(?:\.([A-Za-z0-9_.-]+))?\s*(!=|=|~)\s*(.+)$/;

export function parseFilterClause(text: string, index = 0): FilterClause {
  const clause = text.trim();
  const where = `Filter clause ${index + 1} "${text}"`;
  const fail = (why: string): never => {
    throw new DermError('invalid-input', `${where}: ${why}.`, { field: 'where', clause: text, index });
  };
  if (clause === 'labelled' || clause === 'unlabelled') return { field: 'labelled', negate: clause === 'unlabelled', kind: null };
  const match = clausePattern.exec(clause);
  if (!match) fail('expected FIELD=VALUE, FIELD!=VALUE or meta.KEY~TEXT (fields: batch, case, flag, meta.KEY, label.KIND, labelled, unlabelled)');
  const [, field, key, op, rawValue] = match!;
  const value = rawValue!.trim();
  switch (field) {
    case 'batch': {
      const batch = Number(value);
      if (op !== '=' || key || !Number.isInteger(batch) || batch <= 0) fail('batch takes "=" and a positive whole number');
      return { field: 'batch', op: '=', value: batch };
    }
    case 'case':
      if (op !== '=' || key) fail('case takes "=" and a case key');
      return { field: 'case', op: '=', value };
    case 'flag':
      if (op === '~' || key) fail('flag takes "=" or "!=" and a flag name');
      return { field: 'flag', op: op as '=' | '!=', value };
    case 'meta':
      if (!key) fail('write meta.KEY, e.g. meta.body_parts~ARM');
      return { field: 'meta', key: key!, op: op as '=' | '!=' | '~', value };
    case 'label':
      if (!key || !isLabelKind(key)) fail(`write label.KIND with KIND one of ${labelKinds.join(', ')}`);
      if (op === '~') fail('label takes "=" or "!="');
      return { field: 'label', kind: key!, op: op as '=' | '!=', value };
    case 'labelled':
    case 'unlabelled':
      if (op !== '=' || key || !isLabelKind(value)) fail(`${field} takes no value or "=KIND" with KIND one of ${labelKinds.join(', ')}`);
      return { field: 'labelled', negate: field === 'unlabelled', kind: value };
    default:
      return fail(`unknown field "${field}"`);
  }
}

export function parseFilter(clauses: readonly string[]): FilterClause[] {
  return clauses.map((clause, index) => parseFilterClause(clause, index));
}

/**
 * SQL condition over `live_images i` (with its parameters) that holds for the images matching every
 * clause: deleted images are left out by reading the view, not by the condition.
 */
export function filterSql(clauses: readonly FilterClause[]): { sql: string; params: unknown[] } {
  const parts: string[] = [];
  const params: unknown[] = [];
  for (const clause of clauses) {
    switch (clause.field) {
      case 'batch':
        parts.push('i.batch_id = ?');
        params.push(clause.value);
        break;
      case 'case':
        parts.push('i.case_id IN (SELECT id FROM cases WHERE case_key = ?)');
        params.push(clause.value);
        break;
      case 'flag':
        parts.push(`${clause.op === '!=' ? 'NOT ' : ''}EXISTS (SELECT 1 FROM image_flags f WHERE f.image_id = i.id AND f.flag = ?)`);
        params.push(clause.value);
        break;
      case 'meta':
        if (clause.op === '~') {
          parts.push('EXISTS (SELECT 1 FROM image_metadata m WHERE m.image_id = i.id AND m.key = ? AND instr(lower(m.value), lower(?)) > 0)');
        } else {
          parts.push(`${clause.op === '!=' ? 'NOT ' : ''}EXISTS (SELECT 1 FROM image_metadata m WHERE m.image_id = i.id AND m.key = ? AND m.value = ?)`);
        }
        params.push(clause.key, clause.value);
        break;
      case 'label':
        // Uncorrelated IN: evaluated once through labels_kind_value, not once per image.
        parts.push(`i.id ${clause.op === '!=' ? 'NOT ' : ''}IN (SELECT l.image_id FROM labels l WHERE l.kind = ? AND l.value = ? AND l.superseded_at IS NULL)`);
        params.push(clause.kind, clause.value);
        break;
      case 'labelled':
        if (clause.kind === null) {
          parts.push(`${clause.negate ? 'NOT ' : ''}EXISTS (SELECT 1 FROM labels l WHERE l.image_id = i.id AND l.superseded_at IS NULL)`);
        } else {
          parts.push(`${clause.negate ? 'NOT ' : ''}EXISTS (SELECT 1 FROM labels l WHERE l.image_id = i.id AND l.kind = ? AND l.superseded_at IS NULL)`);
          params.push(clause.kind);
        }
        break;
    }
  }
  return { sql: parts.length > 0 ? parts.join(' AND ') : 'TRUE', params };
}
