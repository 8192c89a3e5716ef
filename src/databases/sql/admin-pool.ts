import pg from 'pg';
import { debugLogger } from '../../log.js';
import { connectWithRetry, describeTarget } from '../../postgres/index.js';
import { passwordOf, redactText } from '../../redact.js';

const debug = debugLogger('databases');

/** At most this many maintenance connections per allocator (lanes booting together clone side by side). */
const MAX_CONNECTIONS = 4;
/** A maintenance connection unused this long is closed. */
const IDLE_MS = 1_000;

/**
 * The maintenance connections of one allocator: a `pg.Pool` of a few clients, opened on demand,
 * reused while calls keep coming, closed after a second unused; an idle one never keeps the process
 * alive. Each call has its client to itself until it settles, so one caller's transaction or
 * session-wide advisory lock never mixes with another's queries. A client whose caller threw is
 * closed instead of reused; one the server ended while idle is dropped by the pool.
 */
export class AdminPool {
  readonly url: string;
  readonly #pool: pg.Pool;
  readonly #timeoutMs: number;

  /** `timeoutMs`: deadline to get a connected client, retries of transient failures included. */
  constructor(url: string, timeoutMs: number) {
    this.url = url;
    this.#timeoutMs = timeoutMs;
    // The pool's own connectionTimeoutMillis would also bound the wait for a busy client; only the
    // connect of a new client gets a deadline (a server that drops packets must not hang a lane).
    class TimedClient extends pg.Client {
      constructor(config?: string | pg.ClientConfig) {
        super({ ...(typeof config === 'string' ? { connectionString: config } : config), connectionTimeoutMillis: timeoutMs });
      }
    }
    this.#pool = new pg.Pool({ connectionString: url, application_name: 'e2e-lanes', max: MAX_CONNECTIONS, idleTimeoutMillis: IDLE_MS, allowExitOnIdle: true, Client: TimedClient });
    // An idle client that loses its server emits 'error' through the pool; unhandled, that would crash the process.
    this.#pool.on('error', (error) => debug('idle maintenance connection to %s lost: %s', describeTarget(url), this.#redact(error.message)));
  }

  #redact(text: string): string {
    const password = passwordOf(this.url);
    return redactText(text, password ? [password] : []);
  }

  /** Runs `fn` with a client of its own, connecting one if none is free (POSTGRES_UNREACHABLE when that fails). */
  async use<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await connectWithRetry(this.url, () => this.#pool.connect(), { timeoutMs: this.#timeoutMs });
    let failure: Error | undefined;
    // The server may end the session while the caller holds the client between two queries (it
    // died, or was stopped): the pool listens only to idle clients, and an 'error' event nobody
    // listens to would crash the process. The caller's next query fails instead.
    const lost = (error: Error): void => {
      failure ??= error;
      debug('maintenance connection to %s lost while in use: %s', describeTarget(this.url), this.#redact(error.message));
    };
    client.on('error', lost);
    try {
      return await fn(client);
    } catch (error) {
      failure = error instanceof Error ? error : new Error(String(error));
      throw error;
    } finally {
      client.off('error', lost);
      client.release(failure);
    }
  }

  /** Closes the idle clients now and the others when their callers are done. */
  async close(): Promise<void> {
    if (!this.#pool.ended) await this.#pool.end();
  }
}
