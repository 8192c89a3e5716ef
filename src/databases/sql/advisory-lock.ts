/**
 * PostgreSQL's session advisory locks, taken and let go in one place. A key is the text of an
 * int8 (see `advisoryKey` in names.ts), shared by every machine that uses the same database.
 */
import type { Client } from 'pg';
import { messageOf } from '../../errors.js';
import { debugLogger } from '../../log.js';

const debug = debugLogger('databases:locks');

/** Takes the lock `key` if no other session holds it; resolves whether it did. */
export async function tryAdvisoryLock(client: Client, key: string): Promise<boolean> {
  const { rows } = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1::int8) AS ok', [key]);
  return rows[0]?.ok === true;
}

/** Lets go of the lock `key` held by this session; a failure (a connection that broke) is only logged. */
export async function advisoryUnlock(client: Client, key: string): Promise<void> {
  await client.query('SELECT pg_advisory_unlock($1::int8)', [key]).catch((error: unknown) => debug('unlocking %s failed: %s', key, messageOf(error)));
}

/** Takes the lock `key` until the end of the current transaction (nothing to let go). */
export async function advisoryTransactionLock(client: Client, key: string): Promise<void> {
  await client.query('SELECT pg_advisory_xact_lock($1::int8)', [key]);
}

/**
 * Runs `fn` holding the lock `key`, and lets go of it after, whatever `fn` did. With `wait: true`
 * waits for the lock; with `wait: false` resolves `{ locked: false }` at once when another session
 * holds it.
 */
export async function withAdvisoryLock<T>(client: Client, key: string, options: { wait: boolean }, fn: () => Promise<T>): Promise<{ locked: true; value: T } | { locked: false }> {
  if (options.wait) await client.query('SELECT pg_advisory_lock($1::int8)', [key]);
  else if (!(await tryAdvisoryLock(client, key))) return { locked: false };
  try {
    return { locked: true, value: await fn() };
  } finally {
    await advisoryUnlock(client, key);
  }
}
