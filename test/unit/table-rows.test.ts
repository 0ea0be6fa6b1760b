import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateTableRows, tableRowsFile } from '../../build/generate-table-rows.mjs';

const migrations = path.resolve(import.meta.dirname, '../../migrations');

describe('row types generated from the migrations', () => {
  it('are up to date: electron/core/library/table-rows.ts is what the migrations make (else run npm run generate:rows)', () => {
    expect(fs.readFileSync(tableRowsFile, 'utf8')).toBe(generateTableRows());
  });

  it('follow a migration: a new column appears in its table and its views, with its nullability and CHECKed values, which a view keeps', () => {
    const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'dermws-rows-'));
    try {
      for (const file of fs.readdirSync(migrations)) fs.copyFileSync(path.join(migrations, file), path.join(folder, file));
      fs.writeFileSync(
        path.join(folder, '9999_extra.sql'),
        'ALTER TABLE images ADD COLUMN colour_profile TEXT;\nALTER TABLE cases ADD COLUMN site_count INTEGER NOT NULL DEFAULT 0;\n' +
          'CREATE VIEW case_sites AS SELECT case_key, site_count, site_count + 1 AS next_site FROM cases;\n' +
          "CREATE TABLE case_reviews (verdict TEXT NOT NULL CHECK (verdict IN ('agree', 'disagree')), note TEXT CHECK (note IS NULL OR note IN ('x')));\n" +
          'CREATE VIEW agreed_reviews AS SELECT verdict FROM case_reviews;',
      );
      const generated = generateTableRows(folder);
      const block = (name: string) =>
        generated.slice(generated.indexOf(`export interface ${name} {`), generated.indexOf('}', generated.indexOf(`export interface ${name} {`)));
      expect(block('ImagesRow')).toContain('colour_profile: string | null;');
      expect(block('LiveImagesRow')).toContain('colour_profile: string | null;');
      expect(block('CasesRow')).toContain('site_count: number;');
      expect(block('ImagesRow')).toContain('  id: number;\n');
      // A view's pass-through columns keep their table's nullability; a computed one's type is the expression's, which the generator does not know.
      expect(block('LiveImagesRow')).toContain('  id: number;\n  file_sha256: string;\n');
      expect(block('LiveImagesRow')).toContain('  case_id: number | null;\n');
      expect(block('CaseSitesRow')).toContain('  case_key: string;\n  site_count: number;\n  next_site: unknown;\n');
      // A text column whose CHECK lists its values has them as its type, in its table and its views; a
      // CHECK that says more than the list does not narrow.
      expect(block('CaseReviewsRow')).toContain("  verdict: 'agree' | 'disagree';\n  note: string | null;\n");
      expect(block('AgreedReviewsRow')).toContain("  verdict: 'agree' | 'disagree';\n");
    } finally {
      fs.rmSync(folder, { recursive: true, force: true });
    }
  });
});
