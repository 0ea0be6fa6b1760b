import { defineConfig } from 'vitest/config';

// Medium tests open real SQLite files, ONNX sessions and sharp decoders; two cores are all CI has,
// so files run in forked processes (native add-ons are not shared across threads safely) and the
// timeouts allow for real work, never for asserting speed.
export default defineConfig({
  test: {
    include: ['test/unit/**/*.test.ts', 'test/medium/**/*.test.ts', 'test/e2e/**/*.test.ts'],
    globalSetup: ['test/build-renderer.global-setup.ts'],
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 300_000,
    reporters: ['default'],
  },
});
