import type { Command } from 'commander';
import { registerServeCommands } from './serve.command.js';
import { registerModelsCommands } from './models.command.js';
import { registerLibraryCommands } from './library.command.js';
import { registerProbesCommands } from './probes.command.js';
import { registerLabelsCommands } from './labels.command.js';
import { registerDatasetsCommands } from './datasets.command.js';
import { registerSearchCommands } from './search.command.js';
import { registerDemoCommands } from './demo.command.js';
import { registerBenchCommands } from './bench.command.js';
import { registerClusterCommands } from './cluster.command.js';

/**
 * Every `dermws` command registers itself here. Each feature keeps its commands in its own
 * `<feature>.command.ts` file and is added with one line below.
 */
export function registerCommands(program: Command): void {
  void program;
  registerServeCommands(program);
  registerModelsCommands(program);
  registerLibraryCommands(program);
  registerProbesCommands(program);
  registerLabelsCommands(program);
  registerDatasetsCommands(program);
  registerSearchCommands(program);
  registerDemoCommands(program);
  registerBenchCommands(program);
  // After the models commands: it adds `plan` and `shard` under their `embed`.
  registerClusterCommands(program);
}
