/**
 * `npm run models:prepare`: converts the default encoder into the model cache at install time, so
 * the first embedding run does not wait for it. The cache is DERMWS_MODEL_CACHE or
 * `<application data>/derm-workstation/models`, the folder the runtime looks in.
 */
import path from 'node:path';
import { applicationDataFolder } from '../../electron/core/library/library-location.js';
import { ensureDefaultEncoder } from '../../electron/core/models/default-encoder/convert.js';

const cacheFolder = process.env.DERMWS_MODEL_CACHE ?? path.join(applicationDataFolder(), 'models');
try {
  const model = await ensureDefaultEncoder({ cacheFolder });
  console.log(`${model.converted ? 'Converted' : 'Already up to date:'} ${model.manifest.id} → ${model.onnxPath} (sha256 ${model.manifest.sha256})`);
} catch (error) {
  console.error(`models:prepare failed: ${(error as Error).message}`);
  process.exitCode = 1;
}
