import type { z } from 'zod';
import { schemaBuiltAtFirstUse } from '../runtime/lazy-packages.js';

/**
 * The model contract: every ONNX image encoder (the bundled default, Derm Foundation exported by the
 * user, any other) is described by one of these JSON manifests. Preprocessing is taken from here and
 * nowhere else.
 */
export const modelManifestSchema = schemaBuiltAtFirstUse((z) =>
  z
    .object({
      /** Stable id used in the library (embeddings, indexes, probes): lowercase letters, digits, '-', '.', '_'. */
      id: z.string().regex(/^[a-z0-9][a-z0-9._-]{1,63}$/, 'id must be 2–64 characters of a–z, 0–9, ".", "_" or "-", starting with a letter or digit'),
      displayName: z.string().min(1),
      /** ONNX file name, relative to the manifest's folder. */
      file: z.string().min(1),
      /** sha256 (hex) of the ONNX file; checked before the model is used. */
      sha256: z.string().regex(/^[0-9a-f]{64}$/, 'sha256 must be 64 lowercase hex characters'),
      input: z.object({
        name: z.string().min(1),
        layout: z.enum(['NHWC', 'NCHW']),
        width: z.number().int().positive().max(4096),
        height: z.number().int().positive().max(4096),
        /** sharp kernel used to resize. */
        resize: z.enum(['bilinear', 'bicubic', 'nearest', 'lanczos3']),
        /** stretch: ignore aspect; centre-crop: cover then crop; pad: contain then pad with padColour. */
        fit: z.enum(['stretch', 'centre-crop', 'pad']),
        padColour: z.tuple([z.number().int().min(0).max(255), z.number().int().min(0).max(255), z.number().int().min(0).max(255)]).optional(),
        /** Pixel values are first scaled from 0..255 to this range, then (value - mean) / std per channel. */
        valueRange: z.tuple([z.number(), z.number()]),
        mean: z.tuple([z.number(), z.number(), z.number()]),
        std: z.tuple([z.number().positive(), z.number().positive(), z.number().positive()]),
      }),
      output: z.object({
        name: z.string().min(1),
        dim: z.number().int().positive().max(65536),
      }),
      licence: z.string().min(1),
      origin: z.string().min(1),
      /** Statements about preprocessing that are assumptions rather than documented facts. */
      assumptions: z.array(z.string()).optional(),
      /** Free text shown in the UI: what the model is (and is not). */
      description: z.string().optional(),
    })
    .strict(),
);

export type ModelManifest = z.infer<ReturnType<typeof modelManifestSchema>>;
