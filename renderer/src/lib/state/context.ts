import { getContext, setContext } from 'svelte';
import type { AppState } from './app.svelte.js';
import type { JobsState } from './jobs.svelte.js';

export interface AppContext {
  app: AppState;
  jobs: JobsState;
}

const key = Symbol('derm-app');

export function provideAppContext(context: AppContext): void {
  setContext(key, context);
}

export function useAppContext(): AppContext {
  return getContext<AppContext>(key);
}
