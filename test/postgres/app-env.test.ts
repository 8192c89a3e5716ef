import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { runSeed } from '../../src/databases/index.js';
import { databaseEnv, LANE_NOT_READY_URL, pointEnvAt, withEnvPointedAt } from '../../src/postgres/app-env.js';
import { withDatabase } from '../../src/postgres/index.js';
import { getTestPostgres } from '../helpers/postgres.js';

const LANE = 'postgres://lane_user:s3cret@127.0.0.1:5433/e2e_abc_alpha_12345678';

test('points DATABASE_URL, the PG* parts and every other PostgreSQL URL variable at one database', () => {
  const env = {
    DATABASE_URL: 'postgres://dev:devpw@127.0.0.1:5432/myapp_dev',
    DIRECT_URL: 'postgresql://dev:devpw@127.0.0.1:5432/myapp_dev',
    POSTGRES_PRISMA_URL: ' postgres://dev@db.internal/myapp',
    E2E_LANES_DATABASE_URL: 'postgres://admin:pw@127.0.0.1:5432/postgres',
    REDIS_URL: 'redis://127.0.0.1:6379',
    PGDATABASE: 'myapp_dev',
    PGSERVICE: 'dev',
    HOME: '/root',
  };
  const changes = pointEnvAt(LANE, env);
  assert.deepEqual(changes.redirected, ['DIRECT_URL', 'POSTGRES_PRISMA_URL']);
  assert.deepEqual(env, {
    DATABASE_URL: LANE,
    DIRECT_URL: LANE,
    POSTGRES_PRISMA_URL: LANE,
    E2E_LANES_DATABASE_URL: 'postgres://admin:pw@127.0.0.1:5432/postgres',
    REDIS_URL: 'redis://127.0.0.1:6379',
    PGHOST: '127.0.0.1',
    PGPORT: '5433',
    PGDATABASE: 'e2e_abc_alpha_12345678',
    PGUSER: 'lane_user',
    PGPASSWORD: 's3cret',
    HOME: '/root',
  });
});

test('keeps the PGPASSWORD a URL without password relies on, and names the not-ready host in PGHOST', () => {
  assert.equal(databaseEnv('postgres://u@127.0.0.1/db', { PGPASSWORD: 'from-env' }).set.PGPASSWORD, undefined);
  const notReady = databaseEnv(LANE_NOT_READY_URL, {}).set;
  assert.equal(notReady.PGHOST, 'e2e-lanes-lane-not-ready.invalid');
  assert.equal(notReady.DATABASE_URL, LANE_NOT_READY_URL);
});

test('withEnvPointedAt puts every variable back afterwards, also when the function throws', async () => {
  const before = { DATABASE_URL: process.env.DATABASE_URL, PGHOST: process.env.PGHOST, PGPASSWORD: process.env.PGPASSWORD };
  await assert.rejects(
    withEnvPointedAt(LANE, async () => {
      assert.equal(process.env.DATABASE_URL, LANE);
      assert.equal(process.env.PGPASSWORD, 's3cret');
      throw new Error('boom');
    }),
    /boom/,
  );
  assert.deepEqual({ DATABASE_URL: process.env.DATABASE_URL, PGHOST: process.env.PGHOST, PGPASSWORD: process.env.PGPASSWORD }, before);
});

test('a client created with the not-ready address fails at its first query without reaching any server', async () => {
  const client = new pg.Client({ connectionString: LANE_NOT_READY_URL, connectionTimeoutMillis: 5_000 });
  await assert.rejects(client.connect(), /ENOTFOUND e2e-lanes-lane-not-ready\.invalid/);
});

let server: Awaited<ReturnType<typeof getTestPostgres>>;
const database = `e2e_seedenv_${randomBytes(4).toString('hex')}`;
before(async () => {
  server = await getTestPostgres();
});
after(async () => {
  const client = new pg.Client({ connectionString: server.adminUrl });
  await client.connect();
  await client.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`).finally(() => client.end());
  await server.release();
});

test('an in-process seed that creates its clients at import time from DATABASE_URL or PG* seeds the database being built', async () => {
  const admin = new pg.Client({ connectionString: server.adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${database}`).finally(() => admin.end());
  const saved = process.env.DATABASE_URL;
  process.env.DATABASE_URL = 'postgres://dev:devpw@127.0.0.1:1/myapp_dev';
  try {
    await runSeed(fileURLToPath(new URL('../fixtures/seeds/reads-env-at-import.mjs', import.meta.url)), withDatabase(server.adminUrl, database));
    assert.equal(process.env.DATABASE_URL, 'postgres://dev:devpw@127.0.0.1:1/myapp_dev', 'the variable is back afterwards');
  } finally {
    if (saved === undefined) delete process.env.DATABASE_URL;
    else process.env.DATABASE_URL = saved;
  }
  const check = new pg.Client({ connectionString: withDatabase(server.adminUrl, database) });
  await check.connect();
  const tables = await check.query(`SELECT 1 FROM pg_tables WHERE tablename = 'seeded_from_env'`).finally(() => check.end());
  assert.equal(tables.rowCount, 1);
});
