/**
 * playwright.config.ts with `eager: true`: every selected project's lane boots in global setup, all
 * at once, instead of when the project's first worker asks. Informational variant of part 4.
 * It reaches the options withLanes recorded through the toolkit's registry (globalThis).
 */
import { join } from 'node:path';
import config from '../../playwright.config.ts';
import { ROOT } from './context.ts';

const registry = (globalThis as Record<symbol, { options?: { eager?: boolean } } | undefined>)[Symbol.for('e2e-lanes.playwright.registry')];
if (registry?.options) registry.options = { ...registry.options, eager: true };

// Paths in a config are relative to the config file: keep the repo config's.
export default { ...config, testDir: join(ROOT, 'e2e') };
