import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { withDatabase } from '../../../src/postgres/index.js';
import { fillPool, readyCopies } from '../../../src/databases/fresh/ready-pool.js';
import { swapDatabase } from '../../../src/databases/fresh/swap-reset.js';
import { getTestPostgres } from '../../helpers/postgres.js';

const PREFIX = `sw${randomBytes(3).toString('hex')}`;
const HASH = randomBytes(6).toString('hex');
const TEMPLATE = { name: `${PREFIX}_tpl_${HASH}`, hash: HASH };
let server: Awaited<ReturnType<typeof getTestPostgres>>;
let admin: pg.Client;
let version: number;

async function databases(): Promise<string[]> {
  const { rows } = await admin.query<{ datname: string }>('SELECT datname FROM pg_database WHERE left(datname, $2) = $1 ORDER BY datname', [`${PREFIX}_`, PREFIX.length + 1]);
  return rows.map((row) => row.datname);
}

async function rowsOf(database: string): Promise<string[]> {
  const client = new pg.Client({ connectionString: withDatabase(server.adminUrl, database) });
  await client.connect();
  try {
    return (await client.query<{ name: string }>('SELECT name FROM item ORDER BY id')).rows.map((row) => row.name);
  } finally {
    await client.end();
  }
}

before(async () => {
  server = await getTestPostgres();
  admin = new pg.Client({ connectionString: server.adminUrl });
  await admin.connect();
  version = Number((await admin.query<{ v: string }>('SHOW server_version_num')).rows[0]!.v);
  await admin.query(`CREATE DATABASE ${TEMPLATE.name}`);
  const build = new pg.Client({ connectionString: withDatabase(server.adminUrl, TEMPLATE.name) });
  await build.connect();
  await build.query(`CREATE TABLE item (id serial PRIMARY KEY, name text NOT NULL); INSERT INTO item (name) VALUES ('seed 1'), ('seed 2')`);
  await build.end();
  await admin.query(`ALTER DATABASE ${TEMPLATE.name} WITH ALLOW_CONNECTIONS false IS_TEMPLATE true`);
});

after(async () => {
  for (const name of await databases()) {
    await admin.query(`ALTER DATABASE ${pg.escapeIdentifier(name)} WITH IS_TEMPLATE false`).catch(() => undefined);
    await admin.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);
  }
  await admin.end();
  await server.release();
});

const fill = (target: number) => fillPool(admin, { prefix: PREFIX, template: TEMPLATE, target, strategy: 'wal_log', serverVersion: version, mark: { toolkit: 'e2e-lanes', kind: 'pool', created: '2026-01-01T00:00:00.000Z', hash: HASH } });

describe('a swap reset', () => {
  it('puts the template back under the same name, from a ready copy, ending the sessions on it', async () => {
    const lane = `${PREFIX}_lane_swap`;
    await admin.query(`CREATE DATABASE ${lane} TEMPLATE ${TEMPLATE.name}`);
    const app = new pg.Client({ connectionString: withDatabase(server.adminUrl, lane) });
    const ended = new Promise<Error>((resolve) => app.on('error', resolve));
    await app.connect();
    await app.query(`INSERT INTO item (name) VALUES ('written by the test')`);
    await fill(1);
    const copies = await readyCopies(admin, PREFIX, HASH);

    const result = await swapDatabase(admin, { name: lane, prefix: PREFIX, template: TEMPLATE, strategy: 'wal_log', serverVersion: version, comment: '{"kind":"lane"}' });
    assert.equal(result.source, 'pool');
    assert.match((await ended).message, /terminat/i, "the app's session was ended");
    assert.deepEqual(await rowsOf(lane), ['seed 1', 'seed 2']);
    assert.equal((await readyCopies(admin, PREFIX, HASH)).length, copies.length - 1, 'one copy was used');
    const { rows } = await admin.query<{ comment: string }>(`SELECT shobj_description(oid, 'pg_database') AS comment FROM pg_database WHERE datname = $1`, [lane]);
    assert.equal(rows[0]?.comment, '{"kind":"lane"}');
    await app.end().catch(() => undefined);
  });

  it('clones the template when no copy is ready', async () => {
    const lane = `${PREFIX}_lane_clone`;
    for (const copy of await readyCopies(admin, PREFIX, HASH)) await admin.query(`DROP DATABASE ${copy}`);
    await admin.query(`CREATE DATABASE ${lane} TEMPLATE ${TEMPLATE.name}`);
    const writer = new pg.Client({ connectionString: withDatabase(server.adminUrl, lane) });
    await writer.connect();
    await writer.query(`INSERT INTO item (name) SELECT 'bulk ' || i FROM generate_series(1, 20000) AS i`);
    await writer.end();
    const result = await swapDatabase(admin, { name: lane, prefix: PREFIX, template: TEMPLATE, strategy: 'wal_log', serverVersion: version });
    assert.equal(result.source, 'clone');
    assert.deepEqual(await rowsOf(lane), ['seed 1', 'seed 2']);
  });
});
