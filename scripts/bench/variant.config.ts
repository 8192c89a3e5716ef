/**
 * playwright.config.ts with one option changed, for the informational variants of part 4
 * (`BENCH_LANES_VARIANT`): `eager` boots every selected project's lane in global setup, all at
 * once; `lazy` (`prefetch: 0`) boots each lane only when its project's first worker asks.
 * It reaches the options withLanes recorded through the toolkit's registry (globalThis).
 */
import { join } from 'node:path';
import config from '../../playwright.config.ts';
import { ROOT } from './context.ts';

const VARIANTS = { eager: { eager: true }, lazy: { prefetch: 0 } } as const;
const variant = VARIANTS[process.env.BENCH_LANES_VARIANT as keyof typeof VARIANTS];
if (!variant) throw new Error(`BENCH_LANES_VARIANT must be one of ${Object.keys(VARIANTS).join(', ')}: this config is run by \`npm run bench -- --only suite\`.`);

const registry = (globalThis as Record<symbol, { options?: object } | undefined>)[Symbol.for('e2e-lanes.playwright.registry')];
if (registry?.options) registry.options = { ...registry.options, ...variant };

// Paths in a config are relative to the config file: keep the repo config's.
export default { ...config, testDir: join(ROOT, 'e2e') };
