/** Option `reuse` (warm lanes between local runs): its settings, defaults and resolution. */
import ci from 'ci-info';
import { LanesError } from '../../errors.js';

/** Options of `reuse`: how long warm lanes wait for the next run, and whether to keep them warm on CI. */
export interface ReuseOptions {
  /**
   * Warm lanes unused for this long are stopped (servers, databases, ports), even when no run
   * comes after: a small detached watchdog process does it.
   * @default 900_000 (15 minutes)
   */
  idleMs?: number;
  /**
   * Keep lanes warm on CI too (where `reuse` is otherwise ignored).
   * @default false
   */
  force?: boolean;
}

export const DEFAULT_IDLE_MS = 15 * 60_000;

/** `reuse` as resolved for this process: on or off, and why it is off when it was asked for. */
export interface ResolvedReuse {
  enabled: boolean;
  idleMs: number;
  /** Set when `reuse` was asked for but is off (on CI without `force`). */
  ignored?: string;
}

/** Resolves option `reuse` (validating it). */
export function resolveReuse(options: { reuse?: boolean | ReuseOptions | undefined }, isCI: boolean = ci.isCI): ResolvedReuse {
  const reuse = options.reuse;
  if (reuse === undefined || reuse === false) return { enabled: false, idleMs: DEFAULT_IDLE_MS };
  if (reuse !== true && (typeof reuse !== 'object' || reuse === null || Array.isArray(reuse))) {
    throw new LanesError('INVALID_OPTION', `Invalid reuse ${JSON.stringify(reuse)}.`, { hint: 'Use true, false, or { idleMs, force } (e.g. `reuse: !process.env.CI`).' });
  }
  const settings = reuse === true ? {} : reuse;
  const idleMs = settings.idleMs ?? DEFAULT_IDLE_MS;
  if (!(Number.isInteger(idleMs) && idleMs >= 1_000 && idleMs <= 7 * 24 * 3_600_000)) {
    throw new LanesError('INVALID_OPTION', `Invalid reuse.idleMs ${JSON.stringify(settings.idleMs)}.`, { hint: 'Use a whole number of milliseconds from 1000 to one week (the default is 900000, 15 minutes).' });
  }
  if (settings.force !== undefined && typeof settings.force !== 'boolean') {
    throw new LanesError('INVALID_OPTION', `Invalid reuse.force ${JSON.stringify(settings.force)}.`, { hint: 'Use true or false.' });
  }
  if (isCI && settings.force !== true) {
    return { enabled: false, idleMs, ignored: 'reuse is ignored on CI: lanes are torn down after the run (set `reuse: { force: true }` to keep them warm there too)' };
  }
  return { enabled: true, idleMs };
}
