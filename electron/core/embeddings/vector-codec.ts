import { DermError } from '../../common/errors.js';

/** Embeddings are stored as little-endian Float32 blobs. These helpers convert without surprises on any platform. */
const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export function vectorToBlob(vector: ArrayLike<number>): Buffer {
  const floats = vector instanceof Float32Array ? vector : Float32Array.from(vector);
  if (littleEndian) return Buffer.from(floats.buffer, floats.byteOffset, floats.byteLength);
  const buffer = Buffer.alloc(floats.length * 4);
  for (let index = 0; index < floats.length; index++) buffer.writeFloatLE(floats[index]!, index * 4);
  return buffer;
}

/** Copies the blob into a fresh, aligned Float32Array (SQLite buffers are not guaranteed 4-byte aligned). */
export function blobToVector(blob: Buffer | Uint8Array): Float32Array {
  if (blob.byteLength % 4 !== 0) throw new Error(`An embedding blob of ${blob.byteLength} bytes is not a whole number of float32 values.`);
  const out = new Float32Array(blob.byteLength / 4);
  if (littleEndian) {
    new Uint8Array(out.buffer).set(blob instanceof Buffer ? new Uint8Array(blob.buffer, blob.byteOffset, blob.byteLength) : blob);
  } else {
    const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
    for (let index = 0; index < out.length; index++) out[index] = view.getFloat32(index * 4, true);
  }
  return out;
}

/** Position of the first NaN or infinite value, or -1 when every value is finite. */
export function firstNonFinite(vector: ArrayLike<number>): number {
  for (let index = 0; index < vector.length; index++) if (!Number.isFinite(vector[index]!)) return index;
  return -1;
}

/**
 * Decodes a stored embedding and refuses a damaged one (a flipped page, a bad disk): a NaN in the graph
 * or a probe matrix makes results silently wrong, so the error names the image, model and database.
 */
export function storedVector(blob: Buffer, imageId: number, modelId: string, databaseFile: string): Float32Array {
  const vector = blobToVector(blob);
  const bad = firstNonFinite(vector);
  if (bad >= 0) {
    throw new DermError(
      'embeddings-invalid',
      `The stored embedding of image ${imageId} for model "${modelId}" in ${databaseFile} is damaged (value ${bad} is ${vector[bad]}). Run "dermws check" to list damaged rows; embedding that image again replaces it.`,
      { imageId, modelId, file: databaseFile },
    );
  }
  return vector;
}
