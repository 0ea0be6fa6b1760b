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
      to: { path: '^electron/(core|cli|main|preload)/' },
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
      to: { path: '^electron/(cli|main|preload)/' },
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
      // The one known exception: core/models converts the bundled encoder with code that still lives in
      // native-models/, which reads core/models' manifest schema. Moving that runtime code into
      // electron/core (issue 14, item 1) removes the cycle and this pathNot with it; module-level cycles
      // in these folders are still checked by no-circular-modules.
      from: { path: '^(electron|renderer/src|native-models)(/|$)', pathNot: '^(electron/core/models|native-models|native-models/nsfwjs-mobilenet-v2)$' },
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
