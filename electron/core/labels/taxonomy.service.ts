import fs from 'node:fs';
import path from 'node:path';
import { DermError } from '../../common/errors.js';
import { parseCsvTable } from '../csv/csv.js';
import type { SettingsRepository } from '../library/settings.repository.js';
import { labelKinds, taxonomyKinds, type LabelKind } from './label-kinds.js';
import { starterTaxonomy, starterTaxonomyVersion } from './starter-taxonomy.js';
import type { TaxonomyEntry, TaxonomyRepository } from './taxonomy.repository.js';

export type TaxonomyKind = Exclude<LabelKind, 'note'>;

export interface TaxonomyListEntry extends TaxonomyEntry {
  /** Number of ancestors (0 at the top of the hierarchy). */
  depth: number;
  /** Current labels that use this code. */
  labelCount: number;
}

/** One problem in an imported taxonomy file, located by CSV line or JSON path. */
export interface TaxonomyImportProblem {
  line?: number;
  path?: string;
  field: string;
  value: string;
  message: string;
}

export interface TaxonomyImportReport {
  file: string;
  added: number;
  updated: number;
  entries: number;
}

export const taxonomyCodePattern = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const starterVersionSetting = 'taxonomy.starterVersion';
const maxDisplayNameLength = 200;

interface LocatedEntry {
  where: { line?: number; path?: string };
  raw: Record<string, unknown>;
}

function describeWhere(file: string, where: { line?: number; path?: string }): string {
  return where.line !== undefined ? `${file} line ${where.line}` : `${file} ${where.path}`;
}

/**
 * The vocabularies of the label kinds: a starter taxonomy installed on first use, user imports from CSV
 * or JSON (validated entry by entry, all or nothing), listing, and removal guarded by usage counts.
 */
export class TaxonomyService {
  private starterChecked = false;

  constructor(
    private readonly repository: TaxonomyRepository,
    private readonly settings: SettingsRepository,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** Installs the starter taxonomy once per starter version; entries the user removed are not brought back. */
  ensureStarter(): void {
    if (this.starterChecked) return;
    const installed = this.settings.get<number>(starterVersionSetting) ?? 0;
    if (installed >= starterTaxonomyVersion) {
      this.starterChecked = true;
      return;
    }
    this.repository.transaction(() => {
      const fresh: TaxonomyEntry[] = [];
      const existing = this.repository.all();
      const takenHotkeys = new Set(existing.filter((entry) => entry.hotkey).map((entry) => `${entry.kind}\u0000${entry.hotkey}`));
      const existingCodes = new Set(existing.map((entry) => `${entry.kind}\u0000${entry.code}`));
      for (const entry of starterTaxonomy()) {
        if (existingCodes.has(`${entry.kind}\u0000${entry.code}`)) continue;
        const hotkeyKey = `${entry.kind}\u0000${entry.hotkey}`;
        // A user's own hotkey wins over the starter's.
        const hotkey = entry.hotkey && !takenHotkeys.has(hotkeyKey) ? entry.hotkey : null;
        if (hotkey) takenHotkeys.add(hotkeyKey);
        fresh.push({
          kind: entry.kind,
          code: entry.code,
          displayName: entry.displayName,
          parentCode: entry.parentCode ?? null,
          hotkey,
          sortOrder: entry.sortOrder ?? 0,
          builtIn: true,
        });
      }
      this.repository.upsert(fresh, this.now().toISOString());
      this.settings.set(starterVersionSetting, starterTaxonomyVersion);
    });
    this.starterChecked = true;
  }

  list(kind?: TaxonomyKind): TaxonomyListEntry[] {
    this.ensureStarter();
    if (kind !== undefined && !(taxonomyKinds as string[]).includes(kind)) {
      throw new DermError('invalid-input', `kind "${kind}" has no taxonomy; expected one of ${taxonomyKinds.join(', ')}.`, { field: 'kind', value: kind });
    }
    const entries = this.repository.all(kind);
    const counts = this.repository.labelUseCounts();
    const byKey = new Map(entries.map((entry) => [`${entry.kind}\u0000${entry.code}`, entry]));
    const depthOf = (entry: TaxonomyEntry): number => {
      let depth = 0;
      let parent = entry.parentCode;
      const seen = new Set<string>();
      while (parent && !seen.has(parent)) {
        seen.add(parent);
        depth++;
        parent = byKey.get(`${entry.kind}\u0000${parent}`)?.parentCode ?? null;
      }
      return depth;
    };
    // Depth-first so each group is followed by its children, kinds in their canonical order.
    const ordered: TaxonomyListEntry[] = [];
    const kindOrder = (value: string) => labelKinds.indexOf(value as LabelKind);
    const sorted = [...entries].sort((a, b) => kindOrder(a.kind) - kindOrder(b.kind) || a.sortOrder - b.sortOrder || a.code.localeCompare(b.code));
    const children = new Map<string, TaxonomyEntry[]>();
    for (const entry of sorted) {
      const parentKey =
        entry.parentCode && byKey.has(`${entry.kind}\u0000${entry.parentCode}`) ? `${entry.kind}\u0000${entry.parentCode}` : `${entry.kind}\u0000`;
      const siblings = children.get(parentKey);
      if (siblings) siblings.push(entry);
      else children.set(parentKey, [entry]);
    }
    const visit = (entry: TaxonomyEntry) => {
      ordered.push({ ...entry, depth: depthOf(entry), labelCount: counts.get(`${entry.kind}\u0000${entry.code}`) ?? 0 });
      for (const child of children.get(`${entry.kind}\u0000${entry.code}`) ?? []) visit(child);
    };
    for (const kindName of taxonomyKinds) for (const entry of children.get(`${kindName}\u0000`) ?? []) visit(entry);
    return ordered;
  }

  get(kind: TaxonomyKind, code: string): TaxonomyEntry | undefined {
    this.ensureStarter();
    return this.repository.get(kind, code);
  }

  /**
   * Maps what a person or a dataset wrote to a taxonomy code: the code itself, the code or display name
   * in any letter case, and for Fitzpatrick also "FST3"/"3" → "III". Undefined when nothing matches.
   */
  resolve(kind: TaxonomyKind, raw: string): string | undefined {
    this.ensureStarter();
    const text = raw.trim();
    if (text === '') return undefined;
    const exact = this.repository.get(kind, text);
    if (exact) return exact.code;
    const lower = text.toLowerCase();
    const entries = this.repository.all(kind);
    const byCode = entries.find((entry) => entry.code.toLowerCase() === lower);
    if (byCode) return byCode.code;
    const byName = entries.find((entry) => entry.displayName.toLowerCase() === lower);
    if (byName) return byName.code;
    if (kind === 'fitzpatrick') {
      const digit = /^(?:fst|type\s*)?([1-6])$/i.exec(text);
      if (digit) return ['I', 'II', 'III', 'IV', 'V', 'VI'][Number(digit[1]) - 1];
    }
    if (kind === 'gradable') {
      if (['y', 'true', '1'].includes(lower)) return 'yes';
      if (['n', 'false', '0'].includes(lower)) return 'no';
    }
    return undefined;
  }

  /** Like resolve, but an unknown value is an error that names it and the kind. */
  requireCode(kind: TaxonomyKind, raw: string, field = 'value'): string {
    const code = this.resolve(kind, raw);
    if (code !== undefined) return code;
    const examples = this.repository
      .all(kind)
      .slice(0, 8)
      .map((entry) => entry.code);
    throw new DermError(
      'invalid-input',
      `${field} "${raw}" is not in the ${kind} taxonomy (e.g. ${examples.join(', ')}${examples.length === 8 ? ', …' : ''}); import it first with "dermws taxonomy import".`,
      { field, kind, value: raw },
    );
  }

  /**
   * Adds entries for values a dataset uses that the taxonomy lacks (e.g. SCIN's rarer conditions), with a
   * code made from the name. Returns the code for every given name, in order.
   */
  addMissing(kind: TaxonomyKind, names: string[]): string[] {
    this.ensureStarter();
    const codes: string[] = [];
    const fresh: TaxonomyEntry[] = [];
    const existing = this.repository.all(kind);
    let nextOrder = existing.reduce((max, entry) => Math.max(max, entry.sortOrder), 0) + 1;
    for (const name of names) {
      const resolved = this.resolve(kind, name) ?? fresh.find((entry) => entry.displayName.toLowerCase() === name.trim().toLowerCase())?.code;
      if (resolved) {
        codes.push(resolved);
        continue;
      }
      let code = name
        .trim()
        .toLowerCase()
        .normalize('NFKD')
        .replace(/[\u0300-\u036f]/g, '')
        .replace(/[^a-z0-9]+/g, '_')
        .replace(/^_+|_+$/g, '')
        .slice(0, 60);
      if (!taxonomyCodePattern.test(code)) {
        throw new DermError('invalid-input', `The ${kind} value "${name}" cannot be turned into a taxonomy code (it has no letters or digits).`, {
          kind,
          value: name,
        });
      }
      const base = code;
      for (let suffix = 2; this.repository.get(kind, code) || fresh.some((entry) => entry.code === code); suffix++) code = `${base}_${suffix}`;
      fresh.push({
        kind,
        code,
        displayName: name.trim().slice(0, maxDisplayNameLength),
        parentCode: null,
        hotkey: null,
        sortOrder: nextOrder++,
        builtIn: false,
      });
      codes.push(code);
    }
    if (fresh.length > 0) this.repository.transaction(() => this.repository.upsert(fresh, this.now().toISOString()));
    return codes;
  }

  /** Imports a CSV or JSON taxonomy file. Any problem refuses the whole file and lists every problem found. */
  importFile(file: string, options: { defaultKind?: TaxonomyKind } = {}): TaxonomyImportReport {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw new DermError(code === 'ENOENT' ? 'not-found' : 'invalid-input', `Cannot read the taxonomy file ${file}: ${(error as Error).message}`, { file });
    }
    const extension = path.extname(file).toLowerCase();
    const isJson = extension === '.json' || (extension !== '.csv' && /^\s*[[{]/.test(text.replace(/^\uFEFF/, '')));
    return this.importText(text, { ...options, file, format: isJson ? 'json' : 'csv' });
  }

  importText(text: string, options: { file: string; format: 'csv' | 'json'; defaultKind?: TaxonomyKind }): TaxonomyImportReport {
    this.ensureStarter();
    const located = options.format === 'json' ? this.readJson(text, options.file, options.defaultKind) : this.readCsv(text, options.file, options.defaultKind);
    const problems: TaxonomyImportProblem[] = [];
    const entries = this.validate(located, problems);
    // Report in file order (the checks run in several passes).
    const order = new Map(located.map((entry, index) => [entry.where.line ?? entry.where.path, index]));
    problems.sort((a, b) => (order.get(a.line ?? a.path) ?? 0) - (order.get(b.line ?? b.path) ?? 0));
    if (problems.length > 0) {
      const shown = problems.slice(0, 10).map((problem) => `${describeWhere(options.file, problem)}: ${problem.message}`);
      throw new DermError(
        'invalid-input',
        `The taxonomy file ${options.file} has ${problems.length} problem${problems.length === 1 ? '' : 's'}; nothing was imported.\n${shown.join('\n')}${problems.length > 10 ? `\n… and ${problems.length - 10} more` : ''}`,
        { file: options.file, problems },
      );
    }
    const counts = this.repository.transaction(() => this.repository.upsert(entries, this.now().toISOString()));
    return { file: options.file, ...counts, entries: entries.length };
  }

  /** Removes an entry; refused while current labels use it or other entries name it as parent. */
  remove(kind: TaxonomyKind, code: string): void {
    this.ensureStarter();
    const entry = this.repository.get(kind, code);
    if (!entry) throw new DermError('not-found', `The ${kind} taxonomy has no entry "${code}".`, { kind, code });
    const used = this.repository.labelUseCount(kind, code);
    if (used > 0) {
      throw new DermError('in-use', `The ${kind} entry "${code}" is used by ${used} label${used === 1 ? '' : 's'}; change or remove those labels first.`, {
        kind,
        code,
        count: used,
      });
    }
    const children = this.repository.childCount(kind, code);
    if (children > 0) {
      throw new DermError(
        'in-use',
        `The ${kind} entry "${code}" is the parent of ${children} other entr${children === 1 ? 'y' : 'ies'}; move or remove them first.`,
        {
          kind,
          code,
          children,
        },
      );
    }
    this.repository.remove(kind, code);
  }

  private readCsv(text: string, file: string, defaultKind: TaxonomyKind | undefined): LocatedEntry[] {
    const table = parseCsvTable(text, file);
    const header = table.header.map((name) => name.toLowerCase());
    const column = (...names: string[]) => {
      const index = header.findIndex((name) => names.includes(name));
      return index === -1 ? undefined : table.header[index]!;
    };
    const columns = {
      kind: column('kind'),
      code: column('code'),
      name: column('display_name', 'name', 'displayname'),
      parent: column('parent', 'parent_code'),
      hotkey: column('hotkey'),
      sortOrder: column('sort_order', 'order'),
    };
    const missing = [!columns.code && 'code', !columns.name && 'display_name', !columns.kind && !defaultKind && 'kind'].filter(Boolean);
    if (missing.length > 0) {
      throw new DermError(
        'invalid-input',
        `${file} line 1: the header lacks ${missing.join(' and ')} (columns: kind, code, display_name, parent, hotkey, sort_order; kind may be left out when a default kind is given).`,
        { file, line: 1 },
      );
    }
    const problems = table.malformed.map((row) => `${file} line ${row.line}: ${row.message}`);
    if (problems.length > 0) throw new DermError('invalid-input', `${problems.join('\n')}\nNothing was imported.`, { file });
    return table.rows
      .filter((row) => Object.values(row.values).some((value) => value.trim() !== ''))
      .map((row) => {
        const get = (name: string | undefined) => (name === undefined ? undefined : row.values[name]?.trim());
        const kind = get(columns.kind) || defaultKind;
        const sortOrder = get(columns.sortOrder);
        return {
          where: { line: row.line },
          raw: {
            kind,
            code: get(columns.code),
            displayName: get(columns.name),
            parentCode: get(columns.parent) || null,
            hotkey: get(columns.hotkey) || null,
            sortOrder: sortOrder === undefined || sortOrder === '' ? undefined : sortOrder,
          },
        };
      });
  }

  private readJson(text: string, file: string, defaultKind: TaxonomyKind | undefined): LocatedEntry[] {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text.replace(/^\uFEFF/, ''));
    } catch (error) {
      throw new DermError('invalid-input', `${file} is not valid JSON: ${(error as Error).message}`, { file });
    }
    const top = Array.isArray(parsed) ? parsed : (parsed as { entries?: unknown })?.entries;
    if (!Array.isArray(top)) {
      throw new DermError('invalid-input', `${file}: expected a JSON array of entries or an object with an "entries" array.`, { file });
    }
    const out: LocatedEntry[] = [];
    const walk = (items: unknown[], base: string, inherited: { kind?: unknown; parentCode?: unknown }) => {
      items.forEach((item, index) => {
        const at = `${base}[${index}]`;
        if (typeof item !== 'object' || item === null || Array.isArray(item)) {
          out.push({ where: { path: at }, raw: { invalid: true } });
          return;
        }
        const record = item as Record<string, unknown>;
        const kind = record.kind ?? inherited.kind ?? defaultKind;
        const parentCode = 'parent' in record ? record.parent : 'parentCode' in record ? record.parentCode : (inherited.parentCode ?? null);
        out.push({
          where: { path: at },
          raw: {
            kind,
            code: record.code,
            displayName: record.displayName ?? record.display_name ?? record.name,
            parentCode,
            hotkey: record.hotkey ?? null,
            sortOrder: record.sortOrder ?? record.sort_order,
          },
        });
        if (record.children !== undefined) {
          if (!Array.isArray(record.children)) out.push({ where: { path: `${at}.children` }, raw: { invalidChildren: true } });
          else walk(record.children, `${at}.children`, { kind, parentCode: record.code });
        }
      });
    };
    walk(top, Array.isArray(parsed) ? '' : 'entries', {});
    return out;
  }

  private validate(located: LocatedEntry[], problems: TaxonomyImportProblem[]): TaxonomyEntry[] {
    const entries: Array<TaxonomyEntry & { where: LocatedEntry['where'] }> = [];
    const firstSeen = new Map<string, LocatedEntry['where']>();
    for (const { where, raw } of located) {
      const problem = (field: string, value: unknown, message: string) => problems.push({ ...where, field, value: String(value ?? ''), message });
      if (raw.invalid) {
        problem('entry', '', 'expected an object with kind, code and name');
        continue;
      }
      if (raw.invalidChildren) {
        problem('children', '', 'children must be an array of entries');
        continue;
      }
      let ok = true;
      const kind = raw.kind;
      if (typeof kind !== 'string' || !(taxonomyKinds as string[]).includes(kind)) {
        problem('kind', kind, `kind "${String(kind ?? '')}" is not a taxonomy kind; expected one of ${taxonomyKinds.join(', ')}`);
        ok = false;
      }
      const code = raw.code;
      if (typeof code !== 'string' || !taxonomyCodePattern.test(code)) {
        problem('code', code, `code "${String(code ?? '')}" must be 1–64 letters, digits, "_", "." or "-", starting with a letter or digit`);
        ok = false;
      }
      const displayName = raw.displayName;
      if (typeof displayName !== 'string' || displayName.trim() === '' || displayName.length > maxDisplayNameLength) {
        problem('display_name', displayName, `display name must be 1–${maxDisplayNameLength} characters`);
        ok = false;
      }
      const parentCode = raw.parentCode === '' || raw.parentCode === undefined ? null : raw.parentCode;
      if (parentCode !== null && (typeof parentCode !== 'string' || !taxonomyCodePattern.test(parentCode))) {
        problem('parent', parentCode, `parent "${String(parentCode)}" is not a valid code`);
        ok = false;
      }
      const hotkey = raw.hotkey === '' || raw.hotkey === undefined ? null : raw.hotkey;
      if (hotkey !== null && (typeof hotkey !== 'string' || [...hotkey].length !== 1 || /\s/.test(hotkey))) {
        problem('hotkey', hotkey, `hotkey "${String(hotkey)}" must be exactly one key (a single visible character)`);
        ok = false;
      }
      let sortOrder = 0;
      if (raw.sortOrder !== undefined && raw.sortOrder !== null) {
        const number = Number(raw.sortOrder);
        if (!Number.isInteger(number)) {
          problem('sort_order', raw.sortOrder, `sort order "${String(raw.sortOrder)}" must be a whole number`);
          ok = false;
        } else sortOrder = number;
      } else sortOrder = entries.length;
      if (!ok) continue;
      const key = `${kind}\u0000${code}`;
      const earlier = firstSeen.get(key);
      if (earlier) {
        problem(
          'code',
          code,
          `${kind} code "${code}" appears twice in the file (first at ${earlier.line !== undefined ? `line ${earlier.line}` : earlier.path})`,
        );
        continue;
      }
      firstSeen.set(key, where);
      const existing = this.repository.get(kind as string, code as string);
      entries.push({
        where,
        kind: kind as TaxonomyKind,
        code: code as string,
        displayName: (displayName as string).trim(),
        parentCode: parentCode as string | null,
        hotkey: hotkey as string | null,
        sortOrder,
        builtIn: existing?.builtIn ?? false,
      });
    }

    // Parents must exist in the file or the library, with the same kind, and form no cycle.
    const inFile = new Map(entries.map((entry) => [`${entry.kind}\u0000${entry.code}`, entry]));
    const parentOf = (kind: string, code: string): string | null =>
      inFile.get(`${kind}\u0000${code}`)?.parentCode ?? this.repository.get(kind, code)?.parentCode ?? null;
    for (const entry of entries) {
      if (entry.parentCode === null) continue;
      const where = entry.where;
      if (entry.parentCode === entry.code) {
        problems.push({ ...where, field: 'parent', value: entry.parentCode, message: `entry "${entry.code}" cannot be its own parent` });
        continue;
      }
      if (!inFile.has(`${entry.kind}\u0000${entry.parentCode}`) && !this.repository.get(entry.kind, entry.parentCode)) {
        problems.push({
          ...where,
          field: 'parent',
          value: entry.parentCode,
          message: `parent "${entry.parentCode}" is not a ${entry.kind} entry in this file or the library`,
        });
        continue;
      }
      const seen = new Set([entry.code]);
      for (let parent: string | null = entry.parentCode; parent !== null; parent = parentOf(entry.kind, parent)) {
        if (seen.has(parent)) {
          problems.push({ ...where, field: 'parent', value: entry.parentCode, message: `parent "${entry.parentCode}" makes a cycle back to "${entry.code}"` });
          break;
        }
        seen.add(parent);
      }
    }

    // Hotkeys are unique per kind, among the file's entries and the library's entries the file leaves alone.
    const hotkeyOwners = new Map<string, string>();
    for (const existing of this.repository.all()) {
      if (existing.hotkey && !inFile.has(`${existing.kind}\u0000${existing.code}`))
        hotkeyOwners.set(`${existing.kind}\u0000${existing.hotkey}`, `library entry "${existing.code}"`);
    }
    for (const entry of entries) {
      if (!entry.hotkey) continue;
      const key = `${entry.kind}\u0000${entry.hotkey}`;
      const owner = hotkeyOwners.get(key);
      if (owner) {
        problems.push({
          ...entry.where,
          field: 'hotkey',
          value: entry.hotkey,
          message: `hotkey "${entry.hotkey}" is already used by ${owner} of kind ${entry.kind}`,
        });
      } else {
        hotkeyOwners.set(key, `"${entry.code}" (${entry.where.line !== undefined ? `line ${entry.where.line}` : entry.where.path})`);
      }
    }
    return entries.map(({ where: _where, ...entry }) => entry);
  }
}
