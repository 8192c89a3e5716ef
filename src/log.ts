import createDebug from 'debug';
import { QUIET_ENV } from './env-vars.js';

/** A namespaced debug logger: enable with `DEBUG=e2e-lanes:*`. */
export function debugLogger(namespace: string): createDebug.Debugger {
  return createDebug(`e2e-lanes:${namespace}`);
}

/** One warning line on stderr, prefixed so users know where it came from. */
export function warn(message: string): void {
  console.warn(`[e2e-lanes] warning: ${message}`);
}

/** One progress line on stdout, unless `E2E_LANES_QUIET=1`. */
export function progress(message: string): void {
  if (process.env[QUIET_ENV] === '1') return;
  console.log(`[e2e-lanes] ${message}`);
}
