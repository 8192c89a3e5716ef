/**
 * The process a seed module runs in (see `runSeed`), so that nothing it does can take the runner
 * down: a client without an `'error'` listener, a promise that rejects after the seed resolved, a
 * seed that never resolves (the runner kills this process at the deadline).
 *
 * Run as `node seed-child.js <module path>` with an IPC channel and `DATABASE_URL` (and the other
 * variables of pointEnvAt) naming the database being built; it loads the module, calls its default
 * export with `{ databaseUrl }`, sends one {@link SeedChildReport} and exits without waiting for
 * what the seed left open. It exits as well when the runner goes away (the channel closes).
 * @internal
 */
import { importDefault } from '../../user-module.js';

/** What the seed's process reports to the runner before it exits. @internal */
export type SeedChildReport =
  | { outcome: 'done' }
  | { outcome: 'unloadable' | 'failed'; message: string; stack?: string }
  | { outcome: 'not-a-function'; type: string };

const path = process.argv[2];
// Read before the module is loaded: whatever it does to the environment, it seeds this database.
const databaseUrl = process.env.DATABASE_URL ?? '';

process.on('disconnect', () => process.exit(1));

function report(message: SeedChildReport): Promise<never> {
  return new Promise<never>(() => {
    if (!process.send) process.exit(2);
    process.send(message, undefined, {}, () => process.exit(message.outcome === 'done' ? 0 : 1));
  });
}

function errorReport(outcome: 'unloadable' | 'failed', error: unknown): SeedChildReport {
  if (error instanceof Error) return { outcome, message: error.message, ...(error.stack ? { stack: error.stack } : {}) };
  return { outcome, message: String(error) };
}

async function main(): Promise<void> {
  if (!path) return report({ outcome: 'unloadable', message: 'no seed module was given' });
  let seed: unknown;
  try {
    seed = await importDefault(path);
  } catch (error) {
    return report(errorReport('unloadable', error));
  }
  if (typeof seed !== 'function') return report({ outcome: 'not-a-function', type: seed === null ? 'null' : typeof seed });
  try {
    await seed({ databaseUrl });
  } catch (error) {
    return report(errorReport('failed', error));
  }
  return report({ outcome: 'done' });
}

await main();
