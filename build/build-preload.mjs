// Bundles the preload to one CommonJS file: Electron's sandboxed preloads cannot load ES modules or
// require anything but 'electron' and a few built-ins, so zod and the contract are bundled in.
import { build } from 'esbuild';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

await build({
  entryPoints: [path.join(root, 'electron/preload/preload.ts')],
  outfile: path.join(root, 'dist/electron/preload/preload.cjs'),
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node22',
  external: ['electron'],
  minify: true,
  sourcemap: true,
  logLevel: 'warning',
});
