import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { inspect } from 'node:util';
import { isLanesError, type LanesError } from '../../src/errors.js';
import { connectClient, serverVersionNum, withClient, withDatabase } from '../../src/postgres/index.js';
import { getTestPostgres } from '../helpers/postgres.js';

const PASSWORD = 's3cret-Pa55word';

let testServer: Awaited<ReturnType<typeof getTestPostgres>>;
before(async () => {
  testServer = await getTestPostgres();
});
after(() => testServer?.release());

function assertLanesError(error: unknown, code: LanesError['code']): asserts error is LanesError {
  assert.ok(isLanesError(error), `expected a LanesError, got ${inspect(error)}`);
  assert.equal(error.code, code, error.message);
}

/** A loopback port that nothing listens on (it was just freed). */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A listener that accepts connections and never says a word; closed after the test. */
async function silentListener(t: { after(fn: () => unknown): void }): Promise<number> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    for (const socket of sockets) socket.destroy();
    server.close();
  });
  return (server.address() as net.AddressInfo).port;
}

async function rejection(promise: Promise<unknown>): Promise<{ error: unknown; ms: number }> {
  const started = performance.now();
  try {
    await promise;
  } catch (error) {
    return { error, ms: performance.now() - started };
  }
  assert.fail('expected a rejection');
}

function assertNoPassword(error: LanesError): void {
  for (const text of [error.message, String(error.stack), inspect(error, { depth: 6 }), JSON.stringify(error.details)]) {
    assert.ok(!text.includes(PASSWORD), `the password leaked into: ${text}`);
  }
}

test('connects, runs select 1 and reads the server version', async () => {
  const version = await withClient(testServer.adminUrl, async (client) => {
    assert.deepEqual((await client.query('select 1 as one')).rows, [{ one: 1 }]);
    return serverVersionNum(client);
  });
  assert.ok(version >= 130000, `server_version_num ${version}`);
});

test('withClient ends the client even when the callback throws', async () => {
  const applicationName = `e2e-lanes-end-check-${process.pid}`;
  await assert.rejects(
    withClient(testServer.adminUrl, async () => {
      throw new Error('boom');
    }, { applicationName }),
    /boom/,
  );
  const open = async (): Promise<number> =>
    withClient(testServer.adminUrl, async (client) => {
      const { rows } = await client.query('select count(*)::int as n from pg_stat_activity where application_name = $1', [applicationName]);
      return rows[0].n as number;
    });
  let count = await open();
  for (let i = 0; count > 0 && i < 20; i++) count = await open();
  assert.equal(count, 0, 'the connection was closed');
});

test('a closed port gives POSTGRES_UNREACHABLE within the deadline, after retries, without the password', async () => {
  const port = await closedPort();
  const { error, ms } = await rejection(connectClient(`postgres://lanes:${PASSWORD}@127.0.0.1:${port}/appdb`, { timeoutMs: 1_000 }));

  assertLanesError(error, 'POSTGRES_UNREACHABLE');
  assert.ok(ms >= 900 && ms < 2_000, `gave up after ${Math.round(ms)} ms`);
  assert.match(error.message, new RegExp(`127\\.0\\.0\\.1:${port}/appdb`));
  assert.match(error.message, /ECONNREFUSED/);
  assert.ok(Number(error.details.attempts) > 2, `retried (${String(error.details.attempts)} attempts)`);
  assert.match(error.hint ?? '', /E2E_LANES_DATABASE_URL/);
  assert.ok(error.cause, 'the cause is kept');
  assertNoPassword(error);
});

test('a listener that never answers gives POSTGRES_UNREACHABLE within the deadline', async (t) => {
  const port = await silentListener(t);
  const { error, ms } = await rejection(connectClient(`postgresql://lanes:${PASSWORD}@127.0.0.1:${port}/appdb`, { timeoutMs: 800 }));

  assertLanesError(error, 'POSTGRES_UNREACHABLE');
  assert.ok(ms >= 700 && ms < 1_800, `gave up after ${Math.round(ms)} ms`);
  assert.match(error.message, new RegExp(`127\\.0\\.0\\.1:${port}/appdb`));
  assert.match(error.message, /no answer within/);
  assertNoPassword(error);
});

test('keeps retrying until the server comes up', async (t) => {
  const port = await closedPort();
  const target = new URL(testServer.adminUrl);
  const proxy = net.createServer((socket) => {
    const upstream = net.connect(Number(target.port || 5432), target.hostname);
    socket.pipe(upstream).pipe(socket);
    socket.on('error', () => upstream.destroy());
    upstream.on('error', () => socket.destroy());
  });
  t.after(() => proxy.close());
  setTimeout(() => proxy.listen(port, '127.0.0.1'), 400);

  const url = new URL(testServer.adminUrl);
  url.hostname = '127.0.0.1';
  url.port = String(port);
  const client = await connectClient(url.toString(), { timeoutMs: 5_000 });
  try {
    assert.deepEqual((await client.query('select 1 as one')).rows, [{ one: 1 }]);
  } finally {
    await client.end();
  }
});

test('a wrong password fails at once, without retrying and without the password', async () => {
  const url = new URL(testServer.adminUrl);
  url.password = PASSWORD;
  const { error, ms } = await rejection(connectClient(url.toString(), { timeoutMs: 5_000 }));

  assertLanesError(error, 'POSTGRES_UNREACHABLE');
  assert.equal(error.details.code, '28P01');
  assert.equal(error.details.attempts, 1);
  assert.ok(ms < 2_000, `took ${Math.round(ms)} ms`);
  assert.match(error.hint ?? '', /user and password/);
  assertNoPassword(error);
});

test('a missing database fails at once and says so', async () => {
  const { error } = await rejection(connectClient(withDatabase(testServer.adminUrl, 'no_such_db_e2e_lanes'), { timeoutMs: 5_000 }));

  assertLanesError(error, 'POSTGRES_UNREACHABLE');
  assert.equal(error.details.code, '3D000');
  assert.equal(error.details.attempts, 1);
  assert.match(error.message, /\/no_such_db_e2e_lanes/);
  assert.match(error.hint ?? '', /does not exist/);
});

test('rejects a nonsense timeout with INVALID_OPTION', async () => {
  await assert.rejects(connectClient(testServer.adminUrl, { timeoutMs: 0 }), (error) => isLanesError(error, 'INVALID_OPTION'));
});
