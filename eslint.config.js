// ESLint: the recommended rules of ESLint, typescript-eslint and eslint-plugin-svelte, plus a few
// type-aware rules where a mistake is silent at run time (an un-awaited promise). Layer rules
// (which folder may import which) are dependency-cruiser's job: see .dependency-cruiser.cjs.
import js from '@eslint/js';
import svelte from 'eslint-plugin-svelte';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: ['dist/**', 'dist-renderer/**', 'release/**', 'node_modules/**', 'native-models/generated/**', 'test-artifacts/**', '.bench-data/**', '.tmp/**'],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  ...svelte.configs.recommended,
  {
    languageOptions: { ecmaVersion: 2023, sourceType: 'module', globals: { ...globals.node } },
  },
  {
    rules: {
      // The compiler's noUnusedParameters already lets a leading underscore mark a name kept on purpose.
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_', ignoreRestSiblings: true },
      ],
    },
  },
  {
    // Svelte files use eslint-plugin-svelte's own prefer-const (props and runes are declared with let).
    files: ['**/*.{ts,js,mjs,cjs}'],
    ignores: ['**/*.svelte.ts'],
    rules: {
      // A `let` that a callback reads before its one assignment cannot be a const (the callback would
      // meet it in its temporal dead zone).
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
    },
  },
  {
    files: ['renderer/src/**/*.{ts,svelte}', 'renderer/src/**/*.svelte.ts'],
    languageOptions: { globals: { ...globals.browser } },
    rules: {
      // Rune state here holds Sets and Maps that are replaced whole ($state.raw with a new Set), or
      // plain caches that must not be reactive; SvelteSet/SvelteMap would track every mutation instead.
      'svelte/prefer-svelte-reactivity': 'off',
      // A mustache keeps an escape (a placeholder's \n) that a bare attribute string cannot hold.
      'svelte/no-useless-mustaches': ['error', { ignoreStringEscape: true }],
    },
  },
  {
    // Type-aware, and only these: an un-awaited promise loses its error silently, which the
    // compiler does not catch. The full type-checked presets would double lint time on two cores.
    files: ['electron/**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: { '@typescript-eslint/no-floating-promises': 'error', '@typescript-eslint/no-misused-promises': 'error' },
  },
  {
    files: ['**/*.svelte', '**/*.svelte.ts'],
    languageOptions: { parserOptions: { parser: tseslint.parser, extraFileExtensions: ['.svelte'] } },
  },
);
