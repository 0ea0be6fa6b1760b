// Development: rebuilds the renderer on every change (vite build --watch, so the strict CSP of the
// packaged app also holds in development) and starts Electron once the first build is written.
// Reload the window (Ctrl+R / Cmd+R) to see renderer changes; restart for main-process changes.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'vite';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
// The electron package exports the path of its binary; this throws a clear error when it was not downloaded.
const electronBinary = createRequire(import.meta.url)('electron');
let electron;

await build({
  configFile: path.join(root, 'renderer/vite.config.ts'),
  build: { watch: {} },
  plugins: [
    {
      name: 'start-electron-once',
      closeBundle() {
        if (electron) return;
        electron = spawn(electronBinary, [root, ...process.argv.slice(2)], { stdio: 'inherit', cwd: root });
        electron.on('exit', (code) => process.exit(code ?? 0));
      },
    },
  ],
});
