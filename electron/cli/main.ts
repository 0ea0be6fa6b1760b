import { Command, CommanderError } from 'commander';
import { registerCommands } from './commands/index.js';
import { exitCodes, reportError } from './cli-context.js';

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('dermws')
    .description('derm-workstation: a local library of skin images with embeddings, search, labelling, quality flags and probes.')
    .option('--library <dir>', 'library folder (default: $DERMWS_LIBRARY or the application-data folder)')
    .option('--json', 'print stable, machine-readable JSON on stdout')
    .exitOverride()
    .showHelpAfterError();
  registerCommands(program);
  return program;
}

export async function runCli(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : exitCodes.ok;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.code === 'commander.help') return exitCodes.ok;
      return exitCodes.couldNotRun;
    }
    return reportError(error, argv.includes('--json'));
  }
}
