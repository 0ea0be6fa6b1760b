/**
 * Error codes shared by every side (core, CLI, IPC, web bridge, renderer). A DermError always says
 * what was wrong and names the file, field or value involved, so it can be shown to a person as is.
 */
export const errorCodes = [
  'invalid-input',
  'not-found',
  'library-too-new',
  'library-unreadable',
  'migration-failed',
  'decode-failed',
  'model-invalid',
  'model-failed',
  'embeddings-invalid',
  'index-invalid',
  'conflict',
  'in-use',
  'read-only',
  'cancelled',
  'unauthorized',
  'internal',
] as const;

export type ErrorCode = (typeof errorCodes)[number];

export class DermError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>) {
    super(message);
    this.name = 'DermError';
    this.code = code;
    this.details = details;
  }
}

export interface SerializedError {
  code: ErrorCode;
  message: string;
  details?: Record<string, unknown>;
}

export function serializeError(error: unknown): SerializedError {
  if (error instanceof DermError) {
    return error.details === undefined ? { code: error.code, message: error.message } : { code: error.code, message: error.message, details: error.details };
  }
  const message = error instanceof Error ? error.message : String(error);
  return { code: 'internal', message };
}

export function isDermError(error: unknown, code?: ErrorCode): error is DermError {
  return error instanceof DermError && (code === undefined || error.code === code);
}
