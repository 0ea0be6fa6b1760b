import type { Command } from 'commander';
import { exitCodes, printJobResult, progressPrinter, withCore, withInterrupt } from '../cli-context.js';

/**
 * `dermws demo`: generates the demo library (a small SCIN-shaped dataset drawn on all six Fitzpatrick
 * types), imports it and embeds it with the default encoder. With --json prints the demo job's result
 * (demoReportSchema in the contract), as the app's demoStart job returns it.
 */
export function registerDemoCommands(program: Command): void {
  program
    .command('demo')
    .description(
      'fill an empty library with generated demo data (SCIN-shaped cases on all six skin types, two readers, broken and duplicate files), imported and embedded; Ctrl-C stops, run again to resume',
    )
    .option('--no-embed', 'import only; embed later with "dermws embed"')
    .action(async (options: { embed: boolean }, command: Command) => {
      await withCore(command, async (core, { json }) => {
        await withInterrupt(async (signal) => {
          const onProgress = progressPrinter();
          const report = await core.demo.create({ embed: options.embed, signal, ...(onProgress ? { onProgress } : {}) });
          process.exitCode = report.status === 'cancelled' ? exitCodes.cancelled : report.status === 'success' ? exitCodes.ok : exitCodes.partial;
          if (json) return await printJobResult('demoReportSchema', report);
          const write = (line: string) => process.stdout.write(`${line}\n`);
          const imported = report.datasetImport.images;
          write(`Demo library in ${report.libraryFolder}${report.status === 'cancelled' ? ' — cancelled; run "dermws demo" again to finish' : ''}`);
          write(`  dataset: ${report.datasetFolder} (${report.cases} cases, ${report.photos} photo files)`);
          write(
            `  imported ${imported.imported} images (${imported.alreadyInLibrary} already in the library, ${imported.failed} broken on purpose); ${report.datasetImport.issues.length} issues reported by the SCIN import`,
          );
          write(`  condition labels by scin-dermatologists and ${report.secondReader.labels > 0 ? 'demo-second-reader' : '(second reader not stored yet)'}`);
          if (report.embedding)
            write(
              `  embedded ${report.embedding.embedded} of ${report.embedding.total} with ${report.embedding.modelId} (already done: ${report.embedding.skipped})`,
            );
          write(`  outside photo to search with: ${report.outsidePhoto}`);
          write(`Next: dermws duplicates, dermws agreement --kind condition, dermws probe train --top 5`);
        });
      });
    });
}
