import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * What `dermws` loads before it runs a command. Node evaluates every static import of the entry
 * module before the first line runs, so a package on the static import graph of electron/cli/main.ts
 * is paid by every command, `--help` included. The packages below cost tens to hundreds of
 * milliseconds each (native add-ons, protobuf's generated code, zod's hundred modules); the CLI
 * imports each command's work when the command runs and the core loads them at first use
 * (electron/core/runtime/lazy-packages.ts). test/bench/cli-startup.bench.ts measures what this buys.
 */
const root = path.resolve(import.meta.dirname, '../..');
const heavyPackages = ['sharp', 'onnxruntime-node', 'hnswlib-node', 'onnx-proto', 'protobufjs', 'nsfwjs', 'fflate', 'zod'];

interface StaticImport {
  specifier: string;
  from: string;
}

/** Static value imports and re-exports of one TypeScript module; type-only ones are erased by the compiler and never load. */
export function staticValueImports(source: string): string[] {
  const specifiers: string[] = [];
  // `import x from`, `import { a, type B } from`, `import * as x from`, `export { a } from`, `export * from`, `import 'x'`.
  const statement = /^\s*(?:import|export)\s+(type\s+)?(?:([\w$*{},\s]+?)\s+from\s+)?['"]([^'"]+)['"]/gm;
  for (const match of source.matchAll(statement)) {
    const [, typeOnly, clause = '', specifier] = match;
    if (typeOnly) continue;
    const named = /^\{([^}]*)\}$/.exec(clause.trim());
    // `import { type A, type B } from` names only types, so nothing is imported at run time.
    if (
      named &&
      named[1]!
        .split(',')
        .map((part) => part.trim())
        .filter(Boolean)
        .every((part) => part.startsWith('type '))
    )
      continue;
    specifiers.push(specifier!);
  }
  return specifiers;
}

/** Every module and package reached from an entry through static imports, with the chain that reaches each package. */
function staticGraph(entry: string): { modules: Set<string>; packages: Map<string, StaticImport[]> } {
  const modules = new Set<string>();
  const packages = new Map<string, StaticImport[]>();
  const chains = new Map<string, string[]>([[entry, [entry]]]);
  const queue = [entry];
  while (queue.length > 0) {
    const file = queue.shift()!;
    if (modules.has(file)) continue;
    modules.add(file);
    for (const specifier of staticValueImports(fs.readFileSync(file, 'utf8'))) {
      if (specifier.startsWith('.')) {
        const target = path.resolve(path.dirname(file), specifier).replace(/\.js$/, '.ts');
        if (!chains.has(target)) chains.set(target, [...chains.get(file)!, target]);
        queue.push(target);
      } else if (!specifier.startsWith('node:')) {
        const name = specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : specifier.split('/')[0]!;
        const found = packages.get(name) ?? [];
        found.push({
          specifier,
          from: chains
            .get(file)!
            .map((step) => path.relative(root, step))
            .join(' > '),
        });
        packages.set(name, found);
      }
    }
  }
  return { modules, packages };
}

function heavyReached(entry: string): string[] {
  const { packages } = staticGraph(path.join(root, entry));
  return heavyPackages.filter((name) => packages.has(name)).map((name) => `${name} via ${packages.get(name)![0]!.from}`);
}

describe('start-up imports', () => {
  it('tells type-only imports from value imports', () => {
    const source = [
      "import type { Command } from 'commander';",
      "import { type Core, type CoreConfig } from './core.js';",
      "import { Command as Program, type Option } from 'commander';",
      "import sharp from 'sharp';",
      "import {\n  first,\n  second,\n} from './values.js';",
      "export { parse } from './parse.js';",
      "export type { Shape } from './shape.js';",
      "import './side-effect.js';",
      "const later = await import('onnxruntime-node');",
    ].join('\n');
    expect(staticValueImports(source)).toEqual(['commander', 'sharp', './values.js', './parse.js', './side-effect.js']);
  });

  it('the CLI entry reaches neither the core nor a heavy package before a command runs', () => {
    const { modules, packages } = staticGraph(path.join(root, 'electron/cli/main.ts'));
    expect([...modules].map((file) => path.relative(root, file)).filter((file) => file === 'electron/core/core.ts')).toEqual([]);
    expect(heavyPackages.filter((name) => packages.has(name))).toEqual([]);
    // better-sqlite3 is what `info` needs first; it comes with the core, not with `--help`.
    expect(packages.has('better-sqlite3')).toBe(false);
  });

  it('the core opens a library without loading image, ONNX, HNSW or schema packages', () => {
    expect(heavyReached('electron/core/core.ts')).toEqual([]);
  });

  it('the commands `info`, `label` and `index status` use reach nothing heavy either', () => {
    expect(heavyReached('electron/cli/commands/library.command.ts')).toEqual([]);
    expect(heavyReached('electron/cli/commands/labels.command.ts')).toEqual([]);
    expect(heavyReached('electron/cli/commands/search.command.ts')).toEqual([]);
  });
});
