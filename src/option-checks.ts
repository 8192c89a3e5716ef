import { LanesError } from './errors.js';

/**
 * `value` when it is a positive finite number, else `INVALID_OPTION` naming the option, the value
 * and what it takes. The one check of every positive option (timeouts, counts).
 */
export function positiveOption(option: string, value: number, takes = 'a positive number', label = option): number {
  if (!Number.isFinite(value) || value <= 0) {
    throw new LanesError('INVALID_OPTION', `Invalid ${label} ${JSON.stringify(value)}.`, { hint: `Option \`${option}\` takes ${takes}.` });
  }
  return value;
}
