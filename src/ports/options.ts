import { PORT_RANGE_ENV } from '../env-vars.js';
import { LanesError } from '../errors.js';
import { resolveLeaseMs, resolveRunId, resolveStateDir, type RunScopeOptions } from '../state/index.js';

export interface PortAllocatorOptions extends RunScopeOptions {
  /**
   * Inclusive range of ports handed out. Also settable with `E2E_LANES_PORT_RANGE=3100-5500`.
   * @default [3100, 5500]
   */
  range?: readonly [number, number];
  /**
   * The named ports every project gets.
   * @default ['backend', 'frontend']
   */
  names?: readonly string[];
}

export interface ResolvedPortAllocatorOptions {
  range: readonly [number, number];
  names: readonly string[];
  stateDir: string;
  runId: string;
  leaseMs: number;
}

export const DEFAULT_PORT_RANGE: readonly [number, number] = [3100, 5500];
export const DEFAULT_PORT_NAMES: readonly string[] = ['backend', 'frontend'];

/** Resolves every option to its final value, in one place, rejecting bad values at the call. */
export function resolvePortAllocatorOptions(options: PortAllocatorOptions = {}): ResolvedPortAllocatorOptions {
  return {
    range: validateRange(options.range ?? rangeFromEnv() ?? DEFAULT_PORT_RANGE),
    names: validateNames(options.names ?? DEFAULT_PORT_NAMES),
    stateDir: resolveStateDir(options.stateDir),
    runId: resolveRunId(options.runId),
    leaseMs: resolveLeaseMs(options.leaseMs),
  };
}

function rangeFromEnv(): [number, number] | undefined {
  const raw = process.env[PORT_RANGE_ENV];
  if (!raw) return undefined;
  const match = /^\s*(\d+)\s*-\s*(\d+)\s*$/.exec(raw);
  if (!match) {
    throw new LanesError('INVALID_OPTION', `Invalid ${PORT_RANGE_ENV}=${JSON.stringify(raw)}.`, {
      hint: `Use the form FIRST-LAST, e.g. ${PORT_RANGE_ENV}=3100-5500.`,
    });
  }
  return [Number(match[1]), Number(match[2])];
}

export function validateRange(range: unknown): readonly [number, number] {
  const ok =
    Array.isArray(range) &&
    range.length === 2 &&
    range.every((port) => Number.isInteger(port) && port >= 1024 && port <= 65535) &&
    range[0] <= range[1];
  if (!ok) {
    throw new LanesError('INVALID_OPTION', `Invalid port range ${JSON.stringify(range)}.`, {
      hint: 'Option `range` takes [first, last]: whole numbers with 1024 ≤ first ≤ last ≤ 65535, e.g. [3100, 5500].',
    });
  }
  return [range[0], range[1]] as const;
}

export function validateNames(names: unknown): readonly string[] {
  const ok =
    Array.isArray(names) &&
    names.length > 0 &&
    names.every((name) => typeof name === 'string' && /^[A-Za-z][A-Za-z0-9_-]{0,31}$/.test(name)) &&
    new Set(names).size === names.length;
  if (!ok) {
    throw new LanesError('INVALID_OPTION', `Invalid port names ${JSON.stringify(names)}.`, {
      hint: "Option `names` takes a non-empty list of distinct names of letters, digits, '_' or '-', starting with a letter, e.g. ['backend', 'frontend'].",
    });
  }
  return [...names];
}

