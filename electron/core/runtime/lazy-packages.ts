import { createRequire } from 'node:module';
import type * as Fflate from 'fflate';
import type * as HnswLib from 'hnswlib-node';
import type * as OnnxRuntime from 'onnxruntime-node';
import type { onnx as OnnxNamespace } from 'onnx-proto';
import type Sharp from 'sharp';
import type * as Zod from 'zod';

/**
 * The packages that take tens to hundreds of milliseconds to load (native add-ons, protobuf's
 * generated code, a zip library, zod's hundred modules), each loaded the first time it is used instead of when the core is imported.
 * `dermws info`, `dermws label`, `dermws index status` and `--help` open the library without decoding
 * an image or running ONNX, so they start without sharp, onnxruntime, hnswlib, onnx-proto, fflate or zod; a command
 * that does use one pays its load once, on first use. test/unit/startup-imports.test.ts keeps these
 * packages off the static import graph of the CLI and the core.
 *
 * Each export is a stand-in that forwards every property read and call to the package, so call sites
 * read exactly like a static import (`sharp(bytes)`, `new onnxRuntime.Tensor(…)`). They are loaded
 * with require (each ships a CommonJS build) so that synchronous code such as building an HNSW graph
 * stays synchronous.
 */
const requirePackage = createRequire(import.meta.url);

function loadedAtFirstUse<T extends object>(load: () => T): T {
  let loaded: T | undefined;
  const target = (): T => (loaded ??= load());
  // A function as the proxy's target, so a package that is itself a function (sharp) can be called.
  return new Proxy(function notYetLoaded() {} as unknown as T, {
    get: (_placeholder, key) => Reflect.get(target(), key),
    has: (_placeholder, key) => Reflect.has(target(), key),
    apply: (_placeholder, thisArgument, args: unknown[]) => Reflect.apply(target() as (...values: unknown[]) => unknown, thisArgument, args),
  });
}

/** sharp (libvips): image decoding, resizing and encoding. */
export const sharp: typeof Sharp = loadedAtFirstUse(() => requirePackage('sharp') as typeof Sharp);

/** onnxruntime-node: encoder sessions, the index projection and the probe solver's matrix products. */
export const onnxRuntime: typeof OnnxRuntime = loadedAtFirstUse(() => requirePackage('onnxruntime-node') as typeof OnnxRuntime);

/** hnswlib-node: the approximate nearest-neighbour graph of the vector index. */
export const hnswlib: typeof HnswLib = loadedAtFirstUse(() => requirePackage('hnswlib-node') as typeof HnswLib);

/** onnx-proto's `onnx` namespace (protobufjs code generated from onnx.proto), for writing ONNX graphs. */
export const onnxProto: typeof OnnxNamespace = loadedAtFirstUse(() => (requirePackage('onnx-proto') as { onnx: typeof OnnxNamespace }).onnx);

/** fflate: the zip container of `.npz` files. */
export const fflate: typeof Fflate = loadedAtFirstUse(() => requirePackage('fflate') as typeof Fflate);

/**
 * zod for the core's own schemas (model manifests, quality thresholds, cluster plans and shards). The
 * contract's schemas in electron/common import zod as usual; no schema of one kind is ever nested in the
 * other, so the two module instances never meet.
 */
const zod: typeof Zod = loadedAtFirstUse(() => requirePackage('zod') as typeof Zod);

/**
 * A schema built the first time it is asked for, so that importing the module that declares it does not
 * load zod: `const schema = schemaBuiltAtFirstUse((z) => z.object(…)); schema().parse(value)`.
 */
export function schemaBuiltAtFirstUse<T>(build: (z: typeof Zod.z) => T): () => T {
  let built: T | undefined;
  return () => (built ??= build(zod.z));
}
