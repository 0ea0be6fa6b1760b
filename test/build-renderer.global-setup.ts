import { spawnSync } from 'node:child_process';
import path from 'node:path';

/**
 * Builds the renderer once for the whole run, before any end-to-end file starts. Each e2e file used to
 * run `vite build` itself; with two files in flight (two forks on CI's two cores) one build emptied
 * dist-renderer/ while the other file's server was serving from it. A run that selects only unit or
 * medium files skips the build.
 */
export default function buildRendererOnce(): void {
  const args = process.argv.slice(2).filter((arg) => !arg.startsWith('-') && arg !== 'run' && arg !== 'watch');
  const wantsEndToEnd = args.length === 0 || args.some((arg) => arg.includes('e2e'));
  if (!wantsEndToEnd) return;
  const root = path.resolve(import.meta.dirname, '..');
  const build = spawnSync(
    process.execPath,
    [path.join(root, 'node_modules/vite/bin/vite.js'), 'build', '--config', 'renderer/vite.config.ts', '--logLevel', 'warn'],
    {
      cwd: root,
      encoding: 'utf8',
    },
  );
  if (build.status !== 0) throw new Error(`vite build failed:\n${build.stdout}\n${build.stderr}`);
}
