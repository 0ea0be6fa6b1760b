import fs from 'node:fs';
import { DermError } from '../../common/errors.js';

/**
 * RFC 4180 CSV: fields separated by commas, records by CRLF or LF (a lone CR too, as old Excel on the
 * Mac wrote), fields in double quotes may hold commas, quotes (doubled) and line breaks. A UTF-8 byte
 * order mark at the start is dropped. Records remember the physical line they start on, so every
 * problem in a dataset can be reported as file + line + column.
 */
export interface CsvRecord {
  /** 1-based physical line the record starts on. */
  line: number;
  fields: string[];
}

export interface ParseCsvOptions {
  /** Named in error messages. */
  file?: string;
  delimiter?: string;
  /** Longest field accepted, in characters (default maxCsvFieldChars). */
  maxFieldChars?: number;
}

/**
 * Longest CSV field read, in characters. Metadata values, labels and paths are short; a field of
 * megabytes is a broken quote or a file that is not the CSV it claims to be, and it would be stored
 * in every row it reaches.
 */
export const maxCsvFieldChars = 64 * 1024;

export function parseCsv(text: string, options: ParseCsvOptions = {}): CsvRecord[] {
  const delimiter = options.delimiter ?? ',';
  if (delimiter.length !== 1 || delimiter === '"' || delimiter === '\n' || delimiter === '\r') {
    throw new DermError('invalid-input', `A CSV delimiter must be one character other than a quote or line break; got ${JSON.stringify(delimiter)}.`);
  }
  const where = options.file ?? 'CSV text';
  const maxField = options.maxFieldChars ?? maxCsvFieldChars;
  const records: CsvRecord[] = [];
  let position = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  let line = 1;
  const length = text.length;

  while (position < length) {
    const recordLine = line;
    const fields: string[] = [];
    let endOfRecord = false;
    while (!endOfRecord) {
      let value = '';
      if (text[position] === '"') {
        const quoteLine = line;
        position++;
        for (;;) {
          if (position >= length) {
            throw new DermError('invalid-input', `${where}: the quoted field that starts on line ${quoteLine} is never closed.`, {
              file: options.file,
              line: quoteLine,
            });
          }
          const next = text.indexOf('"', position);
          if (next === -1) {
            position = length;
            continue;
          }
          const chunk = text.slice(position, next);
          line += countLineBreaks(chunk);
          value += chunk;
          if (text[next + 1] === '"') {
            value += '"';
            position = next + 2;
          } else {
            position = next + 1;
            break;
          }
        }
        const after = text[position];
        if (after !== undefined && after !== delimiter && after !== '\n' && after !== '\r') {
          throw new DermError(
            'invalid-input',
            `${where} line ${line}, field ${fields.length + 1}: unexpected ${JSON.stringify(after)} after a closing quote (a quote inside a quoted field must be doubled).`,
            { file: options.file, line, column: fields.length + 1 },
          );
        }
      } else {
        let end = position;
        while (end < length) {
          const character = text[end];
          if (character === delimiter || character === '\n' || character === '\r') break;
          end++;
        }
        value = text.slice(position, end);
        position = end;
      }
      if (value.length > maxField) {
        throw new DermError(
          'invalid-input',
          `${where} line ${recordLine}, field ${fields.length + 1}: the value is ${value.length} characters long; at most ${maxField} are accepted (is a quote left open?).`,
          { file: options.file, line: recordLine, column: fields.length + 1 },
        );
      }
      fields.push(value);
      const separator = text[position];
      if (separator === delimiter) {
        position++;
      } else {
        endOfRecord = true;
        if (separator === '\r') position += text[position + 1] === '\n' ? 2 : 1;
        else if (separator === '\n') position++;
        if (separator !== undefined) line++;
      }
    }
    // Blank lines are not records (a trailing newline, or spacing some tools add).
    if (fields.length === 1 && fields[0] === '') continue;
    records.push({ line: recordLine, fields });
  }
  return records;
}

function countLineBreaks(text: string): number {
  let count = 0;
  for (let index = 0; index < text.length; index++) {
    const character = text.charCodeAt(index);
    if (character === 10) count++;
    else if (character === 13 && text.charCodeAt(index + 1) !== 10) count++;
  }
  return count;
}

/** A data row of a CSV with a header: values by column name, plus where it came from. */
export interface CsvRow {
  line: number;
  values: Record<string, string>;
}

export interface CsvTable {
  file: string;
  header: string[];
  rows: CsvRow[];
  /** Rows whose field count differs from the header's; they are not in `rows`. */
  malformed: Array<{ line: number; message: string }>;
}

/** Parses CSV text whose first record is the header. Header names are trimmed; duplicates are refused. */
export function parseCsvTable(text: string, file: string): CsvTable {
  const records = parseCsv(text, { file });
  const first = records[0];
  if (!first) throw new DermError('invalid-input', `${file} is empty: expected a header line.`, { file });
  const header = first.fields.map((name) => name.trim());
  const seen = new Map<string, number>();
  header.forEach((name, index) => {
    if (name === '') return;
    const earlier = seen.get(name);
    if (earlier !== undefined) {
      throw new DermError('invalid-input', `${file} line ${first.line}: column "${name}" appears twice (columns ${earlier + 1} and ${index + 1}).`, {
        file,
        line: first.line,
        column: name,
      });
    }
    seen.set(name, index);
  });
  const rows: CsvRow[] = [];
  const malformed: CsvTable['malformed'] = [];
  for (const record of records.slice(1)) {
    if (record.fields.length !== header.length) {
      malformed.push({ line: record.line, message: `has ${record.fields.length} fields; the header has ${header.length}` });
      continue;
    }
    const values: Record<string, string> = {};
    header.forEach((name, index) => {
      if (name !== '') values[name] = record.fields[index]!;
    });
    rows.push({ line: record.line, values });
  }
  return { file, header, rows, malformed };
}

export function readCsvFile(file: string): CsvTable {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new DermError(code === 'ENOENT' ? 'not-found' : 'invalid-input', `Cannot read ${file}: ${(error as Error).message}`, { file });
  }
  return parseCsvTable(decodeCsvBytes(bytes, file), file);
}

/**
 * CSV bytes as text, strictly: invalid UTF-8 (a Latin-1 or Windows-1252 export, where "é" is one byte)
 * is refused with its line and column instead of turning silently into U+FFFD, and a NUL character,
 * which would cut a value short where it is stored, is refused the same way.
 */
export function decodeCsvBytes(bytes: Uint8Array, file: string): string {
  const invalidAt = firstInvalidUtf8(bytes);
  if (invalidAt >= 0) {
    const { line, column } = positionOf(bytes, invalidAt);
    throw new DermError(
      'invalid-input',
      `${file} line ${line}, column ${column}: byte 0x${bytes[invalidAt]!.toString(16).padStart(2, '0')} is not valid UTF-8 (the file looks like Latin-1 or Windows-1252). Re-save it as UTF-8 (in Excel: "CSV UTF-8"; in LibreOffice: character set "Unicode (UTF-8)") and import again.`,
      { file, line, column },
    );
  }
  const nul = bytes.indexOf(0);
  if (nul >= 0) {
    const { line, column } = positionOf(bytes, nul);
    throw new DermError('invalid-input', `${file} line ${line}, column ${column}: a NUL character; a CSV holds text only (is this a binary or UTF-16 file?).`, {
      file,
      line,
      column,
    });
  }
  return new TextDecoder('utf-8').decode(bytes);
}

/** Byte offset of the first byte that breaks UTF-8 (overlong forms, surrogates and code points above U+10FFFF included), or -1. */
function firstInvalidUtf8(bytes: Uint8Array): number {
  let index = 0;
  while (index < bytes.length) {
    const byte = bytes[index]!;
    if (byte < 0x80) {
      index++;
      continue;
    }
    let need: number;
    let min: number;
    let code: number;
    if (byte >= 0xc2 && byte <= 0xdf) [need, min, code] = [1, 0x80, byte & 0x1f];
    else if (byte >= 0xe0 && byte <= 0xef) [need, min, code] = [2, 0x800, byte & 0x0f];
    else if (byte >= 0xf0 && byte <= 0xf4) [need, min, code] = [3, 0x10000, byte & 0x07];
    else return index;
    for (let next = 1; next <= need; next++) {
      const continuation = bytes[index + next];
      if (continuation === undefined || (continuation & 0xc0) !== 0x80) return index;
      code = (code << 6) | (continuation & 0x3f);
    }
    if (code < min || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) return index;
    index += need + 1;
  }
  return -1;
}

/** 1-based line and column (in characters) of a byte offset; CRLF, LF and a lone CR end a line. */
function positionOf(bytes: Uint8Array, offset: number): { line: number; column: number } {
  let line = 1;
  let column = 1;
  for (let index = 0; index < offset; index++) {
    const byte = bytes[index]!;
    if (byte === 0x0a || (byte === 0x0d && bytes[index + 1] !== 0x0a)) {
      line++;
      column = 1;
    } else if (byte !== 0x0d && (byte & 0xc0) !== 0x80) column++;
  }
  return { line, column };
}

export type CsvValue = string | number | boolean | null | undefined;

/**
 * Characters that make a spreadsheet (Excel, LibreOffice, Google Sheets) read a cell as a formula or
 * command when they lead it: = + - @, and tab / carriage return, which some importers strip before
 * looking at the next character (OWASP "CSV Injection").
 */
const formulaLead = /^[=+\-@\t\r]/;
/** A plain decimal number ("-3", "+2.5e-4") is data, not a formula, and stays as it is. */
const plainNumber = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/**
 * A text value as it is written to a CSV cell: one that a spreadsheet would run as a formula gets a
 * leading apostrophe (OWASP's advice), which spreadsheets show as text and never evaluate. Readers that
 * need the exact original strip one leading apostrophe from a cell that starts with `'=`, `'+`, `'-`,
 * `'@`, `'\t` or `'\r`. Every CSV the app writes passes its cells through here.
 */
export function neutraliseFormula(text: string): string {
  return formulaLead.test(text) && !plainNumber.test(text) ? `'${text}` : text;
}

/**
 * One field, quoted only when it has to be (delimiter, quote, CR or LF, or leading/trailing spaces).
 * Text that would start a spreadsheet formula is neutralised first (see neutraliseFormula); numbers
 * and booleans cannot be formulas.
 */
export function formatCsvField(value: CsvValue): string {
  if (value === null || value === undefined) return '';
  const text = typeof value === 'string' ? neutraliseFormula(value) : String(value);
  if (/[",\r\n]/.test(text) || /^\s|\s$/.test(text)) return `"${text.replaceAll('"', '""')}"`;
  return text;
}

/** One record with the RFC 4180 line ending (CRLF). */
export function formatCsvRow(values: readonly CsvValue[]): string {
  return `${values.map(formatCsvField).join(',')}\r\n`;
}

export function formatCsv(rows: Iterable<readonly CsvValue[]>): string {
  let text = '';
  for (const row of rows) text += formatCsvRow(row);
  return text;
}

/**
 * Writes CSV records to a file in large chunks, so exports of many thousand rows neither build one
 * giant string nor issue a write per row.
 */
export class CsvFileWriter {
  private readonly fd: number;
  private buffer: string[] = [];
  private bufferedLength = 0;
  private closed = false;
  rows = 0;

  constructor(readonly file: string) {
    this.fd = fs.openSync(file, 'w');
  }

  write(values: readonly CsvValue[]): void {
    const text = formatCsvRow(values);
    this.buffer.push(text);
    this.bufferedLength += text.length;
    this.rows++;
    if (this.bufferedLength >= 1 << 20) this.flush();
  }

  private flush(): void {
    if (this.buffer.length === 0) return;
    fs.writeSync(this.fd, this.buffer.join(''));
    this.buffer = [];
    this.bufferedLength = 0;
  }

  close(): void {
    if (this.closed) return;
    try {
      this.flush();
      fs.fsyncSync(this.fd);
    } finally {
      this.closed = true;
      fs.closeSync(this.fd);
    }
  }

  /** Closes without flushing (after a failure); the caller removes the file. */
  abandon(): void {
    if (this.closed) return;
    this.closed = true;
    fs.closeSync(this.fd);
  }
}
