import type { Command } from 'commander';
import { DermError } from '../../common/errors.js';
import type { KindAgreement } from '../../core/labels/agreement.service.js';
import { parseLabelKind, type LabelKind } from '../../core/labels/label-kinds.js';
import type { Label } from '../../core/labels/labels.repository.js';
import type { KindLabelsInput, SlotChange, UndoRedoResult } from '../../core/labels/labels.service.js';
import type { TaxonomyKind } from '../../core/labels/taxonomy.service.js';
import type { SessionNext, SessionSummary } from '../../core/sessions/sessions.service.js';
import { callContract, parsePositiveInteger, printCallOutput, printCliOutput, printJson, withCore } from '../cli-context.js';

/**
 * `dermws taxonomy`, `label`, `session`, `agreement` and `adjudicate`. The --json shapes are
 * documented in docs/labelling.md ("Commands").
 */
export function registerLabelsCommands(program: Command): void {
  registerTaxonomy(program);
  registerLabel(program);
  registerSession(program);
  registerAgreement(program);
}

const collect = (value: string, previous: string[] = []) => [...previous, value];
const write = (line: string): void => {
  process.stdout.write(`${line}\n`);
};

function describeValues(values: Array<{ value: string; confidence: number | null }>): string {
  return values.length === 0 ? '—' : values.map((value) => (value.confidence === null ? value.value : `${value.value} (${value.confidence})`)).join(', ');
}

function printChanges(changes: SlotChange[]): void {
  if (changes.length === 0) write('No change.');
  for (const change of changes)
    write(
      `image ${change.imageId} ${change.kind}${change.origin === 'consensus' ? ' (consensus)' : ''}: ${describeValues(change.before)} → ${describeValues(change.after)}`,
    );
}

function printLabels(labels: Label[]): void {
  if (labels.length === 0) write('No labels.');
  for (const label of labels) {
    write(
      `${label.kind.padEnd(13)} ${label.value}${label.confidence === null ? '' : ` (${label.confidence})`}  ${label.origin}  ${label.annotator ?? ''}${label.sessionId === null ? '' : `  session ${label.sessionId}`}`,
    );
  }
}

function registerTaxonomy(program: Command): void {
  const taxonomy = program.command('taxonomy').description('label vocabularies: list, import (CSV or JSON), remove');

  taxonomy
    .command('list')
    .description('list taxonomy entries (the starter taxonomy is installed on first use)')
    .option('--kind <kind>', 'only this label kind')
    .action(async (options: { kind?: string }, command: Command) => {
      await withCore(command, async (core, { json }) => {
        const kind = options.kind === undefined ? undefined : (parseLabelKind(options.kind, '--kind') as TaxonomyKind);
        const entries = core.taxonomy.list(kind);
        if (json) return await printCallOutput('taxonomyList', { entries });
        for (const entry of entries) {
          write(
            `${entry.kind.padEnd(13)} ${'  '.repeat(entry.depth)}${entry.code.padEnd(34 - 2 * entry.depth)} ${entry.hotkey ? `[${entry.hotkey}]` : '   '} ${entry.displayName}${entry.labelCount ? `  (${entry.labelCount} labels)` : ''}`,
          );
        }
      });
    });

  taxonomy
    .command('import')
    .description('import entries from CSV (kind,code,display_name,parent,hotkey,sort_order) or JSON; any error refuses the whole file')
    .argument('<file>', 'a .csv or .json file')
    .option('--kind <kind>', 'kind of entries whose row gives none')
    .action(async (file: string, options: { kind?: string }, command: Command) => {
      await withCore(command, async (core, { json }) => {
        const importOptions = options.kind === undefined ? {} : { defaultKind: parseLabelKind(options.kind, '--kind') as TaxonomyKind };
        const report = core.taxonomy.importFile(file, importOptions);
        if (json) await printCliOutput('taxonomyImport', report);
        else write(`Imported ${report.entries} entries from ${report.file}: ${report.added} added, ${report.updated} updated.`);
      });
    });

  taxonomy
    .command('remove')
    .description('remove an entry (refused while labels use it)')
    .argument('<kind>', 'label kind')
    .argument('<code>', 'entry code')
    .action(async (kind: string, code: string, _options: unknown, command: Command) => {
      await withCore(command, async (core, { json }) => {
        const parsed = parseLabelKind(kind) as TaxonomyKind;
        core.taxonomy.remove(parsed, code);
        if (json) await printCliOutput('taxonomyRemove', { removed: { kind: parsed, code } });
        else write(`Removed ${parsed} ${code}.`);
      });
    });
}

function requireAnnotator(options: { annotator?: string }): string {
  if (!options.annotator) throw new DermError('invalid-input', '--annotator NAME is required.', { field: 'annotator' });
  return options.annotator;
}

interface LabelOptions {
  kind?: string;
  value?: string;
  confidence?: string;
  annotator?: string;
  session?: string;
  remove?: boolean;
}

function registerLabel(program: Command): void {
  // Options live on `label` itself, so `label undo --annotator X` and `label 12 --annotator X` read the same option.
  const label = program
    .command('label')
    .description("show or change the labels of an image; undo/redo an annotator's last change; history; suggestions")
    .argument('[image-id]', 'image id')
    .option('--kind <kind>', 'label kind: condition, body_site, fitzpatrick, monk_tone, severity, gradable, quality_flag, note')
    .option('--value <value>', 'taxonomy code (or display name), or the note text')
    .option('--confidence <n>', 'confidence 1–5 (condition only)')
    .option('--annotator <name>', 'who is labelling')
    .option('--session <id>', 'labelling session the change belongs to')
    .option('--remove', 'remove the value (or, without --value, all of the kind) instead of setting it')
    .action(async (imageIdText: string | undefined, options: LabelOptions, command: Command) => {
      if (imageIdText === undefined) throw new DermError('invalid-input', 'Give an image id, or one of: undo, redo, history, suggest.', { field: 'image-id' });
      const imageId = parsePositiveInteger('image-id', imageIdText);
      await withCore(command, async (core, { json }) => {
        if (options.kind === undefined) {
          // Showing labels is the labelsOfImage call (an unknown image is an error, not an empty list).
          if (json) return printJson(await callContract(core, 'labelsOfImage', { imageId, ...(options.annotator ? { annotator: options.annotator } : {}) }));
          printLabels(core.labels.currentLabels(imageId, options.annotator ? { annotator: options.annotator } : {}));
          return;
        }
        const annotator = requireAnnotator(options);
        const sessionId = options.session === undefined ? null : parsePositiveInteger('--session', options.session);
        // As in the labelSet call: the session named must exist (its id is stored with the change).
        if (sessionId !== null) core.sessions.get(sessionId);
        let changes: SlotChange[];
        if (options.remove) {
          changes = core.labels.removeLabel({
            imageId,
            kind: options.kind,
            annotator,
            sessionId,
            ...(options.value === undefined ? {} : { value: options.value }),
          });
        } else {
          if (options.value === undefined) throw new DermError('invalid-input', '--value is required to set a label (or give --remove).', { field: 'value' });
          const confidence = options.confidence === undefined ? null : parsePositiveInteger('--confidence', options.confidence, 5);
          changes = core.labels.setLabel({ imageId, kind: options.kind, value: options.value, confidence, annotator, sessionId });
        }
        if (json) {
          // The labelSet / labelRemove output, mapped by the calls' handlers' own function: the slot changes and the image's labels after them.
          const { labelChangeOutput } = await import('../../core/app-api/handlers/labelling.handlers.js');
          await printCallOutput(options.remove ? 'labelRemove' : 'labelSet', labelChangeOutput(core, imageId, changes));
        } else printChanges(changes);
      });
    });

  for (const direction of ['undo', 'redo'] as const) {
    label
      .command(direction)
      .description(`${direction} the annotator's last ${direction === 'undo' ? '' : 'undone '}change (works across restarts)`)
      .action(async (_options: unknown, command: Command) => {
        await withCore(command, async (core, { json }) => {
          const annotator = requireAnnotator(command.optsWithGlobals() as LabelOptions);
          const result: UndoRedoResult = direction === 'undo' ? core.labels.undo(annotator) : core.labels.redo(annotator);
          if (json) {
            const { undoOutput } = await import('../../core/app-api/handlers/labelling.handlers.js');
            return await printCallOutput(direction === 'undo' ? 'labelUndo' : 'labelRedo', undoOutput(result));
          }
          if (!result.edit) return write(`Nothing to ${direction} for ${annotator}.`);
          write(`${direction === 'undo' ? 'Undid' : 'Redid'}: ${result.edit.description}`);
          printChanges(result.changes);
        });
      });
  }

  label
    .command('history')
    .description('the audit log of label changes, oldest first')
    .option('--image <id>', 'only this image')
    .option('--limit <n>', 'at most this many entries')
    .action(async (options: { image?: string; limit?: string }, command: Command) => {
      await withCore(command, async (core, { json }) => {
        const global = command.optsWithGlobals() as LabelOptions;
        const filter: { imageId?: number; annotator?: string; limit?: number } = {};
        if (options.image !== undefined) filter.imageId = parsePositiveInteger('--image', options.image);
        if (options.limit !== undefined) filter.limit = parsePositiveInteger('--limit', options.limit);
        if (global.annotator) filter.annotator = global.annotator;
        // The labelHistory call: an image that does not exist is an error, not an empty log.
        if (json) return printJson(await callContract(core, 'labelHistory', filter));
        if (filter.imageId !== undefined) core.images.require(filter.imageId);
        const entries = core.labels.history(filter);
        for (const entry of entries) {
          write(
            `${entry.at}  ${entry.action.padEnd(10)} ${entry.annotator ?? ''}  image ${entry.imageId} ${entry.kind}: ${describeValues(entry.before)} → ${describeValues(entry.after)}`,
          );
        }
      });
    });

  label
    .command('suggest')
    .description('labels of the k most similar labelled images, weighted by cosine similarity')
    .argument('<image-id>', 'image id')
    .option('--model <id>', 'embedding model (default: the only model with embeddings)')
    .option('-k, --neighbours <n>', 'neighbours to use (default 10)')
    .action(async (imageIdText: string, options: { model?: string; neighbours?: string }, command: Command) => {
      const imageId = parsePositiveInteger('image-id', imageIdText);
      await withCore(command, async (core, { json }) => {
        const global = command.optsWithGlobals() as LabelOptions;
        const suggestOptions: { kind?: string; modelId?: string; k?: number } = {};
        if (global.kind) suggestOptions.kind = global.kind;
        if (options.model) suggestOptions.modelId = options.model;
        if (options.neighbours !== undefined) suggestOptions.k = parsePositiveInteger('--neighbours', options.neighbours, 1000);
        const result = core.suggestions.suggest(imageId, suggestOptions);
        if (json) return await printCallOutput('labelSuggestions', result);
        if (result.suggestions.length === 0) return write(`No labelled neighbours with ${result.kind} labels.`);
        for (const suggestion of result.suggestions)
          write(`${suggestion.score.toFixed(3)}  ${suggestion.value}  (${suggestion.neighbours} of ${result.neighbours.length} neighbours)`);
      });
    });
}

/** `kind=value` or `condition=value:confidence`; values of one kind are grouped. */
export function parseLabelArguments(labels: string[], clear: string[]): KindLabelsInput[] {
  const byKind = new Map<LabelKind, KindLabelsInput>();
  for (const kindText of clear) byKind.set(parseLabelKind(kindText, '--clear'), { kind: parseLabelKind(kindText, '--clear'), values: [] });
  labels.forEach((text, index) => {
    const equals = text.indexOf('=');
    if (equals <= 0)
      throw new DermError('invalid-input', `--label ${index + 1} "${text}": expected KIND=VALUE (e.g. condition=eczema:4, fitzpatrick=III).`, {
        field: 'label',
        value: text,
      });
    const kind = parseLabelKind(text.slice(0, equals).trim(), `--label ${index + 1} kind`);
    let value = text.slice(equals + 1).trim();
    let confidence: number | null = null;
    const withConfidence = /^(.*):([1-5])$/.exec(value);
    if (kind === 'condition' && withConfidence) {
      value = withConfidence[1]!.trim();
      confidence = Number(withConfidence[2]);
    }
    const entry = byKind.get(kind) ?? { kind, values: [] };
    entry.values.push({ value, confidence });
    byKind.set(kind, entry);
  });
  return [...byKind.values()];
}

function printSessionLine(session: SessionSummary): void {
  write(
    `#${session.id} ${session.name}  ${session.annotator}  ${session.order}${session.order === 'random' || session.order === 'cluster' ? ` (seed ${session.seed})` : ''}  ${session.status}${session.agreement ? '  agreement' : ''}${session.suggestions === 'blind' ? '  blind' : ''}  ${session.labelled + session.skipped}/${session.total} done (${session.skipped} skipped)  ${Math.round(session.secondsSpent)} s`,
  );
}

function printNext(next: SessionNext): void {
  printSessionLine(next.session);
  if (!next.current) return write('Nothing left in this session.');
  write(`now: image ${next.current.imageId} (position ${next.current.position + 1} of ${next.session.total})`);
  if (next.current.labels.length > 0) printLabels(next.current.labels);
  if (next.following) write(`then: image ${next.following.imageId}`);
}

function registerSession(program: Command): void {
  const session = program.command('session').description('labelling sessions: create, list, suggestions, next, record, skip, previous, pause, resume, stats');
  const sessionId = (text: string) => parsePositiveInteger('session id', text);

  session
    .command('create')
    .description('create a session over a filtered or listed image set')
    .requiredOption('--name <name>', 'session name')
    .requiredOption('--annotator <name>', 'who labels in this session')
    .option(
      '--where <clause>',
      'filter clause, repeatable (all must hold): batch=N, case=KEY, flag=F, flag!=F, meta.KEY=V, meta.KEY~TEXT, label.KIND=V, labelled, unlabelled',
      collect,
    )
    .option('--images <ids>', 'explicit comma-separated image ids')
    .option('--order <order>', 'unlabelled-first (default), random, cluster, uncertain')
    .option('--seed <n>', 'seed for random and cluster orders (default 1)')
    .option('--model <id>', 'embedding model for the cluster order')
    .option('--clusters <n>', 'cluster count for the cluster order')
    .option('--agreement', 'labels meant for inter-annotator agreement (blind by default)')
    .option('--suggestions <mode>', 'blind: predictions and suggestions hidden until the annotator has chosen; shown (default unless agreement)')
    .action(
      async (
        options: {
          name: string;
          annotator: string;
          where?: string[];
          images?: string;
          order?: string;
          seed?: string;
          model?: string;
          clusters?: string;
          agreement?: boolean;
          suggestions?: string;
        },
        command: Command,
      ) => {
        await withCore(command, async (core, { json }) => {
          const input: Parameters<typeof core.sessions.create>[0] = { name: options.name, annotator: options.annotator };
          if (options.images !== undefined)
            input.imageIds = options.images
              .split(',')
              .filter((part) => part.trim() !== '')
              .map((part) => parsePositiveInteger('--images', part.trim()));
          else input.where = options.where ?? [];
          if (options.order !== undefined) input.order = options.order as NonNullable<typeof input.order>;
          if (options.seed !== undefined) {
            const seed = Number(options.seed);
            if (!Number.isInteger(seed) || seed < 0)
              throw new DermError('invalid-input', `--seed must be a whole number ≥ 0; got "${options.seed}".`, { field: 'seed' });
            input.seed = seed;
          }
          if (options.model !== undefined) input.modelId = options.model;
          if (options.clusters !== undefined) input.clusters = parsePositiveInteger('--clusters', options.clusters, 1000);
          if (options.agreement) input.agreement = true;
          if (options.suggestions !== undefined) input.suggestions = options.suggestions as NonNullable<typeof input.suggestions>;
          const created = core.sessions.create(input);
          if (json) await printCallOutput('sessionCreate', created);
          else printSessionLine(created);
        });
      },
    );

  session
    .command('suggestions')
    .description('blind: hide predictions and suggestions until the annotator has chosen; shown: show them at once')
    .argument('<id>', 'session id')
    .argument('<mode>', 'blind or shown')
    .action(async (id: string, mode: string, _options: unknown, command: Command) => {
      await withCore(command, async (core, { json }) => {
        const updated = core.sessions.setSuggestions(sessionId(id), mode as Parameters<typeof core.sessions.setSuggestions>[1]);
        if (json) await printCallOutput('sessionSetSuggestions', updated);
        else printSessionLine(updated);
      });
    });

  session
    .command('list')
    .description('list sessions with progress')
    .action(async (_options: unknown, command: Command) => {
      await withCore(command, async (core, { json }) => {
        const sessions = core.sessions.list();
        if (json) return await printCallOutput('sessionList', { sessions });
        if (sessions.length === 0) write('No sessions.');
        sessions.forEach(printSessionLine);
      });
    });

  session
    .command('next')
    .description('the image to label now (where the session left off) and the next one')
    .argument('<id>', 'session id')
    .action(async (id: string, _options: unknown, command: Command) => {
      await withCore(command, async (core, { json }) => {
        const next = core.sessions.next(sessionId(id));
        if (json) await printCallOutput('sessionNext', next);
        else printNext(next);
      });
    });

  session
    .command('record')
    .description("record the annotator's labels for an image of the session and move on")
    .argument('<id>', 'session id')
    .argument('<image-id>', 'image id')
    .option('--label <kind=value>', 'a label, repeatable: condition=eczema:4, fitzpatrick=III, note=text', collect)
    .option('--clear <kind>', "clear the annotator's labels of this kind, repeatable", collect)
    .option('--seconds <s>', 'time spent on the image')
    .action(async (id: string, imageIdText: string, options: { label?: string[]; clear?: string[]; seconds?: string }, command: Command) => {
      await withCore(command, async (core, { json }) => {
        const next = core.sessions.record(
          sessionId(id),
          parsePositiveInteger('image-id', imageIdText),
          parseLabelArguments(options.label ?? [], options.clear ?? []),
          parseSeconds(options.seconds),
        );
        if (json) await printCallOutput('sessionRecord', next);
        else printNext(next);
      });
    });

  session
    .command('skip')
    .description('skip the current image (or --image) and move on')
    .argument('<id>', 'session id')
    .option('--image <id>', 'image to skip (default: the current one)')
    .option('--seconds <s>', 'time spent on the image')
    .action(async (id: string, options: { image?: string; seconds?: string }, command: Command) => {
      await withCore(command, async (core, { json }) => {
        const next = core.sessions.skip(
          sessionId(id),
          options.image === undefined ? undefined : parsePositiveInteger('--image', options.image),
          parseSeconds(options.seconds),
        );
        if (json) await printCallOutput('sessionSkip', next);
        else printNext(next);
      });
    });

  for (const action of ['previous', 'resume'] as const) {
    session
      .command(action)
      .description(action === 'previous' ? 'go back one image' : 'resume a paused session where it left off')
      .argument('<id>', 'session id')
      .action(async (id: string, _options: unknown, command: Command) => {
        await withCore(command, async (core, { json }) => {
          const next = action === 'previous' ? core.sessions.previous(sessionId(id)) : core.sessions.resume(sessionId(id));
          // Resuming answers like sessionNext (the app resumes a session by asking for its next image).
          if (json) await printCallOutput(action === 'previous' ? 'sessionPrevious' : 'sessionNext', next);
          else printNext(next);
        });
      });
  }

  session
    .command('pause')
    .description('pause a session')
    .argument('<id>', 'session id')
    .action(async (id: string, _options: unknown, command: Command) => {
      await withCore(command, async (core, { json }) => {
        const paused = core.sessions.pause(sessionId(id));
        if (json) await printCallOutput('sessionPause', paused);
        else printSessionLine(paused);
      });
    });

  session
    .command('stats')
    .description('progress, time per image and label counts')
    .argument('<id>', 'session id')
    .action(async (id: string, _options: unknown, command: Command) => {
      await withCore(command, async (core, { json }) => {
        const stats = core.sessions.stats(sessionId(id));
        if (json) return await printCliOutput('sessionStats', stats);
        printSessionLine(stats.session);
        const { mean, median } = stats.secondsPerLabelledImage;
        write(
          `progress ${(stats.progress * 100).toFixed(1)}%  time ${stats.secondsTotal.toFixed(1)} s  per labelled image: mean ${mean?.toFixed(1) ?? '—'} s, median ${median?.toFixed(1) ?? '—'} s`,
        );
        for (const [kind, counts] of Object.entries(stats.labelCounts)) {
          write(
            `${kind.padEnd(13)} ${Object.entries(counts)
              .map(([value, count]) => `${value} ${count}`)
              .join(', ')}`,
          );
        }
      });
    });
}

function parseSeconds(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const seconds = Number(text);
  if (!Number.isFinite(seconds) || seconds < 0) throw new DermError('invalid-input', `--seconds must be a number ≥ 0; got "${text}".`, { field: 'seconds' });
  return seconds;
}

function formatKappa(value: number | null): string {
  return value === null ? 'n/a' : value.toFixed(3);
}

function printAgreement(kinds: KindAgreement[]): void {
  for (const kind of kinds) {
    if (kind.annotators.length < 2) continue;
    write(`${kind.kind} (${kind.annotators.join(', ')})`);
    for (const pair of kind.pairs) {
      write(
        `  ${pair.annotatorA} × ${pair.annotatorB}: ${pair.items} images, agreement ${pair.percentAgreement === null ? 'n/a' : `${(pair.percentAgreement * 100).toFixed(1)}%`}, Cohen's κ ${formatKappa(pair.kappa)}`,
      );
    }
    if (kind.group)
      write(
        `  all ${kind.group.annotators.length}: ${kind.group.items} images, unanimous ${kind.group.unanimous === null ? 'n/a' : `${(kind.group.unanimous * 100).toFixed(1)}%`}, Fleiss' κ ${formatKappa(kind.group.kappa)}`,
      );
  }
}

function registerAgreement(program: Command): void {
  program
    .command('agreement')
    .description("inter-annotator agreement per label kind: percent agreement, Cohen's κ per pair, Fleiss' κ for three or more")
    .option('--kind <kind>', 'only this label kind')
    .option('--annotators <names>', 'compare only these annotators (comma-separated)')
    .option('--disagreements', 'also list the images the annotators disagree on (not yet adjudicated)')
    .action(async (options: { kind?: string; annotators?: string; disagreements?: boolean }, command: Command) => {
      await withCore(command, async (core, { json }) => {
        const agreementOptions: { kind?: string; annotators?: string[] } = {};
        if (options.kind !== undefined) agreementOptions.kind = options.kind;
        if (options.annotators !== undefined)
          agreementOptions.annotators = options.annotators
            .split(',')
            .map((name) => name.trim())
            .filter(Boolean);
        const kinds = core.agreement.agreement(agreementOptions);
        const disagreements = options.disagreements || json ? core.agreement.disagreements(agreementOptions) : undefined;
        if (json) return await printCallOutput('agreementReport', { kinds, disagreements });
        printAgreement(kinds);
        if (kinds.every((kind) => kind.annotators.length < 2)) write('No label kind has two or more annotators yet.');
        for (const item of disagreements ?? [])
          write(`image ${item.imageId} ${item.kind}: ${item.ratings.map((rating) => `${rating.annotator} ${rating.values.join('+')}`).join(' | ')}`);
      });
    });

  program
    .command('adjudicate')
    .description('store the consensus (adjudicated) label of an image; exports mark it as consensus')
    .argument('<image-id>', 'image id')
    .requiredOption('--kind <kind>', 'label kind')
    .requiredOption('--value <value>', 'consensus value; repeat it for several values of a multi-valued kind', collect)
    .requiredOption('--annotator <name>', 'who adjudicates')
    .action(async (imageIdText: string, options: { kind: string; value: string[]; annotator: string }, command: Command) => {
      const imageId = parsePositiveInteger('image-id', imageIdText);
      await withCore(command, async (core, { json }) => {
        const changes = core.agreement.adjudicate({
          imageId,
          kind: options.kind,
          values: options.value.map((value) => ({ value })),
          annotator: options.annotator,
        });
        if (json) {
          const values = core.labels.consensus(imageId, parseLabelKind(options.kind, '--kind')).map((label) => label.value);
          await printCallOutput('adjudicate', { changed: changes.length, values });
        } else printChanges(changes);
      });
    });
}
