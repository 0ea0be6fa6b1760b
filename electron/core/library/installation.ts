import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The app's own files (package.json, migrations/, model manifests, dist-renderer/) are found by walking
 * up from the running module, because the same code runs from the source tree (electron/core/…), from
 * the compiled dist/electron/core/… and from a packaged app.asar whose extra resources sit beside it.
 */

const here = path.dirname(fileURLToPath(import.meta.url));

/** The first answer `look` gives for `start` or a folder above it, nearest first; undefined at the root. */
export function findUpwards<T>(start: string, look: (folder: string) => T | undefined): T | undefined {
  for (let folder = path.resolve(start); ; folder = path.dirname(folder)) {
    const found = look(folder);
    if (found !== undefined) return found;
    if (path.dirname(folder) === folder) return undefined;
  }
}

/** The folder above `start` holding derm-workstation's own package.json, with its version. */
export function findAppPackage(start = here): { folder: string; version: string } | undefined {
  return findUpwards(start, (folder) => {
    const candidate = path.join(folder, 'package.json');
    if (!fs.existsSync(candidate)) return undefined;
    const manifest = JSON.parse(fs.readFileSync(candidate, 'utf8')) as { name?: string; version?: string };
    return manifest.name === 'derm-workstation' && manifest.version ? { folder, version: manifest.version } : undefined;
  });
}

const versions = new Map<string, string>();

/**
 * The version in derm-workstation's package.json, as recorded in probe runs, exports and cluster shards.
 * "unknown" when no package.json is found, rather than a made-up version number.
 */
export function appVersion(start = here): string {
  let version = versions.get(start);
  if (version === undefined) {
    version = findAppPackage(start)?.version ?? 'unknown';
    versions.set(start, version);
  }
  return version;
}
