import { describe, expect, it } from 'vitest';
import { endsBeforeItsEndMarker, explainDecodeError } from '../../electron/core/import/image-decoder.js';
import { skinImage } from '../fixtures/skin-images.js';

describe('truncation from the container, not the decoder message', () => {
  it('recognises cut-off PNG and JPEG files and leaves whole ones alone', async () => {
    const png = await skinImage({ seed: 5, width: 64, height: 48, format: 'png' });
    const jpeg = await skinImage({ seed: 5, width: 64, height: 48, format: 'jpeg' });
    expect(endsBeforeItsEndMarker(png)).toBe(false);
    expect(endsBeforeItsEndMarker(jpeg)).toBe(false);
    expect(endsBeforeItsEndMarker(Buffer.concat([jpeg, Buffer.alloc(16)]))).toBe(false);
    expect(endsBeforeItsEndMarker(png.subarray(0, Math.floor(png.length / 3)))).toBe(true);
    expect(endsBeforeItsEndMarker(jpeg.subarray(0, jpeg.length - 10))).toBe(true);
    expect(endsBeforeItsEndMarker(Buffer.from('plain text'))).toBe(false);
  });

  it('calls a cut-off file truncated even when the decoder message is empty or unrelated', async () => {
    const png = await skinImage({ seed: 6, width: 64, height: 48, format: 'png' });
    const cut = png.subarray(0, Math.floor(png.length / 2));
    expect(explainDecodeError(new Error(''), cut)).toMatch(/truncated/);
    expect(explainDecodeError(new Error('Unknown error'), cut)).toMatch(/truncated/);
    expect(explainDecodeError(new Error('Unknown error'), png)).not.toMatch(/truncated/);
  });
});
