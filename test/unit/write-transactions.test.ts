import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const coreFolder = path.resolve(import.meta.dirname, '../../electron/core');

function sourceFiles(folder: string): string[] {
  return fs.readdirSync(folder, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(folder, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith('.ts') ? [full] : [];
  });
}

describe('write transactions in the core', () => {
  // A deferred transaction that reads and then writes fails with "database is locked" at once when
  // another process committed in between (see library/write-transaction.ts). Every transaction the
  // core opens must take the write lock at BEGIN.
  it('opens every better-sqlite3 transaction through writeTransaction (BEGIN IMMEDIATE)', () => {
    // Only these two call db.transaction themselves, and both run it with .immediate().
    const sanctioned = new Set(['library/write-transaction.ts', 'library/migrations.ts']);
    const deferred: string[] = [];
    for (const file of sourceFiles(coreFolder)) {
      const relative = path.relative(coreFolder, file).split(path.sep).join('/');
      const text = fs.readFileSync(file, 'utf8');
      const opened = [...text.matchAll(/\bdb\.transaction\(/g)];
      if (opened.length === 0) continue;
      if (!sanctioned.has(relative) || !text.includes('.immediate()')) deferred.push(relative);
    }
    expect(deferred).toEqual([]);
  });
});
