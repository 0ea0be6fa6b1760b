import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * Folder names state where code may run: electron/core and electron/common never import 'electron'
 * (they run in plain Node for the CLI and web mode), and the renderer never imports a main-process
 * package or core code.
 */
const root = path.resolve(import.meta.dirname, '../..');

function sourceFiles(folder: string, extensions: string[]): string[] {
  if (!fs.existsSync(folder)) return [];
  const found: string[] = [];
  for (const entry of fs.readdirSync(folder, { withFileTypes: true })) {
    const full = path.join(folder, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== 'node_modules' && entry.name !== 'dist') found.push(...sourceFiles(full, extensions));
    } else if (extensions.some((extension) => entry.name.endsWith(extension))) {
      found.push(full);
    }
  }
  return found;
}

const importPattern = /(?:import|export)\s+(?:[^'"]*?\sfrom\s+)?['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|require\(\s*['"]([^'"]+)['"]\s*\)/g;

export function importsOf(source: string): string[] {
  const specifiers: string[] = [];
  for (const match of source.matchAll(importPattern)) specifiers.push((match[1] ?? match[2] ?? match[3])!);
  return specifiers;
}

function violations(folder: string, extensions: string[], isForbidden: (specifier: string, file: string) => boolean): string[] {
  const found: string[] = [];
  for (const file of sourceFiles(folder, extensions)) {
    for (const specifier of importsOf(fs.readFileSync(file, 'utf8'))) {
      if (isForbidden(specifier, file)) found.push(`${path.relative(root, file)} imports ${specifier}`);
    }
  }
  return found;
}

const mainProcessPackages = ['electron', 'better-sqlite3', 'onnxruntime-node', 'sharp', 'hnswlib-node'];

describe('import layers', () => {
  it('recognises the import forms it is scanning for', () => {
    expect(importsOf(`import Database from 'better-sqlite3';\nimport { x } from "./a.js";\nexport * from './b.js';\nconst m = await import('sharp');\nrequire('electron');\nimport 'side-effect';`)).toEqual([
      'better-sqlite3',
      './a.js',
      './b.js',
      'sharp',
      'electron',
      'side-effect',
    ]);
  });

  it('keeps electron out of electron/core and electron/common', () => {
    const isElectron = (specifier: string) => specifier === 'electron' || specifier.startsWith('electron/');
    expect(violations(path.join(root, 'electron/core'), ['.ts'], isElectron)).toEqual([]);
    expect(violations(path.join(root, 'electron/common'), ['.ts'], isElectron)).toEqual([]);
  });

  it('keeps node-only APIs out of electron/common', () => {
    expect(violations(path.join(root, 'electron/common'), ['.ts'], (specifier) => specifier.startsWith('node:') || mainProcessPackages.includes(specifier))).toEqual([]);
  });

  it('keeps main-process packages and core code out of the renderer', () => {
    // renderer/src is what runs in the window; renderer/vite.config.ts is build tooling that runs in Node.
    const rendererSource = path.join(root, 'renderer/src');
    const forbidden = (specifier: string, file: string) => {
      if (mainProcessPackages.includes(specifier) || specifier.startsWith('node:')) return true;
      if (!specifier.startsWith('.')) return false;
      const target = path.resolve(path.dirname(file), specifier);
      return target.startsWith(path.join(root, 'electron')) && !target.startsWith(path.join(root, 'electron/common'));
    };
    expect(violations(rendererSource, ['.ts', '.svelte', '.js'], forbidden)).toEqual([]);
  });
});
