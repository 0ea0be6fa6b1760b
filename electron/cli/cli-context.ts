import type { Command } from 'commander';
import type { z } from 'zod';
import type * as ContractModuleValues from '../common/contract.js';
import type { CallInput, CallName, CallOutput } from '../common/contract.js';
import { DermError, serializeError } from '../common/errors.js';
import type { Core } from '../core/core.js';
import type { JobProgress } from '../core/jobs/job.js';
import { explainLibraryError } from '../core/library/library-errors.js';
import type { CliOutputName, cliOutputs } from './cli-outputs.js';

type ContractModule = typeof ContractModuleValues;
type CliOutputs = typeof cliOutputs;

/**
 * Exit codes of every `dermws` command (documented in docs/cli.md):
 * 0 everything succeeded; 1 the command ran but some items failed (e.g. some files could not be
 * imported); 2 the command could not run (bad arguments, unreadable library, …); 130 cancelled.
 */
export const exitCodes = { ok: 0, partial: 1, couldNotRun: 2, cancelled: 130 } as const;

export interface GlobalOptions {
  library?: string;
  json?: boolean;
}

export function globalOptions(command: Command): GlobalOptions {
  return command.optsWithGlobals() as GlobalOptions;
}

/**
 * Opens the core for one command and always closes it. The core is imported here, when a command
 * runs, rather than at the top of the CLI, so `dermws --help` and a mistyped command never load it.
 */
export async function withCore<T>(command: Command, work: (core: Core, options: GlobalOptions) => Promise<T> | T): Promise<T> {
  const options = globalOptions(command);
  const { createCore } = await import('../core/core.js');
  const core = createCore(options.library ? { libraryFolder: options.library } : {});
  try {
    return await work(core, options);
  } catch (error) {
    throw explainLibraryError(error, core.library.paths, core.library.readOnly);
  } finally {
    core.close();
  }
}

/**
 * Runs a job with an AbortSignal that Ctrl-C trips (and any other signal named: a cluster scheduler
 * stops a task with SIGTERM). The job stops between units of work: what it committed stays and running
 * it again resumes. The handlers are removed when the job settles, so a later Ctrl-C ends the process.
 */
export async function withInterrupt<T>(work: (signal: AbortSignal) => Promise<T>, signals: readonly NodeJS.Signals[] = ['SIGINT']): Promise<T> {
  const controller = new AbortController();
  const onSignal = () => controller.abort();
  for (const signal of signals) process.once(signal, onSignal);
  try {
    return await work(controller.signal);
  } finally {
    for (const signal of signals) process.off(signal, onSignal);
  }
}

/**
 * Runs one contract call in this process through the app's own handler, with the same input and
 * output validation as the desktop app and the web mode, so `--json` prints exactly the call's
 * output: one documented shape (docs/cli.md names the call of each command).
 */
export async function callContract<Name extends CallName>(core: Core, name: Name, input: CallInput<Name>): Promise<CallOutput<Name>> {
  const [{ AppApi }, { handlers }, { appVersion }] = await Promise.all([
    import('../core/app-api/app-api.js'),
    import('../core/app-api/create-app-api.js'),
    import('../core/library/installation.js'),
  ]);
  const api = new AppApi(core, handlers, { mode: 'cli', appVersion: appVersion() });
  return (await api.invoke(name, input)) as CallOutput<Name>;
}

/**
 * Prints what a command computed with the same core function as the call's handler, as the call's
 * output: validated by the contract's output schema first, so a field the contract does not promise
 * is never printed and a missing one fails loudly instead of printing a shape of the CLI's own.
 */
export async function printCallOutput(name: CallName, value: unknown): Promise<void> {
  // The contract (and zod with it) loads only when a command prints JSON: start-up stays light.
  const { contract } = await import('../common/contract.js');
  printJson(contract[name].output.parse(value));
}

/**
 * The contract schemas that describe a job's result (JobInfo.result of the call that starts it), and
 * datasetImportReportSchema, the part of the demo job's result that a dataset import reports alone.
 */
export type JobResultSchemaName =
  | 'importReportSchema'
  | 'datasetImportReportSchema'
  | 'libraryCheckReportSchema'
  | 'exportReportSchema'
  | 'embedReportSchema'
  | 'demoReportSchema'
  | 'clusterImportReportSchema';

/** Prints a job's result as the contract's schema for that result, e.g. libraryCheckReportSchema. */
export async function printJobResult<Name extends JobResultSchemaName>(schemaName: Name, value: z.input<ContractModule[Name]>): Promise<void> {
  const contractModule = await import('../common/contract.js');
  printJson(contractModule[schemaName].parse(value));
}

/**
 * Prints the output of a command that has no call in the contract with its own schema (cli-outputs.ts),
 * validated first like a call's output. The value's type is checked against the schema at compile time.
 */
export async function printCliOutput<Name extends CliOutputName>(name: Name, value: z.input<CliOutputs[Name]>): Promise<void> {
  const { cliOutputs } = await import('./cli-outputs.js');
  printJson(cliOutputs[name].parse(value));
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** A one-line progress bar on a TTY (stderr); silent otherwise, so piped output stays clean. */
export function progressPrinter(enabled = Boolean(process.stderr.isTTY)): ((progress: JobProgress) => void) | undefined {
  if (!enabled) return undefined;
  return (progress) => {
    const width = 30;
    const fraction = progress.total > 0 ? progress.done / progress.total : 0;
    const filled = Math.round(fraction * width);
    const eta = progress.etaSeconds === null ? '' : ` ETA ${formatSeconds(progress.etaSeconds)}`;
    const current = progress.current ? ` ${truncateMiddle(progress.current, 40)}` : '';
    process.stderr.write(
      `\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${progress.done}/${progress.total} ${progress.ratePerSecond.toFixed(1)}/s${eta}${current}\x1b[K`,
    );
    if (progress.done >= progress.total) process.stderr.write('\n');
  };
}

function formatSeconds(seconds: number): string {
  if (seconds < 60) return `${Math.round(seconds)}s`;
  const minutes = Math.floor(seconds / 60);
  return `${minutes}m${String(Math.round(seconds % 60)).padStart(2, '0')}s`;
}

function truncateMiddle(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max / 2 - 1)}…${text.slice(-max / 2)}`;
}

/** Prints an error (as JSON with --json) and returns the exit code for it. */
export function reportError(error: unknown, json: boolean): number {
  const serialized = serializeError(error);
  if (json) printJson({ error: serialized });
  else process.stderr.write(`dermws: ${serialized.message}\n`);
  if (serialized.code === 'cancelled') return exitCodes.cancelled;
  return exitCodes.couldNotRun;
}

/** Parses a positive integer option, with an error that names the option. */
export function parsePositiveInteger(name: string, value: string, max = Number.MAX_SAFE_INTEGER): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed <= 0 || parsed > max) {
    throw new DermError('invalid-input', `${name} must be a whole number from 1 to ${max}; got "${value}".`, { field: name });
  }
  return parsed;
}
