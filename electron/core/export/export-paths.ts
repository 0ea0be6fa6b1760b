import fs from 'node:fs';
import path from 'node:path';
import { DermError } from '../../common/errors.js';

/**
 * Every file an export writes goes through here, so nothing is ever written outside the chosen folder:
 * names are relative, may not climb out with "..", and no existing component on the way (folder or
 * file) may be a symbolic link, which could otherwise redirect a write anywhere on the disk.
 */
export class ExportFolder {
  /** Real path of the export folder (symlinks in the folder the user chose are theirs to make). */
  readonly root: string;

  private constructor(root: string) {
    this.root = root;
  }

  /** Creates the folder when missing and resolves it. */
  static open(folder: string): ExportFolder {
    const absolute = path.resolve(folder);
    try {
      fs.mkdirSync(absolute, { recursive: true });
    } catch (error) {
      throw new DermError('invalid-input', `Cannot create the export folder ${absolute}: ${(error as Error).message}`, { folder: absolute });
    }
    if (!fs.statSync(absolute).isDirectory()) throw new DermError('invalid-input', `The export target ${absolute} is not a folder.`, { folder: absolute });
    return new ExportFolder(fs.realpathSync(absolute));
  }

  /**
   * The absolute path for a name inside the folder ("/" separates folders; so does "\\" on Windows).
   * Refuses absolute names, drive letters, NUL, ".." (between either kind of slash), and any existing
   * symlink along the way.
   */
  resolve(name: string): string {
    const refuse = (why: string): never => {
      throw new DermError('invalid-input', `Refusing to write "${name}" in the export folder ${this.root}: ${why}.`, { folder: this.root, name });
    };
    if (name === '' || name.includes('\0')) refuse('the name is empty or holds a NUL character');
    // On Linux and macOS a backslash is an ordinary character of a file name ("scan\2.jpg" is one
    // file), so only "/" separates folders there. A ".." between backslashes is still refused: the
    // export may be unpacked on Windows, where it would climb out.
    const parts = (path.sep === '\\' ? name.replaceAll('\\', '/') : name).split('/');
    if (name.startsWith('/') || name.startsWith('\\') || /^[A-Za-z]:/.test(name)) refuse('the name is absolute');
    if (name.split(/[\\/]/).some((part) => part === '..')) refuse('the name climbs out of the folder with ".."');
    const clean = parts.filter((part) => part !== '' && part !== '.');
    if (clean.length === 0) refuse('the name names the folder itself');
    const target = path.join(this.root, ...clean);
    const relative = path.relative(this.root, target);
    if (relative === '' || relative.startsWith('..') || path.isAbsolute(relative)) refuse('the name resolves outside the folder');
    let current = this.root;
    for (const part of clean) {
      current = path.join(current, part);
      let stat: fs.Stats;
      try {
        stat = fs.lstatSync(current);
      } catch {
        break;
      }
      if (stat.isSymbolicLink()) refuse(`${path.relative(this.root, current)} is a symbolic link`);
    }
    return target;
  }

  exists(name: string): boolean {
    return fs.existsSync(this.resolve(name));
  }

  /**
   * Writes a file through a temporary name and a rename, so a reader never sees half a file and a
   * failure leaves the previous file (or none). Whatever already sits under the temporary name is
   * removed first (a planted link is unlinked, never followed), and the rename replaces the name
   * itself, never a file a link points to.
   */
  writeFile(name: string, write: (temporaryPath: string) => void): string {
    const { target, temporary } = this.prepareWrite(name);
    try {
      write(temporary);
      fs.renameSync(temporary, target);
    } catch (error) {
      fs.rmSync(temporary, { force: true });
      throw error;
    }
    return target;
  }

  async writeFileAsync(name: string, write: (temporaryPath: string) => Promise<void>): Promise<string> {
    const { target, temporary } = this.prepareWrite(name);
    try {
      await write(temporary);
      fs.renameSync(temporary, target);
    } catch (error) {
      fs.rmSync(temporary, { force: true });
      throw error;
    }
    return target;
  }

  /**
   * The target of `name` and an emptied temporary name beside it. The name is resolved again once its
   * folders exist, so a link planted among them is refused before anything is written.
   */
  private prepareWrite(name: string): { target: string; temporary: string } {
    const target = this.resolve(name);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    this.resolve(name);
    const temporary = `${target}.${process.pid}.partial`;
    fs.rmSync(temporary, { force: true });
    return { target, temporary };
  }
}
