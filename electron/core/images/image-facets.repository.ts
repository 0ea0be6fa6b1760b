import type Database from 'better-sqlite3';
import { buildFilter, type ImageFilter } from './images.repository.js';

/** Which image-filter field a facet's values go into. */
export type FacetField = 'label' | 'fitzpatrick' | 'monkTone' | 'bodySite' | 'case' | 'session' | 'annotator' | 'flag' | 'batch';

export interface FacetValue {
  /** What the filter takes (a label code, 'V', a case key, a session id as text …). */
  value: string;
  /** What a person reads: the taxonomy's display name, 'V' rather than 'FST5', a session's name. */
  display: string;
  /** Images that match the current filter and have this value. */
  count: number;
}

export interface Facet {
  field: FacetField;
  /** The label kind, for field 'label'. */
  kind?: string;
  title: string;
  values: FacetValue[];
  /** Values with images that were left out of `values` (the rarest ones) to keep the answer small. */
  more: number;
}

/** Label kinds offered as their own label facet (the others have a field that also reads metadata). */
const labelFacetKinds: Array<{ kind: string; title: string; ordered: boolean }> = [
  { kind: 'condition', title: 'Condition', ordered: false },
  { kind: 'severity', title: 'Severity', ordered: true },
  { kind: 'gradable', title: 'Gradable', ordered: true },
  { kind: 'quality_flag', title: 'Quality label', ordered: false },
];

const romanNumerals = ['I', 'II', 'III', 'IV', 'V', 'VI'];
const fstToRoman = `CASE m.value ${romanNumerals.map((roman, index) => `WHEN 'FST${index + 1}' THEN '${roman}'`).join(' ')} END`;
const romanToFst = `CASE l.value ${romanNumerals.map((roman, index) => `WHEN '${roman}' THEN 'FST${index + 1}'`).join(' ')} END`;

export const maxFacetValues = 100;

/**
 * Counts for the library's filter panel, computed in SQLite under the current filter: for every
 * facet, how many of the filtered images have each value. Each facet reads its own index
 * (labels_kind_value, labels_annotator_current, session_items_image, image_flags_flag,
 * image_metadata_key_value, images_case, images_batch); figures on 100k images are in docs/benchmarks.md.
 */
export class ImageFacetsRepository {
  constructor(private readonly db: Database.Database) {}

  /**
   * Every facet under the filter; a facet the filter itself uses is counted without its own choice
   * (so the panel can offer its other values), every other facet under the whole filter.
   */
  facets(filter: ImageFilter = {}): { total: number; facets: Facet[] } {
    const whole = this.countUnder(filter);
    return {
      total: whole.total,
      facets: whole.facets.map((facet) => {
        if (!facetInUse(filter, facet)) return facet;
        return this.countUnder(withoutFacet(filter, facet), facetKey(facet)).facets[0] ?? facet;
      }),
    };
  }

  private countUnder(filter: ImageFilter, only?: string): { total: number; facets: Facet[] } {
    const { source, where, parameters } = buildFilter(filter);
    // The filtered ids are written once into a temporary table keyed by id, so each facet's query
    // tests membership with a rowid lookup instead of re-running the filter. With no filter and no
    // deleted images every image counts, and the facets read their indexes without the membership test.
    const hasDeleted = this.db.prepare('SELECT 1 FROM images WHERE deleted_at IS NOT NULL LIMIT 1').get() !== undefined;
    const unrestricted = source === 'live_images' && where === '' && !hasDeleted;
    if (!unrestricted) {
      this.db.exec('CREATE TEMP TABLE IF NOT EXISTS library_facet_ids (id INTEGER PRIMARY KEY)');
      this.db.exec('DELETE FROM temp.library_facet_ids');
      this.db.prepare(`INSERT INTO temp.library_facet_ids (id) SELECT i.id FROM ${source} i LEFT JOIN cases c ON c.id = i.case_id ${where}`).run(...parameters);
    }
    try {
      return this.countFacets(unrestricted, only);
    } finally {
      if (!unrestricted) this.db.exec('DELETE FROM temp.library_facet_ids');
    }
  }

  private countFacets(unrestricted: boolean, only: string | undefined): { total: number; facets: Facet[] } {
    const wants = (key: string) => only === undefined || only === key;
    const member = (column: string) => (unrestricted ? '1' : `${column} IN (SELECT id FROM temp.library_facet_ids)`);
    const all = <Row>(sql: string, ...parameters: unknown[]) => this.db.prepare<unknown[], Row>(sql).all(...parameters);
    const total = unrestricted
      ? this.db.prepare<unknown[], { n: number }>('SELECT COUNT(*) AS n FROM live_images').get()!.n
      : this.db.prepare<unknown[], { n: number }>('SELECT COUNT(*) AS n FROM temp.library_facet_ids').get()!.n;

    const names = new Map<string, { display: string; order: number }>();
    for (const row of all<{ kind: string; code: string; display: string; sortOrder: number }>(
      'SELECT kind, code, display_name AS display, sort_order AS sortOrder FROM taxonomy_entries',
    )) {
      names.set(`${row.kind}\u0000${row.code}`, { display: row.display, order: row.sortOrder });
    }
    const displayOf = (kind: string, code: string) => names.get(`${kind}\u0000${code}`)?.display ?? code;
    const orderOf = (kind: string, code: string) => names.get(`${kind}\u0000${code}`)?.order ?? Number.MAX_SAFE_INTEGER;

    const facets: Facet[] = [];
    const labelKinds = labelFacetKinds.filter((entry) => wants(`label:${entry.kind}`));
    const labelCounts =
      labelKinds.length === 0
        ? []
        : all<{ kind: string; value: string; n: number }>(
            `SELECT l.kind AS kind, l.value AS value, COUNT(DISTINCT l.image_id) AS n FROM labels l
             WHERE l.superseded_at IS NULL AND l.kind IN (${labelKinds.map(() => '?').join(', ')}) AND ${member('l.image_id')}
             GROUP BY l.kind, l.value`,
            ...labelKinds.map((entry) => entry.kind),
          );
    for (const { kind, title, ordered } of labelKinds) {
      const values = labelCounts.filter((row) => row.kind === kind).map((row) => ({ value: row.value, display: displayOf(kind, row.value), count: row.n }));
      if (ordered) values.sort((a, b) => orderOf(kind, a.value) - orderOf(kind, b.value) || a.value.localeCompare(b.value));
      facets.push(limited({ field: 'label', kind, title, values, more: 0 }, !ordered));
    }

    if (wants('fitzpatrick')) {
      // Fitzpatrick: images whose self-report says the type, plus labelled images whose self-report does not.
      const fitzpatrick = new Map<string, number>();
      for (const row of all<{ value: string; n: number }>(
        `SELECT ${fstToRoman} AS value, COUNT(*) AS n FROM image_metadata m WHERE m.key = 'fitzpatrick_self' AND ${member('m.image_id')} GROUP BY m.value`,
      )) {
        if (row.value !== null) fitzpatrick.set(row.value, (fitzpatrick.get(row.value) ?? 0) + row.n);
      }
      for (const row of all<{ value: string; n: number }>(
        `SELECT l.value AS value, COUNT(DISTINCT l.image_id) AS n FROM labels l
         WHERE l.kind = 'fitzpatrick' AND l.superseded_at IS NULL AND ${member('l.image_id')}
           AND NOT EXISTS (SELECT 1 FROM image_metadata m WHERE m.image_id = l.image_id AND m.key = 'fitzpatrick_self' AND ${romanToFst} = m.value)
         GROUP BY l.value`,
      )) {
        fitzpatrick.set(row.value, (fitzpatrick.get(row.value) ?? 0) + row.n);
      }
      facets.push({
        field: 'fitzpatrick',
        title: 'Fitzpatrick type',
        values: [...fitzpatrick]
          .map(([value, count]) => ({ value, display: value, count }))
          .sort((a, b) => rank(romanNumerals, a.value) - rank(romanNumerals, b.value) || a.value.localeCompare(b.value)),
        more: 0,
      });
    }

    if (wants('monkTone')) {
      const monk = all<{ value: string; n: number }>(
        `SELECT l.value AS value, COUNT(DISTINCT l.image_id) AS n FROM labels l
         WHERE l.kind = 'monk_tone' AND l.superseded_at IS NULL AND ${member('l.image_id')} GROUP BY l.value`,
      );
      facets.push({
        field: 'monkTone',
        title: 'Monk tone',
        values: monk
          .map((row) => ({ value: row.value, display: row.value, count: row.n }))
          .sort((a, b) => Number(a.value) - Number(b.value) || a.value.localeCompare(b.value)),
        more: 0,
      });
    }

    if (wants('bodySite')) {
      // Body site: body_parts lists are counted per distinct list (few) and split here; labelled sites
      // are added for images whose list does not already name them.
      const bodySites = new Map<string, number>();
      for (const row of all<{ value: string; n: number }>(
        `SELECT m.value AS value, COUNT(*) AS n FROM image_metadata m WHERE m.key = 'body_parts' AND ${member('m.image_id')} GROUP BY m.value`,
      )) {
        for (const site of new Set(
          row.value
            .split(';')
            .map((part) => part.trim())
            .filter((part) => part !== ''),
        ))
          bodySites.set(site, (bodySites.get(site) ?? 0) + row.n);
      }
      for (const row of all<{ value: string; n: number }>(
        `SELECT l.value AS value, COUNT(DISTINCT l.image_id) AS n FROM labels l
         WHERE l.kind = 'body_site' AND l.superseded_at IS NULL AND ${member('l.image_id')}
           AND NOT EXISTS (SELECT 1 FROM image_metadata m WHERE m.image_id = l.image_id AND m.key = 'body_parts' AND instr(';' || m.value || ';', ';' || l.value || ';') > 0)
         GROUP BY l.value`,
      )) {
        bodySites.set(row.value, (bodySites.get(row.value) ?? 0) + row.n);
      }
      facets.push(
        limited(
          {
            field: 'bodySite',
            title: 'Body site',
            values: [...bodySites].map(([value, count]) => ({ value, display: displayOf('body_site', value), count })),
            more: 0,
          },
          true,
        ),
      );
    }

    if (wants('case')) {
      const cases = all<{ caseId: number; n: number }>(
        `SELECT i.case_id AS caseId, COUNT(*) AS n FROM live_images i WHERE i.case_id IS NOT NULL AND ${member('i.id')}
         GROUP BY i.case_id ORDER BY n DESC, i.case_id LIMIT ${maxFacetValues + 1}`,
      );
      const caseCount = this.db
        .prepare<unknown[], { n: number }>(`SELECT COUNT(DISTINCT i.case_id) AS n FROM live_images i WHERE i.case_id IS NOT NULL AND ${member('i.id')}`)
        .get()!.n;
      const caseKeys = new Map(
        all<{ id: number; key: string }>(
          'SELECT id, case_key AS key FROM cases WHERE id IN (SELECT value FROM json_each(?))',
          JSON.stringify(cases.map((row) => row.caseId)),
        ).map((row) => [row.id, row.key]),
      );
      const caseValues = cases
        .slice(0, maxFacetValues)
        .map((row) => ({ value: caseKeys.get(row.caseId) ?? String(row.caseId), display: caseKeys.get(row.caseId) ?? String(row.caseId), count: row.n }));
      facets.push({ field: 'case', title: 'Case', values: caseValues, more: Math.max(0, caseCount - caseValues.length) });
    }

    if (wants('session')) {
      const sessions = all<{ id: number; name: string; n: number }>(
        `SELECT s.session_id AS id, ls.name AS name, COUNT(*) AS n FROM session_items s JOIN labelling_sessions ls ON ls.id = s.session_id
         JOIN live_images i ON i.id = s.image_id WHERE ${member('s.image_id')} GROUP BY s.session_id ORDER BY s.session_id`,
      );
      facets.push({
        field: 'session',
        title: 'Labelling session',
        values: sessions.map((row) => ({ value: String(row.id), display: row.name, count: row.n })),
        more: 0,
      });
    }

    if (wants('annotator')) {
      const annotators = all<{ name: string; n: number }>(
        `SELECT a.name AS name, (SELECT COUNT(DISTINCT l.image_id) FROM labels l WHERE l.annotator_id = a.id AND l.superseded_at IS NULL AND ${member('l.image_id')}) AS n
         FROM annotators a`,
      ).filter((row) => row.n > 0);
      facets.push(
        limited(
          { field: 'annotator', title: 'Annotator', values: annotators.map((row) => ({ value: row.name, display: row.name, count: row.n })), more: 0 },
          true,
        ),
      );
    }

    if (wants('flag')) {
      const flags = all<{ flag: string; n: number }>(
        `SELECT x.flag AS flag, COUNT(DISTINCT x.image_id) AS n FROM image_flags x JOIN live_images i ON i.id = x.image_id
         WHERE ${member('x.image_id')} GROUP BY x.flag ORDER BY x.flag`,
      );
      facets.push({
        field: 'flag',
        title: 'Quality flag',
        values: flags.map((row) => ({ value: row.flag, display: row.flag.replaceAll('_', ' '), count: row.n })),
        more: 0,
      });
    }

    if (wants('batch')) {
      const batches = all<{ id: number; startedAt: string; status: string; n: number }>(
        `SELECT b.id AS id, b.started_at AS startedAt, b.status AS status, (SELECT COUNT(*) FROM live_images i WHERE i.batch_id = b.id AND ${member('i.id')}) AS n
         FROM import_batches b ORDER BY b.id DESC`,
      ).filter((row) => row.n > 0);
      facets.push(
        limited(
          {
            field: 'batch',
            title: 'Import batch',
            values: batches.map((row) => ({
              value: String(row.id),
              display: `#${row.id} · ${row.startedAt.slice(0, 10)}${row.status === 'completed' ? '' : ` · ${row.status}`}`,
              count: row.n,
            })),
            more: 0,
          },
          false,
        ),
      );
    }

    return { total, facets };
  }
}

/** The facet's id as `only` names it: the field, and for label facets the kind. */
function facetKey(facet: { field: FacetField; kind?: string }): string {
  return facet.field === 'label' ? `label:${facet.kind}` : facet.field;
}

/** Whether the filter chooses a value of this facet. */
function facetInUse(filter: ImageFilter, facet: { field: FacetField; kind?: string }): boolean {
  switch (facet.field) {
    case 'label':
      return (filter.labels ?? []).some((label) => label.kind === facet.kind);
    case 'case':
      return filter.caseKey !== undefined;
    case 'session':
      return filter.sessionId !== undefined;
    case 'flag':
      return (filter.flags ?? []).length > 0;
    case 'batch':
      return filter.batchId !== undefined;
    default:
      return filter[facet.field] !== undefined;
  }
}

/** The filter without its choice for this facet. */
function withoutFacet(filter: ImageFilter, facet: { field: FacetField; kind?: string }): ImageFilter {
  const next: ImageFilter = { ...filter };
  switch (facet.field) {
    case 'label': {
      const labels = (filter.labels ?? []).filter((label) => label.kind !== facet.kind);
      if (labels.length > 0) next.labels = labels;
      else delete next.labels;
      break;
    }
    case 'case':
      delete next.caseKey;
      break;
    case 'session':
      delete next.sessionId;
      break;
    case 'flag':
      delete next.flags;
      break;
    case 'batch':
      delete next.batchId;
      break;
    default:
      delete next[facet.field];
  }
  return next;
}

function rank(order: readonly string[], value: string): number {
  const index = order.indexOf(value);
  return index < 0 ? order.length : index;
}

/** Keeps the most frequent values (sorted by count when asked) and counts the rest in `more`. */
function limited(facet: Facet, byCount: boolean): Facet {
  const values = byCount ? [...facet.values].sort((a, b) => b.count - a.count || a.display.localeCompare(b.display)) : facet.values;
  return { ...facet, values: values.slice(0, maxFacetValues), more: Math.max(0, values.length - maxFacetValues) };
}
