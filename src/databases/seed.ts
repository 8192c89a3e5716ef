import { SEED_TIMEOUT_ENV } from '../env-vars.js';
import { isLanesError, LanesError, messageOf } from '../errors.js';
import { withEnvPointedAt } from '../postgres/app-env.js';
import { passwordOf, redactText } from '../redact.js';
import { describeTarget } from '../postgres/index.js';
import { importDefault } from '../user-module.js';
import { displayPath, runDatabaseCommand } from './command.js';
import { formatSeconds, withinDeadline } from './deadline.js';
import { DEFAULT_SEED_TIMEOUT_MS, type CommandStep } from './options.js';

/** What a seed module's default export receives. */
export interface SeedContext {
  /** The database being built (the template under construction): connect, insert, disconnect. */
  databaseUrl: string;
}

/** The default export of a seed module. */
export type SeedFunction = (context: SeedContext) => unknown;

/** Options of {@link runSeed}. */
export interface RunSeedOptions {
  /**
   * Deadline of the seed module's default export, or of the command when it sets no `timeoutMs`.
   * @default 600_000
   */
  timeoutMs?: number;
  /**
   * What progress lines (every 10 s while the seed runs) say it does.
   * @default 'seeding <database>'
   */
  label?: string;
}

/**
 * Puts the baseline data into `databaseUrl`: calls the default export of the module at `step`
 * (TS or JS, in an ES module or CommonJS package) with `{ databaseUrl }` and `DATABASE_URL` pointing at
 * it, or runs `{ command }` with `DATABASE_URL` set. The module must close its connections before
 * it resolves. A seed still running after `timeoutMs` is given up on (a module's connections are
 * left to the caller to end).
 * @throws {LanesError} `SEED_FAILED` with the cause; `SEED_TIMEOUT` past the deadline.
 */
export async function runSeed(step: string | CommandStep, databaseUrl: string, options: RunSeedOptions = {}): Promise<void> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_SEED_TIMEOUT_MS;
  const label = options.label ?? `seeding ${describeTarget(databaseUrl)}`;
  if (typeof step !== 'string') {
    const outcome = await runDatabaseCommand(step, databaseUrl, { defaultTimeoutMs: timeoutMs, label });
    if (outcome.timedOut) {
      const limit = step.timeoutMs ?? timeoutMs;
      throw new LanesError('SEED_TIMEOUT', `Seed command \`${step.command}\` was still running after ${formatSeconds(limit)} on ${describeTarget(databaseUrl)} and was killed. Last output:\n${outcome.tail}`, {
        hint: `If it is merely slow, raise ${step.timeoutMs !== undefined ? 'option `seed.timeoutMs`' : `option \`seedTimeoutMs\` (or ${SEED_TIMEOUT_ENV})`}; if it hangs, look for a prompt or a lock it waits on.`,
        details: { step: 'seed', command: step.command, timeoutMs: limit },
      });
    }
    if (!outcome.ok) {
      throw new LanesError('SEED_FAILED', `Seed command \`${step.command}\` failed (${outcome.reason}) on ${describeTarget(databaseUrl)}. Last output:\n${outcome.tail}`, {
        hint: 'Run the command yourself with DATABASE_URL pointing at a migrated database to see the whole output; fix it or option `seed.command`.',
        details: { command: step.command, reason: outcome.reason },
      });
    }
    return;
  }
  try {
    // A seed module may create its client when imported, from DATABASE_URL: it gets the template's.
    const outcome = await withEnvPointedAt(databaseUrl, async () => {
      const seed = await loadSeed(step);
      return withinDeadline(Promise.resolve().then(() => seed({ databaseUrl })), timeoutMs, label);
    });
    if (!outcome.done) {
      throw new LanesError('SEED_TIMEOUT', `Seed ${displayPath(step)} had not resolved after ${formatSeconds(timeoutMs)} on ${describeTarget(databaseUrl)}; it was given up on.`, {
        hint: `If it is merely slow, raise option \`seedTimeoutMs\` (or ${SEED_TIMEOUT_ENV}); if it hangs, check that its default export awaits every query and closes its connections (a Prisma client needs \`$disconnect()\`).`,
        details: { step: 'seed', module: step, timeoutMs },
      });
    }
  } catch (error) {
    if (error instanceof LanesError) throw error;
    const password = passwordOf(databaseUrl);
    throw new LanesError('SEED_FAILED', `Seed ${displayPath(step)} failed on ${describeTarget(databaseUrl)}: ${redactText(messageOf(error), password ? [password] : [])}`, {
      hint: `Fix ${displayPath(step)}; it runs once per template against a freshly migrated database.`,
      cause: error,
      details: { module: step },
    });
  }
}

/** The seed function of the module at `path`: TS or JS, in an ES module or CommonJS package. */
async function loadSeed(path: string): Promise<SeedFunction> {
  let seed: unknown;
  try {
    seed = await importDefault(path);
  } catch (error) {
    throw new LanesError('SEED_FAILED', `Seed module ${displayPath(path)} could not be loaded: ${messageOf(error)}`, {
      hint: 'Check option `seed` (a path relative to the current folder) and the imports of that module; .ts, .mts, .cts, .js, .mjs and .cjs seeds load in ES module and CommonJS packages alike.',
      cause: error,
      details: { module: path },
    });
  }
  if (typeof seed !== 'function') {
    throw new LanesError('SEED_FAILED', `Seed module ${displayPath(path)} has no default export function.`, {
      hint: 'Write `export default async function seed({ databaseUrl }) { … }` (or `module.exports = async ({ databaseUrl }) => { … }`), or use { command } for a script.',
      details: { module: path },
    });
  }
  return seed as SeedFunction;
}

