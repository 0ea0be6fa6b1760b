import type { Command } from 'commander';
import { DermError } from '../../common/errors.js';
import { globalOptions, parsePositiveInteger, printCliOutput } from '../cli-context.js';

export function registerServeCommands(program: Command): void {
  program
    .command('serve')
    .description('Local web mode: serve the workstation to a browser on this machine (127.0.0.1), protected by a per-run token.')
    .option('--port <n>', 'port to listen on (0 = any free port)', '4780')
    .option('--host <address>', 'address to listen on; anything other than 127.0.0.1 exposes the library to the network', '127.0.0.1')
    .action(async (options: { port: string; host: string }, command: Command) => {
      const global = globalOptions(command);
      const port = options.port === '0' ? 0 : parsePositiveInteger('--port', options.port, 65535);
      if (!/^[0-9a-zA-Z.:\-[\]]+$/.test(options.host)) {
        throw new DermError('invalid-input', `--host must be an IP address or host name; got "${options.host}".`, { field: '--host' });
      }
      // The web bridge and the app host are loaded by this command only.
      const { startServer } = await import('../../web/serve.js');
      const server = await startServer({ hostname: options.host, port, ...(global.library ? { libraryFolder: global.library } : {}) });
      if (server.warning) process.stderr.write(`${server.warning}\n`);
      if (global.json) {
        await printCliOutput('serve', {
          url: server.bridge.url,
          origin: server.bridge.origin,
          port: server.bridge.port,
          host: options.host,
          library: server.libraryFolder,
        });
      } else {
        process.stdout.write(`derm-workstation is serving ${server.libraryFolder}\nOpen ${server.bridge.url}\nPress Ctrl+C to stop.\n`);
      }
      await new Promise<void>((resolve) => {
        const stop = () => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          resolve();
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
      await server.close();
    });
}
