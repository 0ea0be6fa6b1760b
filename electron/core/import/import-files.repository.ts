import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { LibraryPaths } from '../library/library.js';

/**
 * File-system side of the import: reading source files and writing thumbnails and managed copies
 * into the library. Library files are named by the source file's sha256, so a rerun after a crash
 * rewrites the same names instead of leaving a second copy, and every write goes to a temporary
 * name first and is renamed into place, so a reader never sees half a file.
 */
export class ImportFilesRepository {
  constructor(private readonly paths: LibraryPaths) {}

  async read(file: string): Promise<Buffer> {
    return fs.readFile(file);
  }

  /** Writes the thumbnail; returns its path relative to the library root. */
  async writeThumbnail(fileSha256: string, webp: Buffer): Promise<string> {
    const relative = path.posix.join('thumbnails', fileSha256.slice(0, 2), `${fileSha256}.webp`);
    await this.writeAtomically(relative, webp);
    return relative;
  }

  /** Writes the managed copy of the source bytes; returns its path relative to the library root. */
  async writeManagedCopy(fileSha256: string, sourcePath: string, bytes: Buffer): Promise<string> {
    const extension =
      path
        .extname(sourcePath)
        .toLowerCase()
        .replace(/[^.a-z0-9]/g, '') || '.img';
    const relative = path.posix.join('images', fileSha256.slice(0, 2), `${fileSha256}${extension}`);
    await this.writeAtomically(relative, bytes);
    return relative;
  }

  /** Removes a library file written for an image whose row was not committed (best effort). */
  async remove(relative: string): Promise<void> {
    await fs.rm(path.join(this.paths.root, relative), { force: true });
  }

  private async writeAtomically(relative: string, bytes: Buffer): Promise<void> {
    const target = path.join(this.paths.root, relative);
    await fs.mkdir(path.dirname(target), { recursive: true });
    const temporary = `${target}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`;
    try {
      await fs.writeFile(temporary, bytes);
      await fs.rename(temporary, target);
    } catch (error) {
      await fs.rm(temporary, { force: true });
      throw error;
    }
  }
}
