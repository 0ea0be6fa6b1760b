import fs from 'node:fs';
import type { Command } from 'commander';
import { DermError } from '../../common/errors.js';
import {
  callContract,
  exitCodes,
  parsePositiveInteger,
  printCliOutput,
  printJobResult,
  printJson,
  progressPrinter,
  withCore,
  withInterrupt,
} from '../cli-context.js';
import type { ModelCheckResult } from '../../core/models/model-registry.js';
import { importClusterResults } from './cluster.command.js';

/**
 * `dermws models list|add|check|remove`, `dermws embed` and `dermws embeddings import`. With --json,
 * models list, check and add print the modelsList, modelsCheck and modelsAdd calls' outputs, through
 * the calls themselves (file paths stay in the text output); embed prints the embedding job's result
 * schema, and models remove and embeddings import of a file, which the app has no call for, their
 * schemas in cli-outputs.ts (docs/cli.md, "`--json` prints contract outputs").
 */
export function registerModelsCommands(program: Command): void {
  const models = program.command('models').description('encoder models: list, add and check ONNX encoders');

  models
    .command('list')
    .description('list the models this library can use (bundled default, native-models/manifests, the library models folder)')
    .action(async (_options: unknown, command: Command) => {
      await withCore(command, async (core, { json }) => {
        if (json) {
          const listed = await callContract(core, 'modelsList', {});
          printJson(listed);
          if (listed.problems.length > 0) process.exitCode = exitCodes.partial;
          return;
        }
        const listing = await core.models.list();
        const stored = core.embeddings.storedModels();
        const counts = new Map(stored.map((model) => [model.id, model.count]));
        const rows = listing.models.map((model) => ({
          id: model.manifest.id,
          displayName: model.manifest.displayName,
          source: model.source,
          default: model.manifest.id === listing.defaultModelId,
          dim: model.manifest.output.dim,
          input: model.manifest.input,
          onnxPath: model.onnxPath,
          // A bundled manifest can describe a model the user has not exported yet (Derm Foundation).
          fileExists: fs.existsSync(model.onnxPath),
          embeddedImages: counts.get(model.manifest.id) ?? 0,
        }));
        for (const row of rows) {
          process.stdout.write(
            `${row.default ? '*' : ' '} ${row.id.padEnd(28)} ${String(row.dim).padStart(5)}-d  ${row.input.width}x${row.input.height} ${row.input.layout}  ${row.source.padEnd(7)}  ${row.embeddedImages} embedded  ${row.displayName}${row.fileExists ? '' : `  (missing: ${row.onnxPath})`}\n`,
          );
        }
        const encoderIds = new Set(rows.map((row) => row.id));
        for (const model of stored.filter((entry) => !encoderIds.has(entry.id))) {
          process.stdout.write(
            `  ${model.id.padEnd(28)} ${String(model.dim).padStart(5)}-d  (${model.source} embeddings only)  ${model.count} embedded  ${model.displayName}\n`,
          );
        }
        for (const problem of listing.problems) process.stdout.write(`! ${problem.message}\n`);
        if (listing.problems.length > 0) process.exitCode = exitCodes.partial;
      });
    });

  models
    .command('add')
    .description('check an ONNX encoder against its manifest and copy both into the library models folder')
    .argument('<file.onnx>', 'the ONNX model file')
    .requiredOption('--manifest <file>', 'its manifest (JSON, see native-models/README.md)')
    .action(async (file: string, options: { manifest: string }, command: Command) => {
      await withCore(command, async (core, { json }) => {
        if (json) return printJson(await callContract(core, 'modelsAdd', { onnxPath: file, manifestPath: options.manifest }));
        const result = await core.models.add(file, options.manifest);
        process.stdout.write(`Added ${result.id} to ${result.manifestPath}\n`);
        printCheck(result);
      });
    });

  models
    .command('check')
    .description('load a model, compare its graph with the manifest and run it on generated images')
    .argument('[id]', 'model id (default: the default model)')
    .action(async (id: string | undefined, _options: unknown, command: Command) => {
      await withCore(command, async (core, { json }) => {
        const model = await core.models.get(id);
        // The call names its model; the command's default (no id) is the default model, resolved here.
        if (json) return printJson(await callContract(core, 'modelsCheck', { modelId: model.manifest.id }));
        printCheck(await core.models.check(model));
      });
    });

  models
    .command('remove')
    .description('remove a model that holds no embeddings (e.g. an import that matched no image), freeing its id; needs --yes')
    .argument('<id>', 'model id')
    .option('--yes', 'confirm the removal')
    .action(async (id: string, options: { yes?: boolean }, command: Command) => {
      if (!options.yes) {
        throw new DermError(
          'invalid-input',
          `Removing model "${id}" needs confirmation: run \`dermws models remove ${id} --yes\`. Only a model that holds no embeddings can be removed.`,
          {
            field: 'yes',
          },
        );
      }
      await withCore(command, async (core, { json }) => {
        const removed = core.embeddings.removeModel(id);
        if (json) await printCliOutput('modelsRemove', { removed: removed.id, source: removed.source });
        else process.stdout.write(`Removed model ${removed.id} (${removed.source}, no embeddings).\n`);
      });
    });

  program
    .command('embed')
    .description('embed every image that has no embedding for the model yet (resumable; Ctrl-C stops after the current batch)')
    .option('--model <id>', 'model id (default: the default model)')
    .option('--batch-size <n>', 'images per inference batch (default: chosen for the execution provider)')
    .action(async (options: { model?: string; batchSize?: string }, command: Command) => {
      await withCore(command, async (core, { json }) => {
        const batchSize = options.batchSize === undefined ? undefined : parsePositiveInteger('--batch-size', options.batchSize, 1024);
        await withInterrupt(async (signal) => {
          const onProgress = progressPrinter();
          const result = await core.embeddings.embedLibrary({
            ...(options.model === undefined ? {} : { modelId: options.model }),
            ...(batchSize === undefined ? {} : { batchSize }),
            ...(onProgress ? { onProgress } : {}),
            signal,
          });
          if (json) await printJobResult('embedReportSchema', result);
          else {
            process.stdout.write(
              `${result.modelId}: embedded ${result.embedded} of ${result.total} (already done: ${result.skipped}, failed: ${result.failed.length}) on ${result.provider}, batch ${result.batchSize}${result.status === 'cancelled' ? ' — cancelled; run again to resume' : ''}\n`,
            );
            if (result.fallbackReason) process.stdout.write(`Not using a faster provider: ${result.fallbackReason}\n`);
            for (const failure of result.failed) process.stdout.write(`  failed: image ${failure.imageId} ${failure.path}: ${failure.reason}\n`);
          }
          process.exitCode = result.status === 'cancelled' ? exitCodes.cancelled : result.status === 'partial' ? exitCodes.partial : exitCodes.ok;
        });
      });
    });

  const embeddings = program.commands.find((existing) => existing.name() === 'embeddings') ?? program.command('embeddings').description('stored embeddings');
  embeddings
    .command('import')
    .description(
      'import precomputed embeddings (.npz keyed by image path, or .npy matrix with --paths), or merge a cluster output folder (shards of `dermws embed shard`)',
    )
    .argument('<file>', '.npz or .npy file, or a cluster output folder')
    .option('--paths <file.csv>', 'for .npy: CSV of image paths, one per matrix row')
    .option('--model <id>', 'model id to store the embeddings under (required for a file; a cluster folder names its own)')
    .option('--display-name <name>', 'name shown for the model')
    .action(async (file: string, options: { paths?: string; model?: string; displayName?: string }, command: Command) => {
      if (fs.existsSync(file) && fs.statSync(file).isDirectory()) {
        await importClusterResults(command, file);
        return;
      }
      if (options.model === undefined)
        throw new DermError('invalid-input', `Importing the file ${file} needs --model <id>: the id to store its embeddings under.`, { field: '--model' });
      const modelId = options.model;
      await withCore(command, async (core, { json }) => {
        const result = await core.embeddings.importEmbeddings({
          file,
          modelId,
          ...(options.paths === undefined ? {} : { pathsCsv: options.paths }),
          ...(options.displayName === undefined ? {} : { displayName: options.displayName }),
        });
        if (json) await printCliOutput('embeddingsImport', result);
        else {
          process.stdout.write(
            `${result.modelId}: stored ${result.stored} of ${result.entries} ${result.dim}-d embeddings from ${result.file} (by relative path ${result.matchedByRelativePath}, by file name ${result.matchedByFileName})\n`,
          );
          if (result.unmatched.length > 0)
            process.stdout.write(`  ${result.unmatched.length} keys match no image, e.g. ${result.unmatched.slice(0, 3).join(', ')}\n`);
          for (const entry of result.ambiguous.slice(0, 10)) process.stdout.write(`  ambiguous: ${entry.key} matches images ${entry.imageIds.join(', ')}\n`);
          for (const entry of result.duplicates.slice(0, 10))
            process.stdout.write(`  duplicate: ${entry.key} is image ${entry.imageId}, already given by ${entry.keptKey}\n`);
        }
        const notStored = result.unmatched.length + result.ambiguous.length + result.duplicates.length;
        process.exitCode = notStored > 0 ? exitCodes.partial : exitCodes.ok;
      });
    });
}

function printCheck(result: ModelCheckResult): void {
  const lines = [
    `${result.id} (${result.displayName}): OK`,
    `  file      ${result.onnxPath}`,
    `  sha256    ${result.sha256}`,
    `  input     ${result.inputs.map((value) => `${value.name} [${value.shape.join(', ')}]`).join(', ')}`,
    `  output    ${result.outputs.map((value) => `${value.name} [${value.shape.join(', ')}]`).join(', ')} → ${result.dim}-d`,
    `  provider  ${result.provider}, batch ${result.batchSize}${result.fallbackReason ? ` (fallback: ${result.fallbackReason})` : ''}`,
    `  sample    L2 norms ${result.sampleNorms.map((norm) => norm.toFixed(3)).join(', ')}`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}
