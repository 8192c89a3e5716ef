import { isLanesError } from '../errors.js';

/**
 * Puts the code of a LanesError in front of its message where Playwright shows errors:
 * `LanesError: [POSTGRES_UNREACHABLE] Could not connect…` (see LanesError.showCode). Other values
 * are returned as they are.
 */
export function showCode<T>(error: T): T {
  if (isLanesError(error)) error.showCode();
  return error;
}
