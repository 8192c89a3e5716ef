/**
 * The options of fresh data: the reset strategy, the grace a swap gives the queries in flight,
 * the ready copies kept, how long a truncate reset waits for a table's lock. Their defaults and
 * checks, called from the one resolver (options.ts); loads no PostgreSQL client.
 */
import { LanesError } from '../../errors.js';
import { RESET_STRATEGIES, type ResetStrategy } from '../types.js';

/**
 * How long a `swap` waits for the queries in flight on a lane database (`database.resetGraceMs`).
 */
export const DEFAULT_RESET_GRACE_MS = 2_000;

/** How long a `truncate` reset waits for a table's lock, in ms (`database.resetLockTimeoutMs`). */
export const DEFAULT_RESET_LOCK_TIMEOUT_MS = 10_000;

/** The lock timeout of one `truncate` reset: a whole number of ms that PostgreSQL's `lock_timeout` takes. */
export function checkResetLockTimeout(value: unknown): number {
  if (value === undefined) return DEFAULT_RESET_LOCK_TIMEOUT_MS;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 2_147_483_647) {
    throw new LanesError('INVALID_OPTION', `Invalid lockTimeoutMs ${JSON.stringify(value)} for the 'truncate' reset of a lane database.`, {
      hint: 'Option `lockTimeoutMs` takes a whole number of milliseconds from 1 to 2147483647 (default 10000).',
    });
  }
  return value;
}

export function resolveResetStrategy(value: unknown): ResetStrategy {
  if (value === undefined) return 'swap';
  if ((RESET_STRATEGIES as readonly unknown[]).includes(value)) return value as ResetStrategy;
  throw new LanesError('INVALID_OPTION', `Invalid database reset ${JSON.stringify(value)}.`, { hint: "Option `database.reset` takes 'swap' or 'truncate'." });
}

export function resolveResetGrace(value: unknown): number {
  if (value === undefined) return DEFAULT_RESET_GRACE_MS;
  if (typeof value === 'number' && Number.isFinite(value) && value >= 0 && value <= 60_000) return value;
  throw new LanesError('INVALID_OPTION', `Invalid database resetGraceMs ${JSON.stringify(value)}.`, {
    hint: 'Option `database.resetGraceMs` takes a number of milliseconds from 0 (end every session at once) to 60000; the default is 2000.',
  });
}

export function resolvePool(value: unknown): number {
  if (Number.isInteger(value) && (value as number) >= 0 && (value as number) <= 64) return value as number;
  throw new LanesError('INVALID_OPTION', `Invalid database pool ${JSON.stringify(value)}.`, { hint: 'Option `database.pool` takes a whole number of ready copies from 0 to 64.' });
}
