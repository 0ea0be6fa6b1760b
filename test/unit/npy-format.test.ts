import { describe, expect, it } from 'vitest';
import { isDermError } from '../../electron/common/errors.js';
import { decodeNpy, encodeNpy, parseNpyHeader } from '../../electron/core/embeddings/npy-format.js';

/** `np.save(b, np.array([1.5, -2, 3], dtype='<f4'))` from NumPy 2.4: its header is padded to 128 bytes. */
const numpyWritten = Buffer.from(
  '934e554d5059010076007b276465736372273a20273c6634272c2027666f727472616e5f6f72646572273a2046616c73652c20277368617065273a2028332c292c207d' +
    '20'.repeat(60) +
    '0a0000c03f000000c000004040',
  'hex',
);

function headerBytes(dictionary: string, version = 1): Uint8Array {
  const text = `${dictionary}\n`;
  const prefix = version === 1 ? 10 : 12;
  const out = new Uint8Array(prefix + text.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]);
  const view = new DataView(out.buffer);
  if (version === 1) view.setUint16(8, text.length, true);
  else view.setUint32(8, text.length, true);
  out.set(new TextEncoder().encode(text), prefix);
  return out;
}

function errorOf(work: () => unknown): Error {
  try {
    work();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected an error');
}

describe('.npy format', () => {
  it('reads an array written by NumPy', () => {
    const array = decodeNpy(numpyWritten, 'numpy.npy');
    expect(array.dtype).toBe('<f4');
    expect(array.shape).toEqual([3]);
    expect(array.data).toBeInstanceOf(Float32Array);
    expect(Array.from(array.data)).toEqual([1.5, -2, 3]);
  });

  it('writes a version 1.0 header padded with spaces to a multiple of 64 bytes and ending in a newline', () => {
    const bytes = encodeNpy(new Float64Array([1, 2, 3, 4, 5, 6]), [2, 3]);
    expect(Array.from(bytes.subarray(0, 8))).toEqual([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
    const headerLength = new DataView(bytes.buffer).getUint16(8, true);
    const dataOffset = 10 + headerLength;
    expect(dataOffset % 64).toBe(0);
    const text = Buffer.from(bytes.subarray(10, dataOffset)).toString('latin1');
    expect(text.endsWith('\n')).toBe(true);
    expect(text.trimEnd()).toBe("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }");
    expect(bytes.length - dataOffset).toBe(6 * 8);
    expect(new DataView(bytes.buffer).getFloat64(dataOffset + 8, true)).toBe(2);
    const oneDimensional = Buffer.from(encodeNpy(new Float32Array(6144), [6144])).toString('latin1');
    expect(oneDimensional).toContain("'shape': (6144,)");
  });

  it('round-trips float32 and float64 values exactly', () => {
    const f32 = Float32Array.from({ length: 37 }, (_, index) => Math.fround(Math.sin(index) * 1e3));
    const f64 = Float64Array.from({ length: 12 }, (_, index) => Math.PI * index - 1e-12);
    const a = decodeNpy(encodeNpy(f32, [37]), 'a');
    const b = decodeNpy(encodeNpy(f64, [3, 4]), 'b');
    expect(a.data).toEqual(f32);
    expect(b.shape).toEqual([3, 4]);
    expect(b.data).toEqual(f64);
  });

  it('accepts version 2 and 3 headers and keys in any order', () => {
    const header = parseNpyHeader(headerBytes("{'shape': (4, 8), 'fortran_order': False, 'descr': '<f8'}", 2), 'v2.npy');
    expect(header).toMatchObject({ dtype: '<f8', shape: [4, 8], version: 2 });
    expect(parseNpyHeader(headerBytes("{'descr': '<f4', 'fortran_order': False, 'shape': ()}", 3), 'v3.npy').shape).toEqual([]);
  });

  it('rejects unsupported dtypes, big-endian data and Fortran order with the source named', () => {
    const int64 = errorOf(() => parseNpyHeader(headerBytes("{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }"), 'ids.npy'));
    expect(isDermError(int64, 'embeddings-invalid')).toBe(true);
    expect(int64.message).toContain('ids.npy');
    expect(int64.message).toContain('"<i8"');
    const bigEndian = errorOf(() => parseNpyHeader(headerBytes("{'descr': '>f4', 'fortran_order': False, 'shape': (3,), }"), 'big.npy'));
    expect(bigEndian.message).toMatch(/big\.npy.*Big-endian/);
    const fortran = errorOf(() => parseNpyHeader(headerBytes("{'descr': '<f4', 'fortran_order': True, 'shape': (3, 2), }"), 'x.npz, key "a"'));
    expect(fortran.message).toContain('x.npz, key "a"');
    expect(fortran.message).toContain('Fortran');
    const structured = errorOf(() => parseNpyHeader(headerBytes("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (3,), }"), 's.npy'));
    expect(structured.message).toContain('s.npy');
  });

  it('rejects files that are not .npy, truncated data and malformed headers', () => {
    expect(errorOf(() => decodeNpy(Buffer.from('PK\x03\x04 not numpy'), 'zip.npy')).message).toMatch(/zip\.npy.*magic/);
    expect(errorOf(() => decodeNpy(numpyWritten.subarray(0, numpyWritten.length - 2), 'cut.npy')).message).toMatch(/cut\.npy.*truncated/);
    expect(errorOf(() => parseNpyHeader(headerBytes("{'descr': '<f4', 'shape': (3,)}"), 'keys.npy')).message).toMatch(/keys\.npy.*fortran_order/);
    expect(errorOf(() => parseNpyHeader(headerBytes("{'descr': '<f4' 'fortran_order': False}"), 'bad.npy')).message).toMatch(/bad\.npy.*Python dictionary/);
    const version9 = headerBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }");
    version9[6] = 9;
    expect(errorOf(() => parseNpyHeader(version9, 'v9.npy')).message).toMatch(/v9\.npy.*version 9/);
  });

  it('refuses a shape that does not match the values given', () => {
    expect(() => encodeNpy(new Float32Array(5), [2, 3])).toThrow(/\(2, 3\).*6 values.*5/);
  });
});
