import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AdminPool } from '../../../src/databases/sql/admin-pool.js';
import { isLanesError } from '../../../src/errors.js';
import { useTestDatabases } from '../helpers.js';

const server = useTestDatabases('pool');

const pidOf = async (client: { query: (sql: string) => Promise<{ rows: Array<Record<string, unknown>> }> }): Promise<number> => Number((await client.query('SELECT pg_backend_pid() AS pid')).rows[0]!['pid']);

describe('the maintenance connections of an allocator', () => {
  it('give each call a client of its own, reuse a free one, and close after a call that threw', async () => {
    const pool = new AdminPool(server.adminUrl, 10_000);
    try {
      const first = await pool.use(pidOf);
      assert.equal(await pool.use(pidOf), first, 'a free client is reused');
      const [a, b] = await Promise.all([pool.use(async (client) => { const pid = await pidOf(client); await client.query('SELECT pg_sleep(0.1)'); return pid; }), pool.use(async (client) => { const pid = await pidOf(client); await client.query('SELECT pg_sleep(0.1)'); return pid; })]);
      assert.notEqual(a, b, 'two calls at once have two clients');
      const failed = await pool.use(pidOf);
      await assert.rejects(pool.use(async (client) => { await client.query('SELECT 1'); throw new Error('caller failed'); }), /caller failed/);
      const used = new Set<number>();
      for (let i = 0; i < 4; i += 1) used.add(await pool.use(pidOf));
      assert.equal(used.size <= 4, true);
      assert.equal(failed > 0, true);
      assert.equal(await pool.use(async (client) => (await client.query<{ name: string }>(`SELECT current_setting('application_name') AS name`)).rows[0]!.name), 'e2e-lanes');
    } finally {
      await pool.close();
    }
  });

  it("survive a session ended by the server while a call holds its client between two queries: the call's next query fails, the process lives on, the next call gets a new client", async () => {
    const pool = new AdminPool(server.adminUrl, 10_000);
    const other = new AdminPool(server.adminUrl, 10_000);
    const uncaught: unknown[] = [];
    const onUncaught = (error: unknown): void => void uncaught.push(error);
    process.on('uncaughtException', onUncaught);
    try {
      let ended = 0;
      const outcome = await pool
        .use(async (client) => {
          ended = await pidOf(client);
          // Between two queries, as a caller waiting out a backoff: the server ends the session.
          await other.use((admin) => admin.query('SELECT pg_terminate_backend($1)', [ended]));
          await new Promise((resolve) => setTimeout(resolve, 200));
          await client.query('SELECT 1');
          return 'answered';
        })
        .catch((error: unknown) => `failed: ${(error as Error).message}`);
      assert.match(outcome, /^failed: /, 'the next query of the call fails');
      assert.deepEqual(uncaught, [], 'no error event went unhandled');
      assert.notEqual(await pool.use(pidOf), ended, 'the ended client is not handed out again');
    } finally {
      process.off('uncaughtException', onUncaught);
      await pool.close();
      await other.close();
    }
  });

  it('fail with POSTGRES_UNREACHABLE within its deadline when the server cannot be reached, without the password', async () => {
    const pool = new AdminPool('postgres://admin:pw-not-shown@127.0.0.1:1/postgres', 1_000);
    try {
      const started = performance.now();
      await assert.rejects(pool.use(pidOf), (error) => isLanesError(error, 'POSTGRES_UNREACHABLE') && !error.message.includes('pw-not-shown'));
      assert.ok(performance.now() - started < 10_000);
    } finally {
      await pool.close();
    }
  });
});
