import path from 'node:path';
import type Database from 'better-sqlite3';
import { writeTransaction } from '../library/write-transaction.js';
import type { CasesRow, ImageMetadataRow } from '../library/table-rows.js';

export interface LibraryImageRef {
  id: number;
  relativePath: string | null;
  originalPath: string;
  caseId: number | null;
}

/** Library images found by the ways dataset rows name them. */
export class ImageLookup {
  private readonly byRelative = new Map<string, LibraryImageRef[]>();
  private readonly byName = new Map<string, LibraryImageRef[]>();
  private readonly byStem = new Map<string, LibraryImageRef[]>();

  constructor(images: LibraryImageRef[]) {
    for (const image of images) {
      if (image.relativePath) push(this.byRelative, normalisePath(image.relativePath), image);
      const name = path.posix.basename(normalisePath(image.relativePath ?? image.originalPath));
      push(this.byName, name.toLowerCase(), image);
      push(this.byStem, stemOf(name).toLowerCase(), image);
    }
  }

  /** By relative path, then by file name; `ambiguous` when a file name matches several images. */
  byPathOrName(value: string): { image?: LibraryImageRef; ambiguous?: LibraryImageRef[] } {
    const normalised = normalisePath(value);
    const exact = this.byRelative.get(normalised);
    if (exact?.length === 1) return { image: exact[0]! };
    if (exact && exact.length > 1) return { ambiguous: exact };
    return single(this.byName.get(path.posix.basename(normalised).toLowerCase()));
  }

  /** By file name without extension (ISIC: isic_id = file stem). */
  byFileStem(stem: string): { image?: LibraryImageRef; ambiguous?: LibraryImageRef[] } {
    return single(this.byStem.get(stem.trim().toLowerCase()));
  }
}

function single(found: LibraryImageRef[] | undefined): { image?: LibraryImageRef; ambiguous?: LibraryImageRef[] } {
  if (!found || found.length === 0) return {};
  if (found.length === 1) return { image: found[0]! };
  return { ambiguous: found };
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

export function normalisePath(value: string): string {
  return value
    .trim()
    .replaceAll('\\', '/')
    .replace(/^(\.\/)+/, '');
}

export function stemOf(name: string): string {
  const extension = path.posix.extname(name);
  return extension ? name.slice(0, -extension.length) : name;
}

/** Every SQL statement of dataset imports: cases, case membership and image metadata. */
export class DatasetsRepository {
  // Prepared once: a SCIN import runs these tens of thousands of times.
  private readonly statements: {
    image: Database.Statement<unknown[], LibraryImageRef>;
    caseKey: Database.Statement<unknown[], { caseKey: string }>;
    findCase: Database.Statement<unknown[], Pick<CasesRow, 'id'>>;
    insertCase: Database.Statement;
    setImageCase: Database.Statement;
    getMetadata: Database.Statement<unknown[], Pick<ImageMetadataRow, 'value'>>;
    putMetadata: Database.Statement;
  };

  constructor(private readonly db: Database.Database) {
    this.statements = {
      image: db.prepare('SELECT id, relative_path AS relativePath, original_path AS originalPath, case_id AS caseId FROM images WHERE id = ?'),
      caseKey: db.prepare('SELECT case_key AS caseKey FROM cases WHERE id = ?'),
      findCase: db.prepare('SELECT id FROM cases WHERE case_key = ?'),
      insertCase: db.prepare('INSERT INTO cases (case_key, source, created_at) VALUES (?, ?, ?)'),
      setImageCase: db.prepare('UPDATE images SET case_id = ? WHERE id = ? AND (case_id IS NULL OR case_id <> ?)'),
      getMetadata: db.prepare('SELECT value FROM image_metadata WHERE image_id = ? AND key = ?'),
      putMetadata: db.prepare(
        'INSERT INTO image_metadata (image_id, key, value, source) VALUES (?, ?, ?, ?) ON CONFLICT(image_id, key) DO UPDATE SET value = excluded.value, source = excluded.source',
      ),
    };
  }

  transaction<T>(work: () => T): T {
    return writeTransaction(this.db, work);
  }

  imageLookup(): ImageLookup {
    const rows = this.db
      .prepare<unknown[], LibraryImageRef>(
        'SELECT id, relative_path AS relativePath, original_path AS originalPath, case_id AS caseId FROM live_images ORDER BY id',
      )
      .all();
    return new ImageLookup(rows);
  }

  image(id: number): LibraryImageRef | undefined {
    return this.statements.image.get(id);
  }

  caseKey(caseId: number): string | undefined {
    return this.statements.caseKey.get(caseId)?.caseKey;
  }

  /** The case with this key, created when missing. */
  ensureCase(caseKey: string, source: string, at: string): { id: number; created: boolean } {
    const found = this.statements.findCase.get(caseKey);
    if (found) return { id: found.id, created: false };
    return { id: this.statements.insertCase.run(caseKey, source, at).lastInsertRowid as number, created: true };
  }

  setImageCase(imageId: number, caseId: number): boolean {
    return this.statements.setImageCase.run(caseId, imageId, caseId).changes > 0;
  }

  /** Sets one metadata value; 'unchanged' when it already had exactly this value. */
  setMetadata(imageId: number, key: string, value: string, source: string): 'set' | 'unchanged' {
    const existing = this.statements.getMetadata.get(imageId, key);
    if (existing?.value === value) return 'unchanged';
    this.statements.putMetadata.run(imageId, key, value, source);
    return 'set';
  }
}
