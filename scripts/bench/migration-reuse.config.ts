/**
 * examples/vite-prisma/playwright.config.ts with option `reuse` on, for the "lanes with `reuse`"
 * mode of part 7 (migration.ts): a run keeps its lanes warm and the next run of this config takes
 * them over. `force`: warm lanes are kept even where a CI variable is set. `idleMs`: lanes the bench
 * failed to stop would not outlive it by long. It reaches the options withLanes recorded through the
 * toolkit's registry (globalThis), as variant.config.ts does.
 */
import { join } from 'node:path';
import config from '../../examples/vite-prisma/playwright.config.ts';
import { ROOT } from './context.ts';

const registry = (globalThis as Record<symbol, { options?: object } | undefined>)[Symbol.for('e2e-lanes.playwright.registry')];
if (!registry?.options) throw new Error('e2e-lanes options not found in the registry: examples/vite-prisma/playwright.config.ts must call withLanes.');
registry.options = { ...registry.options, reuse: { force: true, idleMs: 120_000 } };

// Paths in a config are relative to the config file: keep the example's.
export default { ...config, testDir: join(ROOT, 'examples/vite-prisma/e2e') };
