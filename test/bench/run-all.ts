/**
 * `npm run bench [name…]`: runs every `test/bench/*.bench.ts` (or the named ones) in one process and
 * prints their figures. Each bench module exports `run(): Promise<void>` and prints its own table,
 * with ratios measured side by side in the same run.
 */
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const folder = import.meta.dirname;
const wanted = process.argv.slice(2);
const benches = fs
  .readdirSync(folder)
  .filter((file) => file.endsWith('.bench.ts'))
  .filter((file) => wanted.length === 0 || wanted.some((name) => file.startsWith(name)))
  .sort();
if (benches.length === 0) {
  console.error(
    `No bench matches ${wanted.join(', ')}. Available: ${fs
      .readdirSync(folder)
      .filter((f) => f.endsWith('.bench.ts'))
      .join(', ')}`,
  );
  process.exitCode = 2;
}
for (const file of benches) {
  console.log(`\n=== ${file.replace('.bench.ts', '')} (${new Date().toISOString()}, node ${process.version}) ===`);
  const module = (await import(pathToFileURL(path.join(folder, file)).href)) as { run: () => Promise<void> };
  await module.run();
}
