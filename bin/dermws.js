#!/usr/bin/env node
// Runs the compiled CLI (dist/, made by `npm run build:cli` and by npm's prepare step after install)
// when it is at least as new as every TypeScript source it was compiled from (electron/, native-models/); otherwise runs the TypeScript sources
// through tsx, which compiles them at every start (seconds instead of a fraction of one), and says so.
// DERMWS_RUN_TYPESCRIPT=1 forces the sources (the start-up bench compares both).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const compiled = path.join(root, 'dist', 'electron', 'cli', 'main.js');
const stamp = path.join(root, 'dist', 'cli-build.json');

/** Newest modification time of the TypeScript sources under a folder (a few hundred stat calls in all). */
function newestSource(folder) {
  let newest = 0;
  for (const entry of fs.readdirSync(folder, { withFileTypes: true })) {
    const full = path.join(folder, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(full));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, fs.statSync(full).mtimeMs);
  }
  return newest;
}

function compiledState() {
  if (process.env.DERMWS_RUN_TYPESCRIPT === '1') return 'forced';
  if (!fs.existsSync(stamp) || !fs.existsSync(compiled)) return 'missing';
  const sources = Math.max(newestSource(path.join(root, 'electron')), newestSource(path.join(root, 'native-models')));
  return fs.statSync(stamp).mtimeMs >= sources ? 'fresh' : 'stale';
}

const state = compiledState();
let entry;
if (state === 'fresh') {
  entry = pathToFileURL(compiled).href;
} else {
  if (state !== 'forced' && !process.env.DERMWS_QUIET_TYPESCRIPT) {
    process.stderr.write(
      state === 'missing'
        ? 'dermws: no compiled CLI in dist/; running the TypeScript sources through tsx (slower start). Run "npm run build:cli" once.\n'
        : 'dermws: the sources changed since dist/ was compiled; running the TypeScript sources through tsx (slower start). Run "npm run build:cli" to compile again.\n',
    );
  }
  const { register } = await import('tsx/esm/api');
  register();
  entry = pathToFileURL(path.join(root, 'electron', 'cli', 'main.ts')).href;
}
const { runCli } = await import(entry);
process.exitCode = await runCli(process.argv.slice(2));
