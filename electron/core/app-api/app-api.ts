import { parseInput } from '../../common/contract-core.js';
import { contract, isCallName, type AppEvent, type CallName, type CallOutput, type CallParsedInput } from '../../common/contract.js';
import { DermError } from '../../common/errors.js';
import type { Core } from '../core.js';
import { JobRegistry } from './job-registry.js';
import { LibraryViewRepository } from '../library-view/library-view.repository.js';
import { explainLibraryError } from '../library/library-errors.js';

export interface AppApiOptions {
  /** cli: the `dermws` command line, an in-process client of the same calls. */
  mode: 'electron' | 'web' | 'cli';
  appVersion: string;
  /** Folder the web bridge stores browser uploads in, one sub-folder per upload id. */
  uploadsFolder?: string;
}

export interface HandlerContext {
  readonly core: Core;
  readonly jobs: JobRegistry;
  readonly view: LibraryViewRepository;
  readonly options: AppApiOptions;
  emit(event: AppEvent): void;
}

export type Handler<Name extends CallName> = (input: CallParsedInput<Name>, context: HandlerContext) => Promise<CallOutput<Name>> | CallOutput<Name>;
export type Handlers = { [Name in CallName]: Handler<Name> };
export type HandlerGroup<Names extends CallName> = { [Name in Names]: Handler<Name> };

/**
 * Every contract call mapped to the core: validates the input (precise field errors), runs the
 * handler, and validates the output, so neither side ever sees a shape the contract does not promise.
 * Electron (through the worker host) and the web bridge both go through here.
 */
export class AppApi {
  readonly jobs: JobRegistry;
  readonly view: LibraryViewRepository;
  private readonly listeners = new Set<(event: AppEvent) => void>();
  private readonly context: HandlerContext;

  constructor(
    readonly core: Core,
    private readonly handlers: Handlers,
    readonly options: AppApiOptions,
  ) {
    const emit = (event: AppEvent) => {
      for (const listener of this.listeners) listener(event);
    };
    this.jobs = new JobRegistry(emit, undefined, (error) => explainLibraryError(error, core.library.paths, core.library.readOnly));
    this.view = new LibraryViewRepository(core.library.db, core.repositories.facets, core.repositories.search);
    this.context = { core, jobs: this.jobs, view: this.view, options, emit };
  }

  async invoke(name: string, input: unknown): Promise<unknown> {
    if (!isCallName(name)) throw new DermError('not-found', `There is no call named "${name}".`, { call: name });
    const spec = contract[name];
    const parsed = parseInput(name, spec.input, input);
    const handler = this.handlers[name] as (input: unknown, context: HandlerContext) => unknown;
    let output: unknown;
    try {
      output = await handler(parsed, this.context);
    } catch (error) {
      throw explainLibraryError(error, this.core.library.paths, this.core.library.readOnly);
    }
    const checked = spec.output.safeParse(output);
    if (!checked.success) {
      const field = checked.error.issues[0]?.path.map(String).join('.') ?? '';
      throw new DermError('internal', `The answer to ${name} did not match the contract (field "${field}": ${checked.error.issues[0]?.message}).`, {
        call: name,
      });
    }
    return checked.data;
  }

  /** The file behind a media URL, resolved from the image row only. */
  mediaFile(kind: 'thumbnail' | 'image', imageId: number): string {
    return this.view.mediaFile(kind, imageId, this.core.library.paths.root);
  }

  subscribe(listener: (event: AppEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async close(): Promise<void> {
    await this.jobs.stopAll();
    this.core.close();
  }
}
