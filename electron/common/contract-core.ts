import { z } from 'zod';
import { DermError, errorCodes, type SerializedError } from './errors.js';

// zod compiles object schemas with `new Function` after probing whether eval is allowed. The app's
// Content-Security-Policy forbids eval (script-src 'self'), and the probe alone is reported as a CSP
// violation on every page load even though zod catches it, so wherever a page runs this (the
// renderer, its workers) zod is jitless: no probe, no compiled parsers. Plain Node (the core worker,
// CLI, web bridge) has no CSP and keeps the compiled parsers, several times faster on large outputs.
// This runs before any schema of the contract is built, which is when zod reads the setting: every
// module under contract/ imports this one, so it is evaluated before theirs.
const runsInNode = Boolean((globalThis as { process?: { versions?: { node?: string } } }).process?.versions?.node);
z.config({ jitless: !runsInNode });

/**
 * The machinery of the app contract: how a call is declared, how input is validated with errors that
 * name the field, the transport every side speaks (Electron IPC, the HTTP bridge, the worker host) and
 * the typed client derived from the call table. Plain TypeScript and zod only: this file runs in the
 * renderer, the preload, Electron main and plain Node.
 */

export interface CallSpec<Input extends z.ZodType = z.ZodType, Output extends z.ZodType = z.ZodType> {
  input: Input;
  output: Output;
  description: string;
  /** Set on calls that start a long job: they return `{ jobId }` and report through onJobProgress/onJobFinished. */
  startsJob?: string;
}

export function defineCall<Input extends z.ZodType, Output extends z.ZodType>(spec: CallSpec<Input, Output>): CallSpec<Input, Output> {
  return spec;
}

export const serializedErrorSchema = z.object({
  code: z.enum(errorCodes),
  message: z.string(),
  details: z.record(z.string(), z.unknown()).optional(),
});

/** Turns a zod failure into one sentence naming every field that was wrong, e.g. `imagesPage: "limit" must be …`. */
export function describeIssues(callName: string, issues: ReadonlyArray<z.core.$ZodIssue>): string {
  const parts = issues.slice(0, 5).map((issue) => {
    const field = issue.path.length > 0 ? issue.path.map(String).join('.') : undefined;
    if (issue.code === 'unrecognized_keys') {
      const where = field ? ` in "${field}"` : '';
      return `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((key) => `"${key}"`).join(', ')}${where}`;
    }
    return field ? `field "${field}": ${issue.message}` : issue.message;
  });
  const more = issues.length > 5 ? ` (and ${issues.length - 5} more problems)` : '';
  return `Invalid input for ${callName}: ${parts.join('; ')}${more}.`;
}

/** Validates `value` against `schema`, throwing a DermError('invalid-input') that names the call and the fields. */
export function parseInput<Schema extends z.ZodType>(callName: string, schema: Schema, value: unknown): z.output<Schema> {
  const result = schema.safeParse(value ?? {});
  if (!result.success) {
    const fields = result.error.issues.map((issue) => issue.path.map(String).join('.')).filter((field) => field.length > 0);
    throw new DermError('invalid-input', describeIssues(callName, result.error.issues), { call: callName, fields });
  }
  return result.data;
}

export function errorFromSerialized(serialized: SerializedError): DermError {
  return new DermError(serialized.code, serialized.message, serialized.details);
}

/**
 * What every transport offers: invoke a call by name (resolving with its output or rejecting with a
 * DermError), and a stream of app events.
 */
export interface ContractTransport<Event = unknown> {
  invoke(callName: string, input: unknown): Promise<unknown>;
  subscribe(listener: (event: Event) => void): () => void;
}
