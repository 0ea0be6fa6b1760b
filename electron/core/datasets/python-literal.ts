import { DermError } from '../../common/errors.js';

/**
 * A reader for the Python literals SCIN writes into CSV cells (`['Eczema', 'Psoriasis']`, `[4, 2]`,
 * `{'Eczema': 0.69, 'Psoriasis': 0.31}`). It accepts exactly the literal subset of Python syntax —
 * strings, numbers, True/False/None, lists, tuples and dicts — and nothing else: the text is parsed,
 * never evaluated.
 */
export type PythonValue = string | number | boolean | null | PythonValue[] | PythonDict;

export class PythonDict {
  constructor(readonly entries: Array<[PythonValue, PythonValue]>) {}

  get(key: PythonValue): PythonValue | undefined {
    return this.entries.find(([candidate]) => candidate === key)?.[1];
  }
}

const maxDepth = 64;

export function parsePythonLiteral(text: string): PythonValue {
  const parser = new Parser(text);
  parser.skipSpace();
  const value = parser.value(0);
  parser.skipSpace();
  if (!parser.atEnd()) parser.fail('unexpected text after the value');
  return value;
}

class Parser {
  private position = 0;

  constructor(private readonly text: string) {}

  atEnd(): boolean {
    return this.position >= this.text.length;
  }

  fail(what: string): never {
    const near = this.text.slice(this.position, this.position + 12);
    throw new DermError(
      'invalid-input',
      `Not a Python literal: ${what} at character ${this.position + 1}${near ? ` (near ${JSON.stringify(near)})` : ' (at the end)'}.`,
      {
        position: this.position + 1,
      },
    );
  }

  skipSpace(): void {
    while (this.position < this.text.length && /\s/.test(this.text[this.position]!)) this.position++;
  }

  value(depth: number): PythonValue {
    if (depth > maxDepth) this.fail(`nesting deeper than ${maxDepth} levels`);
    const character = this.text[this.position];
    if (character === undefined) this.fail('expected a value');
    if (character === '[') return this.sequence(']', depth);
    if (character === '(') return this.sequence(')', depth);
    if (character === '{') return this.dict(depth);
    if (character === "'" || character === '"') return this.string();
    if (/[-+0-9.]/.test(character)) return this.number();
    const word = /^[A-Za-z_][A-Za-z0-9_]*/.exec(this.text.slice(this.position))?.[0];
    if (word === 'True' || word === 'False' || word === 'None') {
      this.position += word.length;
      return word === 'True' ? true : word === 'False' ? false : null;
    }
    if (word === 'nan' || word === 'inf') {
      // numpy prints these inside lists; they are not Python literals but are unambiguous.
      this.position += word.length;
      return word === 'nan' ? Number.NaN : Number.POSITIVE_INFINITY;
    }
    return this.fail(word ? `"${word}" is not a literal (only strings, numbers, True, False, None, lists, tuples and dicts are read)` : 'expected a value');
  }

  private sequence(close: ']' | ')', depth: number): PythonValue[] {
    this.position++;
    const items: PythonValue[] = [];
    for (;;) {
      this.skipSpace();
      if (this.text[this.position] === close) {
        this.position++;
        return items;
      }
      items.push(this.value(depth + 1));
      this.skipSpace();
      const separator = this.text[this.position];
      if (separator === ',') {
        this.position++;
      } else if (separator !== close) {
        this.fail(`expected "," or "${close}"`);
      }
    }
  }

  private dict(depth: number): PythonDict {
    this.position++;
    const entries: Array<[PythonValue, PythonValue]> = [];
    for (;;) {
      this.skipSpace();
      if (this.text[this.position] === '}') {
        this.position++;
        return new PythonDict(entries);
      }
      const key = this.value(depth + 1);
      if (typeof key === 'object' && key !== null) this.fail('a dict key must be a string, number, True, False or None');
      this.skipSpace();
      if (this.text[this.position] !== ':') this.fail('expected ":" after a dict key');
      this.position++;
      this.skipSpace();
      const value = this.value(depth + 1);
      const existing = entries.findIndex(([candidate]) => candidate === key);
      // Python keeps the last value of a repeated key.
      if (existing >= 0) entries[existing] = [key, value];
      else entries.push([key, value]);
      this.skipSpace();
      const separator = this.text[this.position];
      if (separator === ',') this.position++;
      else if (separator !== '}') this.fail('expected "," or "}"');
    }
  }

  private string(): string {
    const quote = this.text[this.position]!;
    const triple = this.text.startsWith(quote.repeat(3), this.position);
    const delimiter = triple ? quote.repeat(3) : quote;
    this.position += delimiter.length;
    let value = '';
    for (;;) {
      if (this.position >= this.text.length) this.fail('a string is never closed');
      if (this.text.startsWith(delimiter, this.position)) {
        this.position += delimiter.length;
        break;
      }
      const character = this.text[this.position]!;
      if (!triple && (character === '\n' || character === '\r')) this.fail('a line break inside a one-line string');
      if (character !== '\\') {
        value += character;
        this.position++;
        continue;
      }
      value += this.escape();
    }
    // Adjacent literals concatenate in Python ('a' 'b' == 'ab').
    const save = this.position;
    this.skipSpace();
    const next = this.text[this.position];
    if (next === "'" || next === '"') return value + this.string();
    this.position = save;
    return value;
  }

  private escape(): string {
    const code = this.text[this.position + 1];
    this.position += 2;
    switch (code) {
      case undefined:
        return this.fail('a backslash at the end');
      case '\n':
        return '';
      case '\\':
      case "'":
      case '"':
        return code;
      case 'n':
        return '\n';
      case 't':
        return '\t';
      case 'r':
        return '\r';
      case 'a':
        return '\x07';
      case 'b':
        return '\b';
      case 'f':
        return '\f';
      case 'v':
        return '\v';
      case '0':
        return '\0';
      case 'x':
        return this.codePoint(2);
      case 'u':
        return this.codePoint(4);
      case 'U':
        return this.codePoint(8);
      default:
        // Python keeps unknown escapes as written.
        return `\\${code}`;
    }
  }

  private codePoint(digits: number): string {
    const hex = this.text.slice(this.position, this.position + digits);
    if (!new RegExp(`^[0-9a-fA-F]{${digits}}$`).test(hex)) this.fail(`expected ${digits} hex digits in an escape`);
    this.position += digits;
    const value = Number.parseInt(hex, 16);
    if (value > 0x10ffff) this.fail('an escape beyond U+10FFFF');
    return String.fromCodePoint(value);
  }

  private number(): number {
    const rest = this.text.slice(this.position);
    const special = /^([-+]?)(inf|nan)(?![A-Za-z0-9_])/.exec(rest);
    if (special) {
      this.position += special[0].length;
      if (special[2] === 'nan') return Number.NaN;
      return special[1] === '-' ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY;
    }
    const match = /^[-+]?(?:\d[\d_]*(?:\.(?:\d[\d_]*)?)?|\.\d[\d_]*)(?:[eE][-+]?\d+)?/.exec(rest);
    if (!match) this.fail('expected a number');
    this.position += match[0].length;
    const value = Number(match[0].replaceAll('_', ''));
    if (!Number.isFinite(value)) this.fail(`"${match[0]}" is not a finite number`);
    return value;
  }
}

/** Reads a cell that must be a list of strings (empty cell → empty list). */
export function parseStringList(text: string): string[] {
  if (text.trim() === '') return [];
  const value = parsePythonLiteral(text);
  if (!Array.isArray(value) || value.some((item) => typeof item !== 'string')) {
    throw new DermError('invalid-input', `Expected a list of strings such as ['Eczema', 'Psoriasis']; got ${describe(value)}.`);
  }
  return value as string[];
}

/** Reads a cell that must be a list of numbers (empty cell → empty list). */
export function parseNumberList(text: string): number[] {
  if (text.trim() === '') return [];
  const value = parsePythonLiteral(text);
  if (!Array.isArray(value) || value.some((item) => typeof item !== 'number' || Number.isNaN(item))) {
    throw new DermError('invalid-input', `Expected a list of numbers such as [4, 2]; got ${describe(value)}.`);
  }
  return value as number[];
}

/** Reads a cell that must be a dict of string → number (empty cell → empty map). */
export function parseStringNumberDict(text: string): Map<string, number> {
  if (text.trim() === '') return new Map();
  const value = parsePythonLiteral(text);
  if (!(value instanceof PythonDict) || value.entries.some(([key, item]) => typeof key !== 'string' || typeof item !== 'number' || Number.isNaN(item))) {
    throw new DermError('invalid-input', `Expected a dict of names to numbers such as {'Eczema': 0.69}; got ${describe(value)}.`);
  }
  return new Map(value.entries as Array<[string, number]>);
}

function describe(value: PythonValue): string {
  if (value instanceof PythonDict) return 'a dict with other kinds of keys or values';
  if (Array.isArray(value)) return 'a list with other kinds of items';
  if (value === null) return 'None';
  return `${typeof value} ${JSON.stringify(value)}`;
}
