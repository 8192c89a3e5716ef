import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isLanesError } from '../../src/errors.js';
import { acquireEmbeddedPostgres, connectClient, withClient } from '../../src/postgres/index.js';
import { watchEmbeddedServer } from '../../src/postgres/watch.js';
import { passwordOf } from '../../src/redact.js';
import { isGone, privateServer, waitFor } from './helpers.js';

describe('a watched embedded server', () => {
  it('that dies makes every later connection fail at once with EMBEDDED_POSTGRES_DIED and its log, not after the connect deadline', async (t) => {
    const options = privateServer(t);
    const server = options.own(await acquireEmbeddedPostgres(options));
    assert.equal(await withClient(server.adminUrl, async (client) => (await client.query('SELECT 1 AS one')).rows[0].one), 1);

    const warnings: string[] = [];
    const original = console.warn;
    console.warn = (...args: unknown[]) => void warnings.push(args.join(' '));
    t.after(() => {
      console.warn = original;
    });
    process.kill(server.postmasterPid, 'SIGKILL');
    assert.ok(await waitFor(() => isGone(server.postmasterPid), 5_000), 'the postmaster is gone');
    assert.ok(await waitFor(() => warnings.length > 0, 5_000), 'the death is reported by itself');
    assert.match(warnings[0]!, new RegExp(`The embedded PostgreSQL server \\(pid ${server.postmasterPid}, port ${server.port}, .*\\) died during the run`));

    const started = performance.now();
    await assert.rejects(connectClient(server.adminUrl, { timeoutMs: 10_000 }), (error) => {
      assert.ok(isLanesError(error, 'EMBEDDED_POSTGRES_DIED'), String(error));
      assert.match(error.message, /Last lines of .*postgres\.log|died during the run/);
      return true;
    });
    assert.ok(performance.now() - started < 1_000, 'no retries until the deadline');
  });

  it('refuses a connection that reaches another cluster on its address before anything is done on it', async (t) => {
    const options = privateServer(t);
    const server = options.own(await acquireEmbeddedPostgres(options));
    // What the run would see if another server had taken the port: a system identifier it does not know.
    const unwatch = watchEmbeddedServer({ port: server.port, password: passwordOf(server.adminUrl)!, postmasterPid: server.postmasterPid, dataDir: server.dataDir, logFile: server.logFile, systemIdentifier: '1' });
    t.after(unwatch);
    await assert.rejects(connectClient(server.adminUrl), (error) => {
      assert.ok(isLanesError(error, 'EMBEDDED_POSTGRES_DIED'), String(error));
      assert.match(error.message, /is not the embedded server of this run \(system identifier \d+, expected 1\)/);
      return true;
    });
  });
});
