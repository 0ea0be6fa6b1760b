import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The version in the project's package.json, found from source (electron/core/…) or compiled (dist/…) code. */
export function appVersion(start = path.dirname(fileURLToPath(import.meta.url))): string {
  let folder = start;
  for (;;) {
    const candidate = path.join(folder, 'package.json');
    if (fs.existsSync(candidate)) {
      const parsed = JSON.parse(fs.readFileSync(candidate, 'utf8')) as { name?: string; version?: string };
      if (parsed.name === 'derm-workstation' && parsed.version) return parsed.version;
    }
    const parent = path.dirname(folder);
    if (parent === folder) return '0.0.0';
    folder = parent;
  }
}
