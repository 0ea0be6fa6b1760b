import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { svelte } from '@sveltejs/vite-plugin-svelte';
import { defineConfig } from 'vite';

const here = path.dirname(fileURLToPath(import.meta.url));

// The renderer is served from the web bridge and from Electron's app:// protocol, both under a strict
// CSP (script-src 'self', style-src 'self'): relative asset URLs, no inline scripts or styles.
export default defineConfig({
  root: here,
  base: './',
  plugins: [svelte({ configFile: false, compilerOptions: { runes: true } })],
  build: {
    outDir: path.resolve(here, '../dist-renderer'),
    emptyOutDir: true,
    target: 'es2022',
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    cssCodeSplit: false,
    sourcemap: true,
  },
  worker: { format: 'es' },
  server: { port: 5173, strictPort: true },
});
