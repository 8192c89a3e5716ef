/**
 * Every failure the toolkit reports on purpose is a `LanesError` with a stable `code`
 * and a `hint` that says how to fix it. The table of codes lives in docs/troubleshooting.md.
 */
export const LANES_ERROR_CODES = [
  'INVALID_OPTION',
  'INVALID_PROJECT_NAME',
  'PORT_RANGE_EXHAUSTED',
  'STATE_LOCK_TIMEOUT',
  'STATE_UNWRITABLE',
  'STATE_NOT_A_FILE',
  'STATE_NOT_A_FOLDER',
  'POSTGRES_UNREACHABLE',
  'POSTGRES_UNSUPPORTED',
  'EMBEDDED_POSTGRES_UNAVAILABLE',
  'EMBEDDED_POSTGRES_FAILED',
  'MIGRATION_FAILED',
  'SEED_FAILED',
  'TEMPLATE_BUILD_FAILED',
  'DATABASE_CREATE_FAILED',
  'DATABASE_DROP_FAILED',
  'REGISTRY_FAILED',
  'LANE_ROLES_UNAVAILABLE',
  'RUN_ID_CONFLICT',
  'SERVER_START_TIMEOUT',
  'SERVER_EXITED',
  'SERVER_PORT_IN_USE',
  'BROWSER_NOT_FOUND',
  'CONFIG_INVALID',
  'LANE_NOT_FOUND',
  'INTERRUPTED',
  'LANE_NOT_READY',
  'DATABASE_URL_CHANGED',
  'EMBEDDED_POSTGRES_DIED',
  'DATABASE_RESET_FAILED',
  'LANE_REQUEST_INVALID',
  'SERVER_UNHEALTHY',
  'LANE_RESET_CONFLICT',
  'SEED_TIMEOUT',
  'MIGRATION_TIMEOUT',
  'TEMPLATE_WAIT_TIMEOUT',
  // Answers of the runner's lane service to a request it cannot serve.
  'UNAUTHORIZED',
  'NOT_FOUND',
  'INTERNAL',
] as const;

export type LanesErrorCode = (typeof LANES_ERROR_CODES)[number];

export interface LanesErrorOptions {
  /** How to fix it, in one or two sentences. */
  hint?: string;
  /** The underlying error, kept for debugging. */
  cause?: unknown;
  /** Extra structured facts (never secrets). */
  details?: Record<string, unknown>;
}

/** The parts the message of a {@link LanesError} is made of. */
export interface LanesErrorParts {
  code: LanesErrorCode;
  /** What happened, without the hint. */
  shortMessage: string;
  hint?: string | undefined;
}

/**
 * The one place a LanesError's text is composed: the short message, then `Hint: …` on a line of
 * its own; with `withCode`, the code in front, as Playwright and the CLI show it
 * (`[POSTGRES_UNREACHABLE] Could not connect…`).
 */
export function formatLanesMessage(parts: LanesErrorParts, options: { withCode?: boolean } = {}): string {
  const text = parts.hint ? `${parts.shortMessage}\nHint: ${parts.hint}` : parts.shortMessage;
  return options.withCode ? `[${parts.code}] ${text}` : text;
}

/**
 * A LanesError as JSON, as the runner's lane service sends it to a worker: its parts, not its
 * composed text (`message` is the short message). The cause stays in the process it happened in.
 */
export interface LanesErrorJSON {
  name: 'LanesError';
  code: LanesErrorCode;
  message: string;
  hint?: string;
  details?: Record<string, unknown>;
}

const KNOWN_CODES: ReadonlySet<string> = new Set(LANES_ERROR_CODES);

/**
 * The brand every LanesError carries. `Symbol.for` gives the same symbol to every copy of this
 * module, so a LanesError made by a copy loaded through another module loader (Playwright loads a
 * config through its own, a CommonJS app may require the package beside an ESM import) is still
 * recognised, where `instanceof` would not be.
 */
const LANES_ERROR_BRAND = Symbol.for('e2e-lanes.LanesError');

export class LanesError extends Error {
  override readonly name = 'LanesError';
  readonly code: LanesErrorCode;
  /** The message without the hint (and without the code). */
  readonly shortMessage: string;
  readonly hint: string | undefined;
  readonly details: Record<string, unknown>;
  #codeShown = false;
  /** @internal */
  readonly [LANES_ERROR_BRAND] = true;

  constructor(code: LanesErrorCode, message: string, options: LanesErrorOptions = {}) {
    super(formatLanesMessage({ code, shortMessage: message, hint: options.hint }), { cause: options.cause });
    this.code = code;
    this.shortMessage = message;
    this.hint = options.hint;
    this.details = options.details ?? {};
  }

  /**
   * From now on the message starts with the code (`[POSTGRES_UNREACHABLE] Could not connect…`),
   * for errors that Playwright shows: it prints the message, never the code. Returns the error.
   */
  showCode(): this {
    if (this.#codeShown) return this;
    // The stack's first lines are the message as it was when the stack was first read.
    const stack = this.stack;
    const header = `${this.name}: ${this.message}`;
    this.#codeShown = true;
    this.message = formatLanesMessage(this, { withCode: true });
    if (stack?.startsWith(header)) this.stack = `${this.name}: ${this.message}${stack.slice(header.length)}`;
    return this;
  }

  /** Its parts as JSON (see {@link LanesError.fromJSON}). */
  toJSON(): LanesErrorJSON {
    return {
      name: 'LanesError',
      code: this.code,
      message: this.shortMessage,
      ...(this.hint !== undefined ? { hint: this.hint } : {}),
      ...(Object.keys(this.details).length > 0 ? { details: this.details } : {}),
    };
  }

  /**
   * The error of a {@link LanesError.toJSON} answer. A value that is not one (a code this version
   * does not know, a missing message) becomes an `INTERNAL` error that shows what arrived.
   */
  static fromJSON(json: unknown): LanesError {
    const value = (typeof json === 'object' && json !== null ? json : {}) as Partial<Record<keyof LanesErrorJSON, unknown>>;
    const details = typeof value.details === 'object' && value.details !== null && !Array.isArray(value.details) ? (value.details as Record<string, unknown>) : undefined;
    const hint = typeof value.hint === 'string' ? value.hint : undefined;
    if (typeof value.code !== 'string' || !KNOWN_CODES.has(value.code) || typeof value.message !== 'string') {
      return new LanesError('INTERNAL', `Got an error that is not a LanesError: ${JSON.stringify(json)?.slice(0, 200) ?? String(json)}.`, { ...(hint !== undefined ? { hint } : {}), details: { received: json } });
    }
    return new LanesError(value.code as LanesErrorCode, value.message, { ...(hint !== undefined ? { hint } : {}), ...(details ? { details } : {}) });
  }
}

/**
 * True when `error` is a {@link LanesError}, optionally with the given code: also one made by
 * another copy of the toolkit (another module loader), which `instanceof` does not recognise.
 */
export function isLanesError(error: unknown, code?: LanesErrorCode): error is LanesError {
  const branded = error instanceof LanesError || (typeof error === 'object' && error !== null && (error as Record<symbol, unknown>)[LANES_ERROR_BRAND] === true);
  return branded && (code === undefined || (error as LanesError).code === code);
}

/** The message of any thrown value, for wrapping into a LanesError. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
