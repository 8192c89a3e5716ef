import { isLanesError } from '../errors.js';

/**
 * Puts the code of a LanesError in front of its message (and the stack's first line), where
 * Playwright shows errors: `LanesError: [POSTGRES_UNREACHABLE] Could not connect…`. Other values
 * are returned as they are.
 */
export function showCode<T>(error: T): T {
  if (!isLanesError(error) || error.message.startsWith(`[${error.code}] `)) return error;
  const header = `${error.name}: ${error.message}`;
  error.message = `[${error.code}] ${error.message}`;
  if (error.stack?.startsWith(header)) error.stack = `${error.name}: ${error.message}${error.stack.slice(header.length)}`;
  return error;
}
