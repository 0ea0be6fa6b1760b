// Compiles electron/ to dist/ with tsc so `dermws` starts as JavaScript instead of compiling TypeScript
// through tsx at every start. Run by `npm run build:cli`, by `npm run build:electron`, and by npm's
// `prepare` step after `npm ci` / `npm install`. A failed compile never fails the install:
// bin/dermws.js then runs the sources through tsx and says why.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const stamp = path.join(root, 'dist', 'cli-build.json');
const fromPrepare = process.argv.includes('--from-prepare');

let tsc;
try {
  tsc = createRequire(path.join(root, 'package.json')).resolve('typescript/bin/tsc');
} catch {
  console.warn('dermws: TypeScript is not installed (production install?); the CLI will not be compiled.');
  process.exit(0);
}

fs.rmSync(stamp, { force: true });
const started = Date.now();
const result = spawnSync(process.execPath, [tsc, '-p', path.join(root, 'build', 'tsconfig.electron.json')], { cwd: root, stdio: 'inherit' });
if (result.status !== 0) {
  console.warn(
    `dermws: compiling electron/ to dist/ failed (tsc exit ${result.status}); "dermws" will run the TypeScript sources through tsx (slower to start).`,
  );
  process.exit(fromPrepare ? 0 : 1);
}
// The stamp is what bin/dermws.js compares with the sources' modification times.
fs.writeFileSync(stamp, `${JSON.stringify({ builtAt: new Date().toISOString(), seconds: (Date.now() - started) / 1000 }, null, 2)}\n`);
console.log(`dermws: compiled electron/ to dist/ in ${((Date.now() - started) / 1000).toFixed(1)} s.`);
