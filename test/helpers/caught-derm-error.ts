import { isDermError, type DermError } from '../../electron/common/errors.js';

/** The DermError `work` throws, so a test can check its code, message and details; anything else fails the test. */
export function caughtDermError(work: () => unknown): DermError {
  try {
    work();
  } catch (error) {
    if (isDermError(error)) return error;
    throw error;
  }
  throw new Error('expected a DermError');
}
