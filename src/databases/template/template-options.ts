/**
 * The options of the template: migrations, seed, the extra inputs of its hash, and the deadlines of
 * migrating, seeding and waiting for another builder. Their defaults and checks, called from the
 * one resolver (options.ts); loads no PostgreSQL client.
 */
import { resolve } from 'node:path';
import { LanesError } from '../../errors.js';
import { positiveOption } from '../../option-checks.js';
import type { CommandStep } from '../types.js';

export const DEFAULT_MIGRATIONS_DIR = 'prisma/migrations';
export const DEFAULT_SEED_TIMEOUT_MS = 600_000;
export const DEFAULT_MIGRATION_TIMEOUT_MS = 600_000;
export const DEFAULT_TEMPLATE_WAIT_TIMEOUT_MS = 1_800_000;

export function resolveMigrations(value: string | CommandStep | false | undefined): string | CommandStep | false {
  if (value === false) return false;
  return resolveStep('migrations', value ?? DEFAULT_MIGRATIONS_DIR);
}

/** A path becomes absolute; a command is checked. */
export function resolveStep(option: 'migrations' | 'seed', value: unknown): string | CommandStep {
  if (typeof value === 'string' && value.trim() !== '') return resolve(value);
  if (typeof value === 'object' && value !== null && typeof (value as CommandStep).command === 'string') {
    const step = value as CommandStep;
    if (step.command.trim() === '') throw invalid(option, value);
    const resolved: CommandStep = { command: step.command, cwd: resolve(step.cwd ?? '.') };
    if (step.timeoutMs !== undefined) resolved.timeoutMs = positiveOption(`${option}.timeoutMs`, step.timeoutMs);
    return resolved;
  }
  throw invalid(option, value);
}

function invalid(option: 'migrations' | 'seed', value: unknown): LanesError {
  const forms =
    option === 'migrations'
      ? "a folder ('prisma/migrations'), { command: 'npx prisma migrate deploy' } or false"
      : "a module path ('prisma/seed.ts') or { command: 'npm run seed' }";
  return new LanesError('INVALID_OPTION', `Invalid ${option} option ${JSON.stringify(value)}.`, { hint: `Option \`${option}\` takes ${forms}.` });
}

export function resolveHashInputs(value: unknown): readonly string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || !value.every((item) => typeof item === 'string' && item !== '')) {
    throw new LanesError('INVALID_OPTION', `Invalid hashInputs ${JSON.stringify(value)}.`, { hint: 'Option `hashInputs` takes a list of file or folder paths.' });
  }
  return value.map((item: string) => resolve(item));
}
