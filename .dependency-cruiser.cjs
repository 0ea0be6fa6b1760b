// Architecture rules, checked by `npm run lint:code` (dependency-cruiser). Folder names state where
// code runs: electron/common is shared by every side (no Node, no Electron), electron/core is plain
// Node for the CLI, the web mode and the app's worker (never Electron), and the renderer reaches the
// rest only through electron/common's contract.
const mainProcessPackages = '^(electron|better-sqlite3|onnxruntime-node|sharp|hnswlib-node)$';
const nodeModule = (name) => `(^|/)node_modules/${name}/`;

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'common-is-shared-by-every-side',
      comment: 'electron/common is imported by the renderer, the core and Electron main: it may import nothing of theirs.',
      severity: 'error',
      from: { path: '^electron/common/' },
      to: { path: '^electron/(core|cli|web|main|preload)/' },
    },
    {
      name: 'common-runs-anywhere',
      comment: 'electron/common runs in the window too: no native packages and no Electron.',
      severity: 'error',
      from: { path: '^electron/common/' },
      to: { path: [nodeModule('(electron|better-sqlite3|onnxruntime-node|sharp|hnswlib-node)'), mainProcessPackages] },
    },
    {
      name: 'common-no-node-builtins',
      comment: 'electron/common runs in the window too: no Node built-ins.',
      severity: 'error',
      from: { path: '^electron/common/' },
      to: { dependencyTypes: ['core'] },
    },
    {
      name: 'core-never-imports-electron',
      comment: 'electron/core runs in plain Node (CLI, web mode, the worker); Electron exists only in main and preload.',
      severity: 'error',
      from: { path: '^electron/core/' },
      to: { path: [nodeModule('electron'), '^electron$'] },
    },
    {
      name: 'core-is-below-its-entry-points',
      comment: 'The CLI, web mode, Electron main and preload call the core; the core never calls them.',
      severity: 'error',
      from: { path: '^electron/core/' },
      to: { path: '^electron/(cli|web|main|preload)/' },
    },
    {
      name: 'app-code-never-imports-model-tooling',
      comment: 'native-models/ holds model cards, bundled manifests and build-time scripts; code the app runs lives in electron/.',
      severity: 'error',
      from: { path: '^electron/' },
      to: { path: '^native-models/' },
    },
    {
      name: 'app-code-never-imports-tests',
      comment: 'Test fixtures and helpers are not shipped: nothing under electron/ or renderer/ may need them.',
      severity: 'error',
      from: { path: '^(electron|renderer/src)/' },
      to: { path: '^test/' },
    },
    {
      name: 'cli-and-web-are-separate-entry-points',
      comment: 'dermws commands start the web mode through electron/web; the web mode never needs the CLI.',
      severity: 'error',
      from: { path: '^electron/web/' },
      to: { path: '^electron/cli/' },
    },
    {
      name: 'renderer-reaches-electron-only-through-common',
      comment: 'The window talks to the rest only through the contract in electron/common.',
      severity: 'error',
      from: { path: '^renderer/src/' },
      to: { path: '^electron/', pathNot: '^electron/common/' },
    },
    {
      name: 'renderer-no-node-or-native-packages',
      comment: 'The window has no Node: no built-ins, no native packages, no Electron.',
      severity: 'error',
      from: { path: '^renderer/src/' },
      to: { path: [nodeModule('(electron|better-sqlite3|onnxruntime-node|sharp|hnswlib-node)'), mainProcessPackages] },
    },
    {
      name: 'renderer-no-node-builtins',
      severity: 'error',
      from: { path: '^renderer/src/' },
      to: { dependencyTypes: ['core'] },
    },
    {
      name: 'domain-never-imports-app-api',
      comment: 'app-api (transport, handlers) sits above the domain folders: it calls them, never the reverse.',
      severity: 'error',
      from: { path: '^electron/core/[^/]+/', pathNot: '^electron/core/app-api/' },
      to: { path: '^electron/core/app-api/' },
    },
    {
      name: 'no-circular-modules',
      comment: 'A cycle of modules makes load order matter and hides which one is the lower layer.',
      severity: 'error',
      from: { path: '^(electron|renderer/src|native-models)/' },
      to: { circular: true },
    },
    {
      name: 'no-circular-folders',
      comment: 'Folders form layers: when a imports b and b imports a, neither can be understood or tested alone.',
      severity: 'error',
      scope: 'folder',
      from: { path: '^(electron|renderer/src|native-models)(/|$)' },
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(^|/)(dist|dist-renderer|release|native-models/generated)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      extensions: ['.ts', '.js', '.mjs', '.cjs', '.svelte', '.json'],
    },
  },
};
