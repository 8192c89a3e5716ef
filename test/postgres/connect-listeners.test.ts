import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isLanesError } from '../../src/errors.js';
import { acquireEmbeddedPostgres, connectClient, withClient } from '../../src/postgres/index.js';
import { passwordOf } from '../../src/redact.js';
import { privateServer } from './helpers.js';

/** More connections at once than an AbortSignal takes listeners before Node warns (10). */
const CONCURRENT = 16;

test('many connections retrying at once to the watched embedded server add no listeners to its one long-lived signal (no MaxListenersExceededWarning)', { timeout: 120_000 }, async (t) => {
  const options = privateServer(t);
  const server = options.own(await acquireEmbeddedPostgres(options));
  const password = passwordOf(server.adminUrl)!;
  // A role with the superuser's password (so its connections count as relying on the watched
  // server) that may hold no connection: every attempt fails with 53300, which is retried.
  await withClient(server.adminUrl, (client) => client.query(`CREATE ROLE busy_role LOGIN CONNECTION LIMIT 0 PASSWORD '${password.replaceAll("'", "''")}'`));
  const url = new URL(server.adminUrl);
  url.username = 'busy_role';

  const warnings: Error[] = [];
  const collect = (warning: Error): void => void warnings.push(warning);
  process.on('warning', collect);
  t.after(() => process.off('warning', collect));

  const results = await Promise.allSettled(Array.from({ length: CONCURRENT }, () => connectClient(url.href, { timeoutMs: 1_500 })));
  // Warnings are emitted on the next tick after the listener that crossed the limit was added.
  await new Promise((resolve) => setImmediate(resolve));
  for (const result of results) {
    assert.equal(result.status, 'rejected');
    assert.ok(isLanesError(result.reason, 'POSTGRES_UNREACHABLE'), String(result.reason));
    assert.match((result.reason as Error).message, /too many connections|busy_role/);
  }
  assert.deepEqual(warnings.filter((warning) => warning.name === 'MaxListenersExceededWarning').map((warning) => warning.message), []);
});

test('connections retrying when the watched embedded server dies stop at once with EMBEDDED_POSTGRES_DIED, each through its own signal', { timeout: 120_000 }, async (t) => {
  const options = privateServer(t);
  const server = options.own(await acquireEmbeddedPostgres(options));
  const password = passwordOf(server.adminUrl)!;
  await withClient(server.adminUrl, (client) => client.query(`CREATE ROLE busy_role LOGIN CONNECTION LIMIT 0 PASSWORD '${password.replaceAll("'", "''")}'`));
  const url = new URL(server.adminUrl);
  url.username = 'busy_role';
  const original = console.warn;
  console.warn = () => undefined; // the death is reported once by the watch: not this test's output
  t.after(() => {
    console.warn = original;
  });

  const started = performance.now();
  const attempts = Array.from({ length: CONCURRENT }, () => connectClient(url.href, { timeoutMs: 30_000 }));
  await new Promise((resolve) => setTimeout(resolve, 300));
  process.kill(server.postmasterPid, 'SIGKILL');
  for (const result of await Promise.allSettled(attempts)) {
    assert.equal(result.status, 'rejected');
    assert.ok(isLanesError(result.reason, 'EMBEDDED_POSTGRES_DIED'), String(result.reason));
  }
  assert.ok(performance.now() - started < 10_000, 'not retried until the 30 s deadline');
});
