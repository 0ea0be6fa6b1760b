import type { Command } from 'commander';
import { DermError } from '../../common/errors.js';
import type { ClusterImportResult } from '../../core/cluster/cluster.service.js';
import type { Core } from '../../core/core.js';
import { exitCodes, globalOptions, parsePositiveInteger, printCliOutput, printJobResult, progressPrinter, withCore, withInterrupt } from '../cli-context.js';

/**
 * `dermws embed plan` and `dermws embed shard`: the two halves of embedding on a cluster (docs/models.md,
 * "Embedding on a cluster"). The merge is `dermws embeddings import OUT_DIR` (importClusterResults).
 * `embed shard` runs on a cluster node and never opens a library: everything it needs is in the plan.
 */
export function registerClusterCommands(program: Command): void {
  const embed = program.commands.find((existing) => existing.name() === 'embed') ?? program.command('embed').description('embed images');

  embed
    .command('plan')
    .description('write a cluster embedding plan: the model (copied), and shards of the images still to embed with their paths relative to --root and sha256')
    .option('--model <id>', 'model id (default: the default model)')
    .requiredOption('--shard-size <n>', 'images per shard (one shard = one cluster task)')
    .requiredOption('--out <dir>', 'plan folder to create (new or empty)')
    .option(
      '--root <dir>',
      'folder the image paths are written relative to, as the cluster will see it mounted (default: the deepest folder holding every image)',
    )
    .action(async (own: { model?: string; shardSize: string; out: string; root?: string }, command: Command) => {
      // Commander hands --model to the parent `embed` (which has the same option) wherever it is written; read both.
      const options = { ...own, model: own.model ?? (command.optsWithGlobals() as { model?: string }).model };
      const shardSize = parsePositiveInteger('--shard-size', options.shardSize, 1_000_000);
      await withCore(command, async (core, { json }) => {
        const result = await core.cluster.writePlan({
          shardSize,
          out: options.out,
          ...(options.model === undefined ? {} : { modelId: options.model }),
          ...(options.root === undefined ? {} : { root: options.root }),
        });
        if (json) await printCliOutput('embedPlan', result);
        else {
          process.stdout.write(
            `Plan ${result.planId}: ${result.images} images of ${result.modelId} in ${result.shards} shard(s) of up to ${result.shardSize}, written to ${result.planFolder}\n` +
              `Image paths are relative to ${result.root}; give the cluster's mount of it to each shard with --root.\n` +
              `Run shards 0 to ${result.shards - 1}: dermws embed shard ${result.planFolder} --shard K --out OUT_DIR\n` +
              `Then merge: dermws embeddings import OUT_DIR\n`,
          );
        }
        process.exitCode = exitCodes.ok;
      });
    });

  embed
    .command('shard')
    .description('embed one shard of a plan on this machine (a cluster task); writes shard-K.npz and shard-K.json to --out; a finished shard is skipped')
    .argument('<plan-dir>', 'the plan folder (plan.json and model/)')
    .requiredOption('--shard <k>', 'shard number, from 0')
    .requiredOption('--out <dir>', 'folder for the shard files (shared by every shard of the plan)')
    .option('--root <dir>', "where the plan's image root is mounted on this machine (default: the plan's root)")
    .option('--model-file <file.onnx>', "the ONNX file to use instead of the plan's model/ copy (same sha256)")
    .option('--batch-size <n>', 'images per inference batch (default: chosen for the execution provider)')
    .action(async (planFolder: string, own: { shard: string; out: string; root?: string; modelFile?: string; batchSize?: string }, command: Command) => {
      const { json } = globalOptions(command);
      // Commander hands --batch-size to the parent `embed` (which has the same option) wherever it is written; read both.
      const options = { ...own, batchSize: own.batchSize ?? (command.optsWithGlobals() as { batchSize?: string }).batchSize };
      const shard = parseShardNumber(options.shard);
      const batchSize = options.batchSize === undefined ? undefined : parsePositiveInteger('--batch-size', options.batchSize, 1024);
      // SLURM and Dask stop a task with SIGTERM; Ctrl-C sends SIGINT. Either stops after the current batch, writing nothing.
      await withInterrupt(
        async (signal) => {
          const onProgress = json ? undefined : progressPrinter();
          const { runShard } = await import('../../core/cluster/cluster-shard.js');
          const result = await runShard({
            planFolder,
            shard,
            outFolder: options.out,
            signal,
            ...(options.root === undefined ? {} : { root: options.root }),
            ...(options.modelFile === undefined ? {} : { modelFile: options.modelFile }),
            ...(batchSize === undefined ? {} : { batchSize }),
            ...(onProgress ? { onProgress } : {}),
          });
          if (json) await printCliOutput('embedShard', result);
          else {
            const how = result.provider ? ` on ${result.provider}, batch ${result.batchSize}` : '';
            const state =
              result.status === 'skipped' ? ' (already finished; skipped)' : result.status === 'cancelled' ? ' — cancelled; nothing written, run again' : '';
            process.stdout.write(`Shard ${result.shard}: embedded ${result.embedded} of ${result.images}, ${result.failed.length} failed${how}${state}\n`);
            if (result.fallbackReason) process.stdout.write(`Not using a faster provider: ${result.fallbackReason}\n`);
            for (const failure of result.failed) process.stdout.write(`  failed: ${failure.key}: ${failure.reason}\n`);
            if (result.status !== 'cancelled') process.stdout.write(`Wrote ${result.npz} and ${result.manifest}\n`);
          }
          // Per-image failures are recorded in the shard and reported by the merge; the task itself ran.
          process.exitCode = result.status === 'cancelled' ? exitCodes.cancelled : exitCodes.ok;
        },
        ['SIGINT', 'SIGTERM'],
      );
    });
}

function parseShardNumber(value: string): number {
  const parsed = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(parsed)) {
    throw new DermError('invalid-input', `--shard must be a whole number from 0; got "${value}".`, { field: '--shard' });
  }
  return parsed;
}

/** `dermws embeddings import OUT_DIR`: merges a cluster's shards (see ClusterService.importResults). */
export async function importClusterResults(command: Command, folder: string): Promise<void> {
  await withCore(command, async (core: Core, { json }) => {
    await withInterrupt(async (signal) => {
      const onProgress = json ? undefined : progressPrinter();
      const result = await core.cluster.importResults(folder, { signal, ...(onProgress ? { onProgress } : {}) });
      if (json) await printJobResult('clusterImportReportSchema', result);
      else printClusterImport(result);
      process.exitCode = result.status === 'cancelled' ? exitCodes.cancelled : result.status === 'success' ? exitCodes.ok : exitCodes.partial;
    });
  });
}

function printClusterImport(result: ClusterImportResult): void {
  const out = process.stdout;
  for (const shard of result.merged)
    out.write(`shard ${shard.shard}: ${shard.stored} stored, ${shard.alreadyStored} already in the library, ${shard.failed} failed on the worker\n`);
  for (const entry of result.missing) out.write(`missing  shard ${entry.shard}: ${entry.reason}\n`);
  for (const entry of result.refused) out.write(`refused  shard ${entry.shard}: ${entry.reason}\n`);
  for (const failure of result.failures) out.write(`failed   shard ${failure.shard} ${failure.key}: ${failure.reason}\n`);
  out.write(
    `${result.modelId}: stored ${result.stored} new embeddings from ${result.merged.length} of ${result.shards} shard(s) (${result.alreadyStored} already stored, ${result.missing.length} missing, ${result.refused.length} refused, ${result.failures.length} images failed)${result.deletedSincePlan > 0 ? `; ${result.deletedSincePlan} images deleted since the plan were skipped` : ''}\n`,
  );
  if (result.index)
    out.write(`Index ${result.index.rebuilt ? 'rebuilt' : 'updated'}: ${result.index.folded} changes folded in, ${result.index.indexed} images indexed.\n`);
  if (result.status === 'cancelled') out.write('Cancelled between shards. Run the same command again to continue.\n');
}
