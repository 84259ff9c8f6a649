import { defineConfig } from 'vitest/config';

// Tests run against the TypeScript sources through the `koan-source` export condition,
// so `npm test` needs no build step and every package sees the others' current code.
export default defineConfig({
  resolve: { conditions: ['koan-source'] },
  ssr: { resolve: { conditions: ['koan-source'], externalConditions: ['koan-source'] } },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    fileParallelism: true,
    maxWorkers: 2,
  },
});
