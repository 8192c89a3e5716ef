import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadExeca } from '../../lazy-execa.js';
import { SEED_TIMEOUT_ENV } from '../../env-vars.js';
import { LanesError } from '../../errors.js';
import { debugLogger } from '../../log.js';
import { pointEnvAt } from '../../postgres/app-env.js';
import { passwordOf, redactText } from '../../redact.js';
import { describeTarget } from '../../postgres/index.js';
import { displayPath, runDatabaseCommand } from './command.js';
import { formatSeconds, reportProgress } from './deadline.js';
import type { CommandStep } from '../types.js';
import { DEFAULT_SEED_TIMEOUT_MS } from './template-options.js';
import type { SeedChildReport } from './seed-child.js';

const debug = debugLogger('seed');

/** Lines of a failed seed's output quoted in its error. */
const OUTPUT_LINES = 30;

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
 * it, or runs `{ command }` with `DATABASE_URL` set. A module runs in a Node process of its own
 * (its failures cannot reach the caller's process), which exits once the default export resolves,
 * whatever it left open. A seed still running after `timeoutMs` is killed.
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
  await runSeedModule(step, databaseUrl, timeoutMs, label);
}

/**
 * Runs the seed module at `path` in a process of its own (see seed-child.ts), killed at the
 * deadline: a seed can neither take the runner down (an `'error'` event nobody listens to, a late
 * rejection) nor keep it waiting.
 */
async function runSeedModule(path: string, databaseUrl: string, timeoutMs: number, label: string): Promise<void> {
  const execa = await loadExeca();
  const password = passwordOf(databaseUrl);
  const redact = (text: string): string => redactText(text, password ? [password] : []);
  // A seed module may create its client when imported, from DATABASE_URL or PG*: they name the database being built.
  const env: NodeJS.ProcessEnv = { ...process.env };
  pointEnvAt(databaseUrl, env);
  const { file, args } = seedProcess(path);
  const stop = reportProgress(label);
  const started = performance.now();
  const subprocess = execa(file, args, {
    cwd: process.cwd(),
    env,
    extendEnv: false,
    stdin: 'ignore',
    all: true,
    ipc: true,
    serialization: 'json',
    reject: false,
    timeout: timeoutMs,
    killSignal: 'SIGKILL',
  });
  const pid = subprocess.pid ?? '?';
  const result = await subprocess.finally(stop);
  debug('seed %s ran in pid %s for %d ms', path, pid, Math.round(performance.now() - started));
  if (debug.enabled) debug('output of seed %s:\n%s', path, redact(String(result.all ?? '')));
  const output = redact(lastLines(String(result.all ?? ''), OUTPUT_LINES));
  const shownOutput = output.trim() === '' ? ' It printed nothing.' : ` Its last output:\n${output}`;
  const report = result.ipcOutput.at(-1) as SeedChildReport | undefined;
  if (result.timedOut) {
    throw new LanesError('SEED_TIMEOUT', `Seed ${displayPath(path)} had not resolved after ${formatSeconds(timeoutMs)} on ${describeTarget(databaseUrl)}; its process (pid ${pid}) was killed.${shownOutput}`, {
      hint: `If it is merely slow, raise option \`seedTimeoutMs\` (or ${SEED_TIMEOUT_ENV}); if it hangs, check that its default export awaits every query and closes its connections (a Prisma client needs \`$disconnect()\`).`,
      details: { step: 'seed', module: path, timeoutMs },
    });
  }
  if (report?.outcome === 'done') return;
  if (report?.outcome === 'unloadable') {
    throw new LanesError('SEED_FAILED', `Seed module ${displayPath(path)} could not be loaded: ${redact(report.message)}`, {
      hint: 'Check option `seed` (a path relative to the current folder) and the imports of that module; .ts, .mts, .cts, .js, .mjs and .cjs seeds load in ES module and CommonJS packages alike.',
      cause: childError(report, redact),
      details: { module: path },
    });
  }
  if (report?.outcome === 'not-a-function') {
    throw new LanesError('SEED_FAILED', `Seed module ${displayPath(path)} has no default export function (its default export is ${report.type === 'undefined' ? 'missing' : `a ${report.type}`}).`, {
      hint: 'Write `export default async function seed({ databaseUrl }) { … }` (or `module.exports = async ({ databaseUrl }) => { … }`), or use { command } for a script.',
      details: { module: path },
    });
  }
  const hint = `Fix ${displayPath(path)}; it runs once per template against a freshly migrated database, in a process of its own.`;
  if (report?.outcome === 'failed') {
    throw new LanesError('SEED_FAILED', `Seed ${displayPath(path)} failed on ${describeTarget(databaseUrl)}: ${redact(report.message)}`, {
      hint,
      cause: childError(report, redact),
      details: { module: path },
    });
  }
  // No report: the process died before the seed resolved (an uncaught error, process.exit, a signal).
  const how = result.signal ? `was killed by ${result.signal}` : `exited with code ${result.exitCode ?? '?'}`;
  throw new LanesError('SEED_FAILED', `Seed ${displayPath(path)} failed on ${describeTarget(databaseUrl)}: its process (pid ${pid}) ${how} before its default export resolved.${shownOutput}`, {
    hint: `${hint} An uncaught error there (an \`'error'\` event of a client without a listener, an unhandled rejection) ends the seed's process.`,
    details: { module: path, exitCode: result.exitCode, signal: result.signal },
  });
}

/** The command that runs seed-child: its compiled form, or its source through tsx when this module runs from source. */
function seedProcess(path: string): { file: string; args: string[] } {
  const here = fileURLToPath(import.meta.url);
  const fromSource = here.endsWith('.ts');
  const script = join(dirname(here), fromSource ? 'seed-child.ts' : 'seed-child.js');
  const loader = fromSource ? ['--import', import.meta.resolve('tsx')] : [];
  return { file: process.execPath, args: [...loader, script, resolve(path)] };
}

/** The error a seed's process reported, as the cause of the LanesError (message and stack redacted). */
function childError(report: { message: string; stack?: string }, redact: (text: string) => string): Error {
  const error = new Error(redact(report.message));
  if (report.stack) error.stack = redact(report.stack);
  return error;
}

function lastLines(text: string, count: number): string {
  return text.replace(/\s+$/, '').split(/\r?\n/).slice(-count).join('\n');
}
