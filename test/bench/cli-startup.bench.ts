/**
 * `dermws` start-up, per command, side by side:
 * - on demand: the compiled CLI in dist/ as shipped (what bin/dermws.js runs after `npm ci`, whose
 *   prepare step compiles electron/), which imports a command's work when the command runs and loads
 *   sharp, onnxruntime, hnswlib, onnx-proto, fflate and zod at first use;
 * - everything up front: the same CLI with the core, the web bridge, the benchmark and those packages
 *   preloaded through `node --import`, which is what every command loaded before it ran when the
 *   command modules and the core imported them statically;
 * - `info` through tsx (DERMWS_RUN_TYPESCRIPT=1): the TypeScript sources compiled at every start;
 * - `node -e 0`: the floor the machine sets.
 * Each run is a whole process on an existing library holding one image; runs are interleaved so load
 * changes hit every column alike; medians of several runs. The ratios are what carry over to another
 * machine; the load average is printed before and after.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import sharp from 'sharp';

const root = path.resolve(import.meta.dirname, '../..');
const runs = 7;

function seconds(args: string[], env: NodeJS.ProcessEnv = {}): number {
  const started = performance.now();
  const result = spawnSync(process.execPath, args, { cwd: root, env: { ...process.env, ...env }, encoding: 'utf8' });
  const elapsed = (performance.now() - started) / 1000;
  if (result.status !== 0) throw new Error(`${args.join(' ')} failed (${result.status}): ${result.stderr}`);
  return elapsed;
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const loadAverage = () =>
  os
    .loadavg()
    .map((value) => value.toFixed(2))
    .join(' ');

/** A module that imports, up front, everything the CLI used to import before running any command. */
function writeEagerPreload(folder: string): string {
  const requireFromRoot = createRequire(path.join(root, 'package.json'));
  const compiled = (relative: string) => pathToFileURL(path.join(root, 'dist', relative)).href;
  const lines = [
    `import ${JSON.stringify(compiled('electron/core/core.js'))};`,
    `import ${JSON.stringify(compiled('electron/web/serve.js'))};`,
    `import ${JSON.stringify(compiled('electron/core/search/search-benchmark.js'))};`,
    `import ${JSON.stringify(compiled('electron/core/cluster/cluster-shard.js'))};`,
    `import { createRequire } from 'node:module';`,
    `const load = createRequire(${JSON.stringify(path.join(root, 'package.json'))});`,
    ...['sharp', 'onnxruntime-node', 'hnswlib-node', 'onnx-proto', 'fflate', 'zod'].map((name) => `load(${JSON.stringify(requireFromRoot.resolve(name))});`),
  ];
  const file = path.join(folder, 'load-everything-up-front.mjs');
  fs.writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

export async function run(): Promise<void> {
  const build = spawnSync(process.execPath, [path.join(root, 'build', 'build-cli.mjs')], { cwd: root, encoding: 'utf8' });
  if (build.status !== 0) throw new Error(`npm run build:cli failed:\n${build.stdout}\n${build.stderr}`);
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'dermws-startup-'));
  const library = path.join(folder, 'library');
  const dermws = path.join(root, 'bin', 'dermws.js');
  try {
    const photo = path.join(folder, 'photo.png');
    await sharp({ create: { width: 320, height: 240, channels: 3, background: { r: 196, g: 150, b: 120 } } })
      .png()
      .toFile(photo);
    seconds([dermws, '--library', library, 'import', photo]);
    const preload = writeEagerPreload(folder);
    let note = 0;
    const commands: Array<{ name: string; args: () => string[] }> = [
      { name: '--help', args: () => ['--help'] },
      { name: 'info --json', args: () => ['--library', library, 'info', '--json'] },
      {
        name: 'label 1 --kind note …',
        args: () => ['--library', library, 'label', '1', '--kind', 'note', '--value', `bench ${note++}`, '--annotator', 'bench'],
      },
      { name: 'index status --json', args: () => ['--library', library, 'index', 'status', '--json'] },
    ];
    for (const command of commands) seconds([dermws, ...command.args()]);

    const loadBefore = loadAverage();
    const floor: number[] = [];
    const tsx: number[] = [];
    const onDemand = new Map<string, number[]>(commands.map((command) => [command.name, []]));
    const upFront = new Map<string, number[]>(commands.map((command) => [command.name, []]));
    for (let index = 0; index < runs; index++) {
      floor.push(seconds(['-e', '0']));
      for (const command of commands) {
        onDemand.get(command.name)!.push(seconds([dermws, ...command.args()]));
        upFront.get(command.name)!.push(seconds(['--import', pathToFileURL(preload).href, dermws, ...command.args()]));
      }
      tsx.push(seconds([dermws, '--library', library, 'info', '--json'], { DERMWS_RUN_TYPESCRIPT: '1' }));
    }
    const loadAfter = loadAverage();

    console.log(`load average ${loadBefore} before, ${loadAfter} after, on ${os.cpus().length} cores; median of ${runs} interleaved runs, seconds`);
    console.log(`${'command'.padEnd(26)} ${'on demand'.padStart(10)} ${'up front'.padStart(10)} ${'up front / on demand'.padStart(22)}`);
    for (const command of commands) {
      const lazy = median(onDemand.get(command.name)!);
      const eager = median(upFront.get(command.name)!);
      console.log(
        `${command.name.padEnd(26)} ${lazy.toFixed(2).padStart(10)} ${eager.toFixed(2).padStart(10)} ${`${(eager / lazy).toFixed(1)}×`.padStart(22)}`,
      );
    }
    const info = median(onDemand.get('info --json')!);
    console.log(`${'node -e 0 (the floor)'.padEnd(26)} ${median(floor).toFixed(2).padStart(10)}`);
    console.log(`${'info --json through tsx'.padEnd(26)} ${median(tsx).toFixed(2).padStart(10)}   (${(median(tsx) / info).toFixed(1)}× the compiled CLI)`);
  } finally {
    fs.rmSync(folder, { recursive: true, force: true });
  }
}
