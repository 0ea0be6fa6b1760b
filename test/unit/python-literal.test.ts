import { describe, expect, it } from 'vitest';
import { parseNumberList, parsePythonLiteral, parseStringList, parseStringNumberDict, PythonDict } from '../../electron/core/datasets/python-literal.js';

describe('Python literal reader', () => {
  it('reads the cells SCIN writes', () => {
    expect(parseStringList("['Eczema', 'Psoriasis', 'Eczema']")).toEqual(['Eczema', 'Psoriasis', 'Eczema']);
    expect(parseNumberList('[4, 2, 5]')).toEqual([4, 2, 5]);
    const weights = parseStringNumberDict("{'Eczema': 0.69, 'Psoriasis': 0.31}");
    expect([...weights]).toEqual([
      ['Eczema', 0.69],
      ['Psoriasis', 0.31],
    ]);
    expect(parseStringList('')).toEqual([]);
    expect(parseStringList('[]')).toEqual([]);
    expect(parseStringNumberDict('{}').size).toBe(0);
  });

  it('reads strings with both quotes, escapes, apostrophes and unicode', () => {
    expect(parsePythonLiteral(`["Kaposi's sarcoma", 'O\\'Brien', 'tab\\there', '\\u00e9\\x41', "😀"]`)).toEqual([
      "Kaposi's sarcoma",
      "O'Brien",
      'tab\there',
      'éA',
      '😀',
    ]);
    expect(parsePythonLiteral('\'a\' "b"')).toBe('ab');
    expect(parsePythonLiteral("'''multi\nline'''")).toBe('multi\nline');
  });

  it('reads numbers, constants, tuples, nesting and trailing commas', () => {
    expect(parsePythonLiteral('[-1, +2, 3.5, .5, 1e3, -2.5E-2, 1_000, 7.]')).toEqual([-1, 2, 3.5, 0.5, 1000, -0.025, 1000, 7]);
    expect(parsePythonLiteral('(True, False, None,)')).toEqual([true, false, null]);
    const nested = parsePythonLiteral("{'a': [1, {'b': (2,)}], 3: 'x', 'a': 'last',}");
    expect(nested).toBeInstanceOf(PythonDict);
    expect((nested as PythonDict).get('a')).toBe('last');
    expect((nested as PythonDict).get(3)).toBe('x');
    expect(Number.isNaN(parsePythonLiteral('nan') as number)).toBe(true);
    expect(parsePythonLiteral('-inf')).toBe(Number.NEGATIVE_INFINITY);
  });

  it('never evaluates code: names, calls and operators are refused with the position', () => {
    expect(() => parsePythonLiteral("__import__('os').system('rm -rf /')")).toThrow(/"__import__" is not a literal/);
    expect(() => parsePythonLiteral('[1, 2] + [3]')).toThrow(/unexpected text after the value at character 8/);
    expect(() => parsePythonLiteral('open("x")')).toThrow(/not a literal/);
    expect(() => parsePythonLiteral('[1, 2')).toThrow(/expected "," or "]" at character 6 \(at the end\)/);
    expect(() => parsePythonLiteral("['unterminated]")).toThrow(/never closed/);
    expect(() => parsePythonLiteral('{[1]: 2}')).toThrow(/dict key/);
    expect(() => parsePythonLiteral('['.repeat(100) + ']'.repeat(100))).toThrow(/nesting deeper/);
  });

  it('checks the shape each SCIN column needs', () => {
    expect(() => parseStringList('[4, 2]')).toThrow(/list of strings/);
    expect(() => parseNumberList("['4']")).toThrow(/list of numbers/);
    expect(() => parseStringNumberDict("['Eczema']")).toThrow(/dict of names to numbers/);
    expect(() => parseStringNumberDict("{'Eczema': 'high'}")).toThrow(/dict of names to numbers/);
  });
});
