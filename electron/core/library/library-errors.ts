import path from 'node:path';
import { DermError } from '../../common/errors.js';
import type { LibraryPaths } from './library.js';

interface SystemError {
  code?: unknown;
  path?: unknown;
  message?: unknown;
}

/**
 * Turns low-level failures while working on a library (SQLite result codes, file-system errno) into
 * errors that name the library and the file and say what to do, instead of "internal: EISDIR" or
 * "database or disk is full". Anything already a DermError, or not recognised, is returned as is.
 */
export function explainLibraryError(error: unknown, paths: LibraryPaths, readOnly = false): unknown {
  if (error instanceof DermError || typeof error !== 'object' || error === null) return error;
  const { code, path: errorPath, message } = error as SystemError;
  if (typeof code !== 'string') return error;
  const text = typeof message === 'string' ? message : String(error);
  const file = typeof errorPath === 'string' ? errorPath : paths.database;
  const where = file === paths.database ? `its database ${paths.database}` : file;
  const details = { library: paths.root, file };

  // On a read-only library any file-system failure inside it (Node reports a refused recursive mkdir
  // as ENOENT) comes from the storage being read-only.
  const insideReadOnly = readOnly && typeof errorPath === 'string' && isInside(paths.root, errorPath);
  if (code.startsWith('SQLITE_READONLY') || code === 'EROFS' || insideReadOnly || (readOnly && (code === 'EACCES' || code === 'EPERM'))) {
    return new DermError(
      'read-only',
      `The library ${paths.root} is read-only (${readOnly ? 'opened from storage this process cannot write' : text}); nothing was changed. Copy the library folder to writable storage to change it.`,
      details,
    );
  }
  if (code === 'SQLITE_FULL' || code === 'ENOSPC' || code === 'EDQUOT') {
    return new DermError(
      'internal',
      `The disk holding the library ${paths.root} is full (writing ${where}); the change was not saved and nothing stored was lost. Free some space and try again.`,
      details,
    );
  }
  if (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB') {
    return new DermError(
      'library-unreadable',
      `The library ${paths.root} is damaged (${where}: ${text}). Run "dermws check --full" for a report; restore the library from a backup.`,
      { ...details, damaged: true },
    );
  }
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
    return new DermError(
      'in-use',
      `The library ${paths.root} stayed locked by another process (${where}); nothing was changed. Try again when the other import or job has finished.`,
      details,
    );
  }
  if (code === 'EISDIR') {
    return new DermError(
      'internal',
      `${file} in the library ${paths.root} is a folder where a file was expected; move that folder away (it is not part of the library).`,
      details,
    );
  }
  if ((code === 'EACCES' || code === 'EPERM') && typeof errorPath === 'string' && isInside(paths.root, errorPath)) {
    return new DermError('internal', `No permission to write ${errorPath} in the library ${paths.root}: ${text}`, details);
  }
  return error;
}

function isInside(root: string, file: string): boolean {
  const relative = path.relative(root, file);
  return relative === '' || (!relative.startsWith('..') && !path.isAbsolute(relative));
}
