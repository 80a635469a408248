import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 30_000,
    // Real-process tests spawn many workers; running files in parallel on 2 cores only adds noise.
    fileParallelism: false,
  },
});
