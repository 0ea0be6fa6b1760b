import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { findUpwards } from '../library/installation.js';
import { applicationDataFolder } from '../library/library-location.js';
import type { ManifestLocation } from './manifest-file.js';

/**
 * Where the converted default encoder is cached: `DERMWS_MODEL_CACHE`, else
 * `<application data>/models`. It is shared by every library on the machine, because the
 * conversion is deterministic and takes a while.
 */
export function modelCacheFolder(env: NodeJS.ProcessEnv = process.env): string {
  return env.DERMWS_MODEL_CACHE ? path.resolve(env.DERMWS_MODEL_CACHE) : path.join(applicationDataFolder(process.platform, env), 'models');
}

/** `native-models/manifests` above this module (source tree or packaged app), when it exists. */
export function bundledManifestFolders(start = path.dirname(fileURLToPath(import.meta.url))): string[] {
  const found = findUpwards(start, (folder) => {
    const candidate = path.join(folder, 'native-models', 'manifests');
    return fs.existsSync(candidate) ? candidate : undefined;
  });
  return found === undefined ? [] : [found];
}

/** Converts (once per machine) and locates the bundled default encoder. Loaded lazily: the converter pulls in the nsfwjs weights. */
export async function defaultEncoderLocation(cacheFolder = modelCacheFolder()): Promise<ManifestLocation> {
  const { ensureDefaultEncoder } = await import('./default-encoder/convert.js');
  const ensured = await ensureDefaultEncoder({ cacheFolder });
  return { manifestPath: ensured.manifestPath, onnxPath: ensured.onnxPath, manifest: ensured.manifest };
}
