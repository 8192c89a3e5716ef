import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';
import { withDatabases, type ResetMode } from 'e2e-lanes/vitest';

const here = (path: string): string => fileURLToPath(new URL(path, import.meta.url));

export default withDatabases(
  defineConfig({
    root: here('.'),
    test: {
      include: ['test/**/*.test.ts'],
      maxWorkers: 3,
    },
  }),
  {
    database: {
      migrations: here('prisma/migrations'),
      seed: here('prisma/seed.ts'),
      hashInputs: [here('prisma/seed-data.ts')],
      // EXAMPLE_STRATEGY=swap runs the suite with the other reset strategy (the default here is 'truncate').
      ...(process.env['EXAMPLE_STRATEGY'] === 'swap' ? { reset: 'swap' as const } : {}),
    },
    // EXAMPLE_RESET=never shows what the suite does without resets: it fails.
    reset: (process.env['EXAMPLE_RESET'] as ResetMode | undefined) ?? 'test',
  },
);
