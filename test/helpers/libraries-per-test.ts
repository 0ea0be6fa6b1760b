import { afterEach } from 'vitest';
import { createTestLibrary } from '../fixtures/library-fixture.js';

/**
 * Fresh temporary libraries for the tests of one file: each is closed and its folder removed after the
 * test that made it, whether the test passed or not. Call once at the top of the file.
 */
export function librariesPerTest(prefix: string): {
  library: () => ReturnType<typeof createTestLibrary>;
  /** Something else the current test made that must go with it (a scratch folder). */
  afterThisTest: (cleanup: () => void) => void;
} {
  const cleanups: Array<() => void> = [];
  afterEach(() => {
    for (const cleanup of cleanups.splice(0)) cleanup();
  });
  return {
    library: () => {
      const made = createTestLibrary(prefix);
      cleanups.push(made.cleanup);
      return made;
    },
    afterThisTest: (cleanup) => cleanups.push(cleanup),
  };
}
