import fs from 'node:fs/promises';
import path from 'node:path';

/** Extensions tried when walking folders; other files found in folders are reported as skipped. */
export const imageExtensions = new Set(['.jpg', '.jpeg', '.jpe', '.jfif', '.png', '.webp', '.tif', '.tiff', '.heic', '.heif', '.avif', '.gif']);

export interface ListedFile {
  /** Absolute path as reached (not resolved through symbolic links), used as the outcome's path. */
  path: string;
  /** Path relative to the import root with `/` separators, or null when the file lies outside it. */
  relativePath: string | null;
}

export interface ListingProblem {
  path: string;
  outcome: 'failed' | 'skipped';
  reason: string;
}

export interface Listing {
  files: ListedFile[];
  problems: ListingProblem[];
}

/**
 * Lists the files to import from files and folders given by the user. Folders are walked
 * recursively in name order. Symbolic links are followed, with the real path of every folder on the
 * way down remembered: a link back to a folder being walked, or to any folder containing one (an
 * ancestor such as `..`), is a loop and is reported as failed; a
 * second link to a folder already walked elsewhere is skipped. Files named explicitly are always
 * tried whatever their extension; files met inside folders are tried only with an image extension.
 * Hidden files inside folders (".DS_Store") are ignored.
 */
export async function listImportFiles(inputs: string[], root?: string): Promise<Listing> {
  const files: ListedFile[] = [];
  const problems: ListingProblem[] = [];
  const seenFiles = new Set<string>();
  const walkedFolders = new Map<string, string>();

  const addFile = (file: string, base: string) => {
    if (seenFiles.has(file)) return;
    seenFiles.add(file);
    files.push({ path: file, relativePath: relativeTo(base, file) });
  };

  const walk = async (folder: string, base: string, ancestors: Set<string>): Promise<void> => {
    let entries: import('node:fs').Dirent[];
    try {
      entries = await fs.readdir(folder, { withFileTypes: true });
    } catch (error) {
      problems.push({ path: folder, outcome: 'failed', reason: explainFileSystemError(error, 'folder') });
      return;
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      const entryPath = path.join(folder, entry.name);
      if (entry.name.startsWith('.')) continue;
      let isFolder = entry.isDirectory();
      let isFile = entry.isFile();
      if (entry.isSymbolicLink()) {
        try {
          const target = await fs.stat(entryPath);
          isFolder = target.isDirectory();
          isFile = target.isFile();
        } catch (error) {
          problems.push({ path: entryPath, outcome: 'failed', reason: explainFileSystemError(error, 'link') });
          continue;
        }
      }
      if (isFolder) {
        await enterFolder(entryPath, base, ancestors);
      } else if (isFile) {
        if (imageExtensions.has(path.extname(entry.name).toLowerCase())) addFile(entryPath, base);
        else
          problems.push({
            path: entryPath,
            outcome: 'skipped',
            reason: `Not an image file name (extension "${path.extname(entry.name) || 'none'}"); files inside folders are imported only with an image extension.`,
          });
      }
    }
  };

  const enterFolder = async (folder: string, base: string, ancestors: Set<string>): Promise<void> => {
    let real: string;
    try {
      real = await fs.realpath(folder);
    } catch (error) {
      problems.push({ path: folder, outcome: 'failed', reason: explainFileSystemError(error, 'folder') });
      return;
    }
    // A link to any folder that contains the one being walked (`bad/loop -> ..` when the user chose
    // `bad`) leads back over it: it is a loop even when that containing folder was never walked itself,
    // and following it would import files outside the folders the user chose.
    const contains = [...ancestors].some((ancestor) => ancestor === real || isInside(real, ancestor));
    if (contains) {
      problems.push({ path: folder, outcome: 'failed', reason: `Symbolic link loop: this leads back to ${real}, a folder that contains it; not followed.` });
      return;
    }
    const earlier = walkedFolders.get(real);
    if (earlier !== undefined) {
      problems.push({ path: folder, outcome: 'skipped', reason: `Same folder as ${earlier} (through a symbolic link), which is already part of this import.` });
      return;
    }
    walkedFolders.set(real, folder);
    await walk(folder, base, new Set([...ancestors, real]));
  };

  for (const input of inputs) {
    const absolute = path.resolve(input);
    let stat: import('node:fs').Stats;
    try {
      stat = await fs.stat(absolute);
    } catch (error) {
      problems.push({ path: absolute, outcome: 'failed', reason: explainFileSystemError(error, 'path') });
      continue;
    }
    if (stat.isDirectory()) {
      await enterFolder(absolute, root ? path.resolve(root) : absolute, new Set());
    } else if (stat.isFile()) {
      addFile(absolute, root ? path.resolve(root) : path.dirname(absolute));
    } else {
      problems.push({ path: absolute, outcome: 'failed', reason: 'Not a regular file or folder (a device, socket or pipe).' });
    }
  }
  return { files, problems };
}

/** True when `inner` lies strictly below `outer` (both real, absolute paths). */
function isInside(outer: string, inner: string): boolean {
  const relative = path.relative(outer, inner);
  return relative !== '' && !relative.startsWith('..') && !path.isAbsolute(relative);
}

function relativeTo(base: string, file: string): string | null {
  const relative = path.relative(base, file);
  if (relative === '' || relative.startsWith('..') || path.isAbsolute(relative)) return null;
  return relative.split(path.sep).join('/');
}

/** A sentence for a file-system error met while listing or reading. */
export function explainFileSystemError(error: unknown, what: 'file' | 'folder' | 'link' | 'path'): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case 'ENOENT':
      if (what === 'link') return 'Broken symbolic link: its target does not exist.';
      if (what === 'file') return 'The file vanished before it could be read (moved or deleted during the import).';
      return `The ${what} does not exist.`;
    case 'EACCES':
    case 'EPERM':
      return `Permission denied: the ${what === 'link' ? 'link target' : what} cannot be read by this user.`;
    case 'ELOOP':
      return 'Symbolic link loop: the link points (through other links) back to itself.';
    case 'EISDIR':
      return 'Expected a file but found a folder.';
    case 'EMFILE':
    case 'ENFILE':
      return 'Too many files open at once; try the import again.';
    case 'EIO':
      return 'Input/output error while reading (a failing disk or a disconnected drive?).';
    default:
      return `Could not read the ${what}: ${error instanceof Error ? error.message : String(error)}`;
  }
}
