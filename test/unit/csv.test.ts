import { describe, expect, it } from 'vitest';
import { isDermError } from '../../electron/common/errors.js';
import { formatCsv, formatCsvField, parseCsv, parseCsvTable } from '../../electron/core/csv/csv.js';

describe('CSV reader', () => {
  it('reads plain, quoted, empty and doubled-quote fields', () => {
    const records = parseCsv('a,b,c\n1,"two, with comma","say ""hi"""\n,,\n');
    expect(records).toEqual([
      { line: 1, fields: ['a', 'b', 'c'] },
      { line: 2, fields: ['1', 'two, with comma', 'say "hi"'] },
      { line: 3, fields: ['', '', ''] },
    ]);
  });

  it('keeps line breaks inside quoted fields and counts physical lines for later records', () => {
    const records = parseCsv('id,note\r\n1,"first\r\nsecond\nthird"\r\n2,plain\r\n');
    expect(records[1]!.fields[1]).toBe('first\r\nsecond\nthird');
    expect(records[2]).toEqual({ line: 5, fields: ['2', 'plain'] });
  });

  it('drops a UTF-8 byte order mark and accepts CRLF, LF, lone CR and no final newline', () => {
    expect(parseCsv('\ufeffcase_id,x\r\n"-123",y')).toEqual([
      { line: 1, fields: ['case_id', 'x'] },
      { line: 2, fields: ['-123', 'y'] },
    ]);
    expect(parseCsv('a\rb\rc').map((record) => record.fields[0])).toEqual(['a', 'b', 'c']);
    expect(parseCsv('a,\n').at(0)!.fields).toEqual(['a', '']);
    expect(parseCsv('a,').at(0)!.fields).toEqual(['a', '']);
  });

  it('skips blank lines but keeps their line numbers out of the next record', () => {
    const records = parseCsv('h\n\nx\n\n\ny\n');
    expect(records).toEqual([
      { line: 1, fields: ['h'] },
      { line: 3, fields: ['x'] },
      { line: 6, fields: ['y'] },
    ]);
  });

  it('refuses an unterminated quote naming the line it opened on', () => {
    let caught: unknown;
    try {
      parseCsv('a,b\n1,"never closed\n2,3\n', { file: 'cases.csv' });
    } catch (error) {
      caught = error;
    }
    expect(isDermError(caught, 'invalid-input')).toBe(true);
    expect((caught as Error).message).toMatch(/cases\.csv.*line 2.*never closed/);
  });

  it('refuses text after a closing quote', () => {
    expect(() => parseCsv('"ab"c,d\n', { file: 'x.csv' })).toThrow(/x\.csv line 1, field 1/);
  });

  it('maps rows to the header and reports rows with the wrong number of fields by line', () => {
    const table = parseCsvTable(' isic_id ,sex\nISIC_1,male\nISIC_2\nISIC_3,female,extra\nISIC_4,\n', 'meta.csv');
    expect(table.header).toEqual(['isic_id', 'sex']);
    expect(table.rows).toEqual([
      { line: 2, values: { isic_id: 'ISIC_1', sex: 'male' } },
      { line: 5, values: { isic_id: 'ISIC_4', sex: '' } },
    ]);
    expect(table.malformed.map((entry) => entry.line)).toEqual([3, 4]);
  });

  it('refuses a header with a repeated column name', () => {
    expect(() => parseCsvTable('a,b,a\n1,2,3\n', 'dup.csv')).toThrow(/dup\.csv line 1: column "a" appears twice/);
  });
});

describe('CSV writer', () => {
  it('quotes only when needed and round-trips through the reader', () => {
    expect(formatCsvField('plain')).toBe('plain');
    expect(formatCsvField(3.5)).toBe('3.5');
    expect(formatCsvField(null)).toBe('');
    expect(formatCsvField(' padded')).toBe('" padded"');
    const rows = [
      ['id', 'text', 'empty'],
      ['1', 'comma, quote " and\nnewline', ''],
      ['2', 'ünïcødé 🙂', ''],
      ['3', 'ends with CRLF\r\n', 'x'],
    ];
    const text = formatCsv(rows);
    expect(text.endsWith('\r\n')).toBe(true);
    expect(parseCsv(text).map((record) => record.fields)).toEqual(rows);
    // A value led by CR is one a spreadsheet may run as a formula: it keeps its text behind an apostrophe.
    expect(parseCsv(formatCsv([['\r\nstarts with CRLF']]))[0]!.fields).toEqual(["'\r\nstarts with CRLF"]);
  });
});
