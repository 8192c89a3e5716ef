import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, test, type TestContext } from 'node:test';
import { isLanesError } from '../../src/errors.js';
import { ensurePostgres, withClient } from '../../src/postgres/index.js';
import { getTestPostgres } from '../helpers/postgres.js';
import { isGone, postmasterPidOf, privateServer, waitFor } from './helpers.js';

let testServer: Awaited<ReturnType<typeof getTestPostgres>>;
before(async () => {
  testServer = await getTestPostgres();
});
after(() => testServer?.release());

const saved = { lanes: process.env.E2E_LANES_DATABASE_URL, plain: process.env.DATABASE_URL };
afterEach(() => {
  for (const [name, value] of [['E2E_LANES_DATABASE_URL', saved.lanes], ['DATABASE_URL', saved.plain]] as const) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
});

/** An empty folder for an embedded server that must never be started. */
function untouchedDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'e2e-lanes-pg-unused-'));
  // Reachable by the server's user: a server started by mistake keeps its data in here, not in a
  // fallback folder beside it.
  chmodSync(dir, 0o755);
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function closedPortUrl(): Promise<string> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return `postgres://nobody:hunter22@127.0.0.1:${port}/postgres`;
}

test('a given URL is used as is and never starts the embedded server', async (t) => {
  const dir = untouchedDir(t);
  await using pg = await ensurePostgres({ adminUrl: testServer.adminUrl, embedded: { dataDir: join(dir, 'pg') }, stateDir: join(dir, 'state'), runId: 'given' });

  assert.equal(pg.embedded, false);
  assert.equal(pg.adminUrl, testServer.adminUrl);
  assert.ok(pg.version >= 130000);
  const { port } = new URL(testServer.adminUrl);
  assert.match(pg.description, new RegExp(`^PostgreSQL \\d+\\.\\d+ at [^ ]+:${port}/[^ ]+ \\(from option adminUrl\\)$`));
  const password = decodeURIComponent(new URL(testServer.adminUrl).password);
  if (password) assert.ok(!pg.description.includes(password));
  assert.deepEqual(readdirSync(dir), [], 'nothing was created for an embedded server');
});

test('E2E_LANES_DATABASE_URL is used as the server, DATABASE_URL never is (it names the app\'s database)', async (t) => {
  const dir = untouchedDir(t);
  const options = { embedded: { dataDir: join(dir, 'pg') }, stateDir: join(dir, 'state'), runId: 'env', connectTimeoutMs: 500 };

  process.env.E2E_LANES_DATABASE_URL = testServer.adminUrl;
  process.env.DATABASE_URL = await closedPortUrl();
  const fromLanesEnv = await ensurePostgres(options);
  assert.equal(fromLanesEnv.adminUrl, testServer.adminUrl);
  assert.equal(fromLanesEnv.embedded, false);
  assert.match(fromLanesEnv.description, /\(from E2E_LANES_DATABASE_URL\)$/);
  assert.deepEqual(readdirSync(dir), [], 'the embedded server was never started');

  delete process.env.E2E_LANES_DATABASE_URL;
  process.env.DATABASE_URL = testServer.adminUrl;
  const server = privateServer(t, 'env');
  const embedded = server.own(await ensurePostgres({ embedded: { dataDir: server.dataDir }, stateDir: server.stateDir, runId: 'env' }));
  assert.equal(embedded.embedded, true, 'DATABASE_URL was taken as the server');
  assert.notEqual(embedded.adminUrl, testServer.adminUrl);
  await embedded.release();
});

test('an unreachable given URL fails with POSTGRES_UNREACHABLE within the deadline', async (t) => {
  const dir = untouchedDir(t);
  const started = performance.now();
  await assert.rejects(
    ensurePostgres({ adminUrl: await closedPortUrl(), embedded: { dataDir: join(dir, 'pg') }, connectTimeoutMs: 700 }),
    (error) => isLanesError(error, 'POSTGRES_UNREACHABLE') && /127\.0\.0\.1:\d+\/postgres/.test(error.message),
  );
  assert.ok(performance.now() - started < 2_000);
  assert.deepEqual(readdirSync(dir), []);
});

test('without any URL, uses the embedded server and stops it on release', async (t) => {
  delete process.env.E2E_LANES_DATABASE_URL;
  delete process.env.DATABASE_URL;
  const options = privateServer(t);
  const pg = options.own(await ensurePostgres({ embedded: { dataDir: options.dataDir }, stateDir: options.stateDir, runId: 'embedded' }));

  assert.equal(pg.embedded, true);
  assert.ok(pg.version >= 130000);
  assert.match(pg.description, new RegExp(`^PostgreSQL \\d+\\.\\d+, embedded, on 127\\.0\\.0\\.1:${new URL(pg.adminUrl).port} \\(started by this run\\)$`));
  await withClient(pg.adminUrl, (client) => client.query('select 1'));
  const postmaster = postmasterPidOf(options.dataDir)!;
  assert.ok(!isGone(postmaster));
  await pg.release();
  assert.ok(await waitFor(() => isGone(postmaster)), 'released: the server stopped');
});
