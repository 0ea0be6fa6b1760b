import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * Every CSV the app writes goes through electron/core/csv/csv.ts, whose writer neutralises spreadsheet
 * formulas. A module that writes files or downloads and mentions CSV must therefore use that writer:
 * a second, hand-rolled CSV writer would bring CSV injection back.
 */
const root = path.resolve(import.meta.dirname, '../..');

function sourceFiles(folder: string): string[] {
  const found: string[] = [];
  for (const entry of fs.readdirSync(folder, { withFileTypes: true })) {
    const full = path.join(folder, entry.name);
    if (entry.isDirectory()) found.push(...sourceFiles(full));
    else if (/\.(ts|svelte)$/.test(entry.name)) found.push(full);
  }
  return found;
}

const writesSomething = /writeFileSync|writeFile\(|createWriteStream|writeSync|new Blob\(/;
const mentionsCsv = /\.csv['"`]|text\/csv|_paths\.csv|Csv(Row|Line)\b/;
const buildsCsvRows = /\.join\(\s*['"],['"]\s*\)/;
const usesSharedWriter = /from ['"][./]*(?:core\/)?csv\/csv\.js['"]|from ['"]\.\/csv\.js['"]/;

describe('CSV writers', () => {
  it('are all the shared, formula-neutralising writer', () => {
    const offenders: string[] = [];
    for (const file of [...sourceFiles(path.join(root, 'electron')), ...sourceFiles(path.join(root, 'renderer', 'src'))]) {
      if (file.endsWith(path.join('core', 'csv', 'csv.ts'))) continue;
      const text = fs.readFileSync(file, 'utf8');
      // The renderer cannot import the core: a screen may hand the browser a CSV the core made (a Blob of
      // a contract call's text), but must not build CSV rows itself.
      const inRenderer = file.startsWith(path.join(root, 'renderer'));
      if (inRenderer && !buildsCsvRows.test(text)) continue;
      if (writesSomething.test(text) && mentionsCsv.test(text) && !usesSharedWriter.test(text)) offenders.push(path.relative(root, file));
    }
    expect(offenders).toEqual([]);
  });
});
