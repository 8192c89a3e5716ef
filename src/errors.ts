/**
 * Every failure the toolkit reports on purpose is a `LanesError` with a stable `code`
 * and a `hint` that says how to fix it. The table of codes lives in docs/troubleshooting.md.
 */
export type LanesErrorCode =
  | 'INVALID_OPTION'
  | 'INVALID_PROJECT_NAME'
  | 'PORT_RANGE_EXHAUSTED'
  | 'STATE_LOCK_TIMEOUT'
  | 'STATE_UNWRITABLE'
  | 'STATE_NOT_A_FILE'
  | 'POSTGRES_UNREACHABLE'
  | 'POSTGRES_UNSUPPORTED'
  | 'EMBEDDED_POSTGRES_UNAVAILABLE'
  | 'EMBEDDED_POSTGRES_FAILED'
  | 'MIGRATION_FAILED'
  | 'SEED_FAILED'
  | 'TEMPLATE_BUILD_FAILED'
  | 'DATABASE_CREATE_FAILED'
  | 'DATABASE_DROP_FAILED'
  | 'REGISTRY_FAILED'
  | 'RUN_ID_CONFLICT'
  | 'SERVER_START_TIMEOUT'
  | 'SERVER_EXITED'
  | 'SERVER_PORT_IN_USE'
  | 'BROWSER_NOT_FOUND'
  | 'CONFIG_INVALID'
  | 'LANE_NOT_FOUND'
  | 'INTERRUPTED'
  | 'LANE_NOT_READY'
  | 'DATABASE_URL_CHANGED'
  | 'EMBEDDED_POSTGRES_DIED'
  | 'DATABASE_RESET_FAILED';

export interface LanesErrorOptions {
  /** How to fix it, in one or two sentences. */
  hint?: string;
  /** The underlying error, kept for debugging. */
  cause?: unknown;
  /** Extra structured facts (never secrets). */
  details?: Record<string, unknown>;
}

export class LanesError extends Error {
  override readonly name = 'LanesError';
  readonly code: LanesErrorCode;
  readonly hint: string | undefined;
  readonly details: Record<string, unknown>;

  constructor(code: LanesErrorCode, message: string, options: LanesErrorOptions = {}) {
    super(options.hint ? `${message}\nHint: ${options.hint}` : message, { cause: options.cause });
    this.code = code;
    this.hint = options.hint;
    this.details = options.details ?? {};
  }
}

/** True when `error` is a {@link LanesError}, optionally with the given code. */
export function isLanesError(error: unknown, code?: LanesErrorCode): error is LanesError {
  return error instanceof LanesError && (code === undefined || error.code === code);
}

/** The message of any thrown value, for wrapping into a LanesError. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
