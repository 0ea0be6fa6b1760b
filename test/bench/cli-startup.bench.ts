/**
 * `dermws` start-up: the compiled CLI in dist/ (what bin/dermws.js runs after `npm ci`, whose prepare
 * step compiles electron/) against the TypeScript sources through tsx (DERMWS_RUN_TYPESCRIPT=1), side
 * by side and interleaved, with a bare `node -e 0` as the floor the machine sets. Each run is a whole
 * process doing `dermws info --json` on a fresh library. Medians of several runs; the ratio is what
 * carries over to another machine.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '../..');
const runs = 9;

function seconds(args: string[], env: NodeJS.ProcessEnv = {}): number {
  const started = performance.now();
  const result = spawnSync(process.execPath, args, { cwd: root, env: { ...process.env, ...env }, encoding: 'utf8' });
  const elapsed = (performance.now() - started) / 1000;
  if (result.status !== 0) throw new Error(`${args.join(' ')} failed (${result.status}): ${result.stderr}`);
  return elapsed;
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

export async function run(): Promise<void> {
  const build = spawnSync(process.execPath, [path.join(root, 'build', 'build-cli.mjs')], { cwd: root, encoding: 'utf8' });
  if (build.status !== 0) throw new Error(`npm run build:cli failed:\n${build.stdout}\n${build.stderr}`);
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'dermws-startup-'));
  const library = path.join(folder, 'library');
  try {
    const command = [path.join(root, 'bin', 'dermws.js'), 'info', '--library', library, '--json'];
    seconds(command); // creates the library, so every timed run opens an existing one
    const times = { node: [] as number[], compiled: [] as number[], tsx: [] as number[] };
    for (let index = 0; index < runs; index++) {
      times.node.push(seconds(['-e', '0']));
      times.compiled.push(seconds(command));
      times.tsx.push(seconds(command, { DERMWS_RUN_TYPESCRIPT: '1' }));
    }
    const node = median(times.node);
    const compiled = median(times.compiled);
    const tsx = median(times.tsx);
    console.log(`load average ${os.loadavg().map((value) => value.toFixed(1)).join(' ')} on ${os.cpus().length} cores; median of ${runs} interleaved runs`);
    console.log(`${'what'.padEnd(44)} ${'seconds'.padStart(8)}`);
    console.log(`${'node -e 0 (the floor)'.padEnd(44)} ${node.toFixed(2).padStart(8)}`);
    console.log(`${'dermws info, compiled (dist/)'.padEnd(44)} ${compiled.toFixed(2).padStart(8)}`);
    console.log(`${'dermws info, TypeScript through tsx'.padEnd(44)} ${tsx.toFixed(2).padStart(8)}`);
    console.log(`tsx / compiled: ${(tsx / compiled).toFixed(1)}×; compiled above the floor: ${(compiled - node).toFixed(2)} s`);
  } finally {
    fs.rmSync(folder, { recursive: true, force: true });
  }
}
