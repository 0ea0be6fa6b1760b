import { DermError } from '../../common/errors.js';
import { filterSql, parseFilterClause, type FilterClause } from '../sessions/image-filter.js';

/**
 * The `--where` grammar of similar-case search: every clause of the library's image filter
 * (sessions/image-filter.ts: batch=, case=, flag= / flag!=, meta.KEY= / != / ~, label.KIND= / !=,
 * labelled, unlabelled) plus three shorthands that look in both places a fact can live:
 *
 *   body_site=ARM       an annotator's body_site label is ARM, or the SCIN body_parts metadata lists ARM
 *   skin_type=III       Fitzpatrick III by label (I..VI) or by self-report metadata (FST3); 3, III and FST3 all work
 *   dataset=scin        the image's `dataset` metadata
 *
 * Each shorthand also takes "!=" (none of those hold). All clauses must hold.
 */
export type SearchFilterClause =
  | { field: 'library'; clause: FilterClause; text: string }
  | { field: 'body_site'; op: '=' | '!='; value: string; text: string }
  | { field: 'skin_type'; op: '=' | '!='; value: number; text: string }
  | { field: 'dataset'; op: '=' | '!='; value: string; text: string };

const romanNumerals = ['I', 'II', 'III', 'IV', 'V', 'VI'];
const shorthandPattern = /^(body_site|skin_type|dataset)\s*(!=|=|~)\s*(.*)$/;

function skinType(value: string): number | undefined {
  const text = value.trim().toUpperCase();
  const fromFst = /^FST([1-6])$/.exec(text);
  if (fromFst) return Number(fromFst[1]);
  if (/^[1-6]$/.test(text)) return Number(text);
  const roman = romanNumerals.indexOf(text);
  return roman >= 0 ? roman + 1 : undefined;
}

export function parseSearchFilterClause(text: string, index = 0): SearchFilterClause {
  const clause = text.trim();
  const where = `Filter clause ${index + 1} "${text}"`;
  const shorthand = shorthandPattern.exec(clause);
  if (!shorthand) return { field: 'library', clause: parseFilterClause(text, index), text };
  const [, field, op, rawValue] = shorthand;
  const value = rawValue!.trim();
  const fail = (why: string): never => {
    throw new DermError('invalid-input', `${where}: ${why}.`, { field: 'where', clause: text, index });
  };
  if (op === '~') fail(`${field} takes "=" or "!="`);
  if (value === '') fail(`${field} needs a value after "${op}"`);
  if (field === 'skin_type') {
    const type = skinType(value);
    if (type === undefined) fail(`skin_type must be a Fitzpatrick type written 1..6, I..VI or FST1..FST6; got "${value}"`);
    return { field: 'skin_type', op: op as '=' | '!=', value: type!, text };
  }
  return { field: field as 'body_site' | 'dataset', op: op as '=' | '!=', value, text };
}

export function parseSearchFilter(clauses: readonly string[]): SearchFilterClause[] {
  const split = clauses.flatMap((clause) => clause.split(/\s+AND\s+/i)).filter((clause) => clause.trim() !== '');
  return split.map((clause, index) => parseSearchFilterClause(clause, index));
}

/** SQL condition over `live_images i` for the images that pass every clause (the view leaves deleted images out). */
export function searchFilterSql(clauses: readonly SearchFilterClause[]): { sql: string; params: unknown[] } {
  const library = filterSql(clauses.flatMap((clause) => (clause.field === 'library' ? [clause.clause] : [])));
  const parts = [library.sql];
  const params = [...library.params];
  for (const clause of clauses) {
    const not = clause.field !== 'library' && clause.op === '!=' ? 'NOT ' : '';
    switch (clause.field) {
      case 'library':
        break;
      case 'body_site':
        parts.push(
          `${not}(EXISTS (SELECT 1 FROM labels l WHERE l.image_id = i.id AND l.kind = 'body_site' AND l.superseded_at IS NULL AND upper(l.value) = upper(?))
            OR EXISTS (SELECT 1 FROM image_metadata m WHERE m.image_id = i.id AND m.key = 'body_parts'
                       AND instr(';' || upper(m.value) || ';', ';' || upper(?) || ';') > 0))`,
        );
        params.push(clause.value, clause.value);
        break;
      case 'skin_type':
        parts.push(
          `${not}(EXISTS (SELECT 1 FROM labels l WHERE l.image_id = i.id AND l.kind = 'fitzpatrick' AND l.superseded_at IS NULL AND upper(l.value) = ?)
            OR EXISTS (SELECT 1 FROM image_metadata m WHERE m.image_id = i.id AND m.key = 'fitzpatrick_self' AND upper(m.value) = ?))`,
        );
        params.push(romanNumerals[clause.value - 1], `FST${clause.value}`);
        break;
      case 'dataset':
        parts.push(`${not}EXISTS (SELECT 1 FROM image_metadata m WHERE m.image_id = i.id AND m.key = 'dataset' AND lower(m.value) = lower(?))`);
        params.push(clause.value);
        break;
    }
  }
  return { sql: parts.join(' AND '), params };
}
