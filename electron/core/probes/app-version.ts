import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: string | undefined;

/** The version in the project's package.json, found by walking up from this file (works from source and from dist/). */
export function appVersion(): string {
  if (cached !== undefined) return cached;
  let folder = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = path.join(folder, 'package.json');
    if (fs.existsSync(candidate)) {
      const manifest = JSON.parse(fs.readFileSync(candidate, 'utf8')) as { name?: string; version?: string };
      if (manifest.name === 'derm-workstation' && manifest.version) return (cached = manifest.version);
    }
    const parent = path.dirname(folder);
    if (parent === folder) return (cached = 'unknown');
    folder = parent;
  }
}
