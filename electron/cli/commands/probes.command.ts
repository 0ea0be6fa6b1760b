import path from 'node:path';
import type { Command } from 'commander';
import { DermError } from '../../common/errors.js';
import type { AucResult, GroupMetrics, ProbeMetrics } from '../../core/probes/probe-metrics.types.js';
import type { ProbeReport, TrainProbeOptions } from '../../core/probes/probes.service.js';
import { callContract, parsePositiveInteger, printCallOutput, printCliOutput, printJson, progressPrinter, withCore, withInterrupt } from '../cli-context.js';

/**
 * `dermws probe train|report|predict|list`. With --json, train and report print the probeReport
 * call's output and list the probeList call's; predict and report --predictions, which the app has no
 * call for, print their schemas in cli-outputs.ts (docs/cli.md, "`--json` prints contract outputs").
 */
export function registerProbesCommands(program: Command): void {
  const probe = program.command('probe').description('linear probes on embeddings: case-grouped cross-validation, subgroups, predictions as suggestions');

  probe
    .command('train')
    .description(
      'train and evaluate a linear probe (case-grouped k-fold CV, bootstrap CIs, skin-tone subgroups, data-efficiency curve), then fit on everything and store predictions',
    )
    .option('--labels <a,b,…>', 'labels to learn (comma-separated)')
    .option('--top <n>', 'learn the N most common labels with enough positive cases (default 10)')
    .option('--kind <kind>', 'condition (default) or quality ("is this image gradable?" and manual quality flags)')
    .option('--model <id>', 'embedding model (default: the only model with embeddings)')
    .option('--folds <k>', 'cross-validation folds (default 5)')
    .option('--seed <s>', 'seed for folds, subsamples and bootstrap (default 0)')
    .option('--l2 <lambda>', 'L2 penalty on standardised weights (default 0.01)')
    .option('--class-weights', 'weigh positives and negatives equally per label')
    .option('--min-confidence <1-5>', 'condition labels below this confidence count as unknown')
    .option('--bootstrap <n>', 'bootstrap replicates for AUC intervals (default 1000)')
    .option('--curve <fractions|none>', 'case fractions of the data-efficiency curve (default 0.1,0.25,0.5; 1 is always included)')
    .option('--curve-seeds <n>', 'subsampling seeds per curve fraction (default 2)')
    .option('--max-iterations <n>', 'L-BFGS iterations per label at most (default 500)')
    .option('--tolerance <x>', 'stop a fit when its largest gradient component is at most x times the one at the start (default 1e-5)')
    .option('--repeats <r>', 'repeat the grouped k-fold with r fold seeds and report each AUC as mean ± sd across them (default 1)')
    .option('--min-class-cases <n>', "report a label's AUC (overall and per subgroup) only with at least n positive and n negative cases (default 5)")
    .action(async (options: TrainCliOptions, command: Command) => {
      await withCore(command, async (core, { json }) => {
        await withInterrupt(async (signal) => {
          const onProgress = progressPrinter();
          const run = await core.probes.train({ ...trainOptions(options), signal, ...(onProgress ? { onProgress } : {}) });
          // The app trains through a job whose result names the run, then shows it with probeReport: --json prints that report.
          if (json) printJson(await callContract(core, 'probeReport', { runId: run.id }));
          else printReport(run);
        });
      });
    });

  probe
    .command('report')
    .description('show a stored probe run: manifest, metrics per label, subgroups, data-efficiency curve; --predictions exports its out-of-fold predictions')
    .argument('<run>', 'probe run id')
    .option('--predictions <file>', 'write the out-of-fold predictions (.csv or .npz) and <file>.manifest.json; the file must not exist')
    .action(async (run: string, options: { predictions?: string }, command: Command) => {
      await withCore(command, async (core, { json }) => {
        const runId = parsePositiveInteger('run', run);
        if (options.predictions !== undefined) {
          // An absolute path names its own folder; a relative one must stay inside the current folder.
          const target = path.isAbsolute(options.predictions)
            ? { folder: path.dirname(options.predictions), fileName: path.basename(options.predictions) }
            : { folder: process.cwd(), fileName: options.predictions };
          const written = core.probes.exportPredictions(runId, target);
          if (json) await printCliOutput('probePredictionsExport', written);
          else
            process.stdout.write(
              `wrote ${written.images} images × ${written.labels.length} labels of run ${runId} to ${written.file} (manifest ${written.manifestFile})\n`,
            );
          return;
        }
        if (json) return printJson(await callContract(core, 'probeReport', { runId }));
        printReport(core.probes.report(runId));
      });
    });

  probe
    .command('predict')
    .description("apply a run's final model to images (default: every embedded image) and store the probabilities as suggestions")
    .argument('<run>', 'probe run id')
    .option('--images <ids>', 'comma-separated image ids')
    .action(async (run: string, options: { images?: string }, command: Command) => {
      await withCore(command, async (core, { json }) => {
        const imageIds = options.images === undefined ? undefined : options.images.split(',').map((id) => parsePositiveInteger('--images', id.trim()));
        const result = core.probes.predict(parsePositiveInteger('run', run), imageIds);
        if (json) {
          await printCliOutput('probePredict', result);
          return;
        }
        process.stdout.write(`run ${result.runId} (${result.modelId}): ${result.images.length} images\n`);
        process.stdout.write(`${'image'.padStart(8)}  ${result.labels.map((label) => label.slice(0, 14).padStart(14)).join(' ')}\n`);
        for (const image of result.images) {
          process.stdout.write(
            `${String(image.imageId).padStart(8)}  ${result.labels.map((label) => image.probabilities[label]!.toFixed(3).padStart(14)).join(' ')}\n`,
          );
        }
        if (result.withoutEmbedding.length > 0) process.stdout.write(`no embedding for images ${result.withoutEmbedding.join(', ')}\n`);
      });
    });

  probe
    .command('list')
    .description('list stored probe runs')
    .action(async (_options: unknown, command: Command) => {
      await withCore(command, async (core, { json }) => {
        const runs = core.probes.list();
        if (json) return await printCallOutput('probeList', { runs });
        for (const run of runs) {
          const auc = run.macroAuc === null ? '   —  ' : run.macroAuc.toFixed(3);
          process.stdout.write(
            `${String(run.id).padStart(4)}  ${run.createdAt}  ${run.status.padEnd(9)}  ${run.labelKind.padEnd(9)}  ${run.modelId}  macro AUC ${auc}  ${run.images} images / ${run.cases} cases  ${run.labels.join(', ')}\n`,
          );
        }
      });
    });
}

interface TrainCliOptions {
  labels?: string;
  top?: string;
  kind?: string;
  model?: string;
  folds?: string;
  seed?: string;
  l2?: string;
  classWeights?: boolean;
  minConfidence?: string;
  bootstrap?: string;
  curve?: string;
  curveSeeds?: string;
  maxIterations?: string;
  tolerance?: string;
  repeats?: string;
  minClassCases?: string;
}

function trainOptions(options: TrainCliOptions): TrainProbeOptions {
  const result: TrainProbeOptions = {};
  if (options.labels !== undefined && options.top !== undefined)
    throw new DermError('invalid-input', 'Give either --labels or --top, not both.', { field: '--labels' });
  if (options.labels !== undefined)
    result.labels = options.labels
      .split(',')
      .map((label) => label.trim())
      .filter(Boolean);
  if (options.top !== undefined) result.top = parsePositiveInteger('--top', options.top, 1000);
  if (options.kind !== undefined) {
    if (options.kind !== 'condition' && options.kind !== 'quality')
      throw new DermError('invalid-input', `--kind must be "condition" or "quality"; got "${options.kind}".`, { field: '--kind' });
    result.labelKind = options.kind;
  }
  if (options.model !== undefined) result.modelId = options.model;
  if (options.folds !== undefined) result.folds = parsePositiveInteger('--folds', options.folds, 50);
  if (options.seed !== undefined) {
    const seed = Number(options.seed);
    if (!Number.isInteger(seed) || seed < 0)
      throw new DermError('invalid-input', `--seed must be a whole number of at least 0; got "${options.seed}".`, { field: '--seed' });
    result.seed = seed;
  }
  if (options.l2 !== undefined) {
    const l2 = Number(options.l2);
    if (!(Number.isFinite(l2) && l2 > 0)) throw new DermError('invalid-input', `--l2 must be a positive number; got "${options.l2}".`, { field: '--l2' });
    result.l2 = l2;
  }
  if (options.classWeights) result.classWeights = true;
  if (options.minConfidence !== undefined) result.minConfidence = parsePositiveInteger('--min-confidence', options.minConfidence, 5);
  if (options.bootstrap !== undefined) result.bootstrapReplicates = parsePositiveInteger('--bootstrap', options.bootstrap, 100_000);
  if (options.curve !== undefined) {
    result.curveFractions =
      options.curve === 'none'
        ? []
        : options.curve.split(',').map((text) => {
            const fraction = Number(text.trim());
            if (!(fraction > 0 && fraction <= 1))
              throw new DermError('invalid-input', `--curve fractions must be numbers in (0, 1]; got "${text}".`, { field: '--curve' });
            return fraction;
          });
  }
  if (options.curveSeeds !== undefined) result.curveSeeds = parsePositiveInteger('--curve-seeds', options.curveSeeds, 100);
  if (options.maxIterations !== undefined) result.maxIterations = parsePositiveInteger('--max-iterations', options.maxIterations, 100_000);
  if (options.tolerance !== undefined) {
    const tolerance = Number(options.tolerance);
    if (options.tolerance.trim() === '' || !(Number.isFinite(tolerance) && tolerance > 0 && tolerance < 1)) {
      throw new DermError('invalid-input', `--tolerance must be a number between 0 and 1 (exclusive), e.g. 1e-5; got "${options.tolerance}".`, {
        field: '--tolerance',
      });
    }
    result.tolerance = tolerance;
  }
  if (options.repeats !== undefined) result.repeats = parsePositiveInteger('--repeats', options.repeats, 50);
  if (options.minClassCases !== undefined) result.minClassCases = parsePositiveInteger('--min-class-cases', options.minClassCases, 1_000_000);
  return result;
}

function formatAuc(auc: AucResult): string {
  return auc.status === 'measured' ? `${auc.value.toFixed(3)} [${auc.ci95[0].toFixed(3)}, ${auc.ci95[1].toFixed(3)}]` : `too small: ${auc.reason}`;
}

function printGroup(metrics: GroupMetrics, indent: string): void {
  const write = (line: string) => process.stdout.write(`${indent}${line}\n`);
  write(
    `${metrics.images} images, ${metrics.cases} cases; macro AUC ${metrics.macroAuc === null ? '—' : metrics.macroAuc.toFixed(3)}; Hamming loss ${metrics.hammingLoss.toFixed(3)}; exact-match accuracy ${metrics.subsetAccuracy.toFixed(3)}`,
  );
  write(
    `${'label'.padEnd(24)} ${'pos/neg images'.padStart(15)} ${'pos/neg cases'.padStart(13)}  ${'AUC [95% CI by case]'.padEnd(26)} ${'acc'.padStart(6)} ${'Brier'.padStart(6)} ${'ECE'.padStart(6)}`,
  );
  for (const label of metrics.perLabel) {
    write(
      `${label.label.slice(0, 24).padEnd(24)} ${`${label.positives}/${label.negatives}`.padStart(15)} ${`${label.positiveCases}/${label.negativeCases ?? '?'}`.padStart(13)}  ${formatAuc(label.auc).padEnd(26)} ${label.accuracy.toFixed(3).padStart(6)} ${label.brier.toFixed(3).padStart(6)} ${label.ece.toFixed(3).padStart(6)}`,
    );
  }
}

function printReport(run: ProbeReport): void {
  const out = (line = '') => process.stdout.write(`${line}\n`);
  const { manifest } = run;
  out(
    `probe run ${run.id}: ${run.status}  ${run.labelKind} on ${run.modelId} (sha256 ${run.modelSha256.slice(0, 12)}…), seed ${run.seed}, ${run.folds} folds grouped by case, app ${run.appVersion}`,
  );
  out(
    `population: ${manifest.population.images} images in ${manifest.population.cases} cases (${manifest.population.labelledWithoutEmbedding} labelled images without an embedding left out); predictions stored for ${run.predictionCount / Math.max(1, run.labels.length)} images`,
  );
  const hyper = manifest.hyperparameters as typeof manifest.hyperparameters & { gradientTolerance?: number };
  out(
    `l2 ${hyper.l2}, class weights ${hyper.classWeights ? 'balanced' : 'off'}, min confidence ${manifest.filters.minConfidence ?? 'none'}, ${
      hyper.tolerance !== undefined
        ? `tolerance ${hyper.tolerance} (relative)`
        : `gradient tolerance ${hyper.gradientTolerance} (absolute, before the relative rule)`
    }, ${hyper.repeats ?? 1} fold seed${(hyper.repeats ?? 1) === 1 ? '' : 's'}, AUC needs ${hyper.minClassCases ?? 1}+ positive and negative cases`,
  );
  if (run.error) out(`error: ${run.error}`);
  const metrics: ProbeMetrics | null = run.metrics;
  if (!metrics) return;
  const unconverged = (metrics.solver.perLabel ?? []).filter((label) => !label.converged);
  if (unconverged.length > 0) {
    out();
    out(
      `WARNING: the fits of ${unconverged.length} label${unconverged.length === 1 ? '' : 's'} stopped before meeting the tolerance (iteration limit); their numbers may move with a longer fit (--max-iterations):`,
    );
    for (const label of unconverged) {
      const counts = Object.entries(label.outcomes.reduce<Record<string, number>>((all, outcome) => ({ ...all, [outcome]: (all[outcome] ?? 0) + 1 }), {}))
        .map(([outcome, count]) => `${count} ${outcome}`)
        .join(', ');
      out(
        `  ${label.label}: ${counts}; worst gradient ${label.worstRelativeGradient.toExponential(1)} of its start; iterations up to ${Math.max(...label.iterations)}`,
      );
    }
  }
  out();
  out('overall (out-of-fold predictions):');
  printGroup(metrics.overall, '  ');
  if (metrics.repeats && metrics.repeats.count > 1) {
    out();
    out(`AUC across ${metrics.repeats.count} fold seeds (${metrics.repeats.seeds.join(', ')}), mean ± sd, next to the first seed's AUC and bootstrap CI:`);
    metrics.repeats.perLabel.forEach((label, index) => {
      const first = metrics.overall.perLabel[index]!;
      const spread = label.mean === null ? '—' : `${label.mean.toFixed(3)} ± ${(label.sd ?? 0).toFixed(3)}`;
      out(`  ${label.label.slice(0, 24).padEnd(24)} ${spread.padEnd(15)} ${formatAuc(first.auc)}`);
    });
    const macro = metrics.repeats.macroAuc;
    if (macro.mean !== null) out(`  ${'macro AUC'.padEnd(24)} ${macro.mean.toFixed(3)} ± ${(macro.sd ?? 0).toFixed(3)}`);
  }
  for (const table of metrics.subgroups) {
    out();
    out(`${table.attribute} (${table.source}); not recorded: ${table.notRecorded.images} images, ${table.notRecorded.cases} cases`);
    for (const group of table.groups) {
      if (group.status === 'too-small') out(`  ${group.value}: ${group.images} images, ${group.cases} cases — too small to measure: ${group.reason}`);
      else {
        out(`  ${group.value}:`);
        printGroup(group.metrics, '    ');
      }
    }
  }
  out();
  out('data-efficiency curve (macro AUC, mean ± sd over seeds):');
  for (const point of metrics.curve) {
    const macro = point.macroAuc.mean === null ? '—' : `${point.macroAuc.mean.toFixed(3)} ± ${(point.macroAuc.sd ?? 0).toFixed(3)}`;
    out(
      `  ${`${Math.round(point.fraction * 100)}%`.padStart(4)} of training cases (≈${Math.round(point.trainingCases)} cases, ${point.seeds} seed${point.seeds === 1 ? '' : 's'}): ${macro}`,
    );
  }
  const outcomes = Object.entries(metrics.solver.outcomes)
    .map(([outcome, count]) => `${count} ${outcome}`)
    .join(', ');
  out();
  out(
    `solver: ${metrics.solver.passes} passes over the matrix; iterations mean ${metrics.solver.meanIterations.toFixed(1)}, max ${metrics.solver.maxIterations}; fits: ${outcomes}`,
  );
  const floor = (metrics.solver.perLabel ?? []).reduce((sum, label) => sum + label.atPrecisionFloor, 0);
  if (floor > 0)
    out(
      `  ${floor} fit${floor === 1 ? '' : 's'} stopped at the float32 precision floor (no lower loss found) before the tolerance: as close as the solver gets`,
    );
  if (metrics.solver.curveNotConverged)
    out(`  ${metrics.solver.curveNotConverged} data-efficiency fits stopped at the iteration limit before meeting the tolerance`);
}
