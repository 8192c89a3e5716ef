import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { withDatabase } from '../../../src/postgres/index.js';
import { dropStaleCopies, fillPool, poolDatabaseName, poolTemplateHash, readyCopies, takeReadyCopy } from '../../../src/databases/fresh/ready-pool.js';
import { getTestPostgres } from '../../helpers/postgres.js';

const PREFIX = `rp${randomBytes(3).toString('hex')}`;
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

describe('ready copies of a template', () => {
  it('are named after their template and recognised only in that form', () => {
    const name = poolDatabaseName(PREFIX, HASH, 'abcdef12');
    assert.equal(name, `${PREFIX}_pool_${HASH}_abcdef12`);
    assert.ok(Buffer.byteLength(name) <= 63);
    assert.equal(poolTemplateHash(PREFIX, name), HASH);
    assert.equal(poolTemplateHash(PREFIX, `${PREFIX}_pool_${HASH}_abcdef12_w1`), undefined);
    assert.equal(poolTemplateHash('other', name), undefined);
  });

  it('are filled up to the target, counting copies made elsewhere, each marked as a copy of its template', async () => {
    assert.equal((await fill(3)).length, 3);
    assert.equal((await fill(3)).length, 0, 'already full');
    const copies = await readyCopies(admin, PREFIX, HASH);
    assert.equal(copies.length, 3);
    const { rows } = await admin.query<{ comment: string }>(`SELECT shobj_description(oid, 'pg_database') AS comment FROM pg_database WHERE datname = $1`, [copies[0]]);
    assert.deepEqual(JSON.parse(rows[0]!.comment), { toolkit: 'e2e-lanes', kind: 'pool', created: '2026-01-01T00:00:00.000Z', hash: HASH });
    assert.deepEqual(await rowsOf(copies[0]!), ['seed 1', 'seed 2']);
  });

  it('are never handed to two lanes: of five processes taking at once, three get one copy each', async () => {
    const clients = await Promise.all(
      Array.from({ length: 5 }, async () => {
        const client = new pg.Client({ connectionString: server.adminUrl });
        await client.connect();
        return client;
      }),
    );
    try {
      const names = clients.map((_, index) => `${PREFIX}_lane_${index}`);
      const taken = await Promise.all(clients.map((client, index) => takeReadyCopy(client, PREFIX, HASH, names[index]!)));
      const won = taken.filter((copy): copy is string => copy !== undefined);
      assert.equal(won.length, 3);
      assert.equal(new Set(won).size, 3, 'distinct copies');
      assert.deepEqual(await readyCopies(admin, PREFIX, HASH), []);
      const lanes = (await databases()).filter((name) => name.includes('_lane_'));
      assert.equal(lanes.length, 3);
      for (const lane of lanes) await admin.query(`DROP DATABASE ${lane}`);
    } finally {
      await Promise.all(clients.map((client) => client.end()));
    }
  });

  it('of templates that are gone are dropped, and copies beyond what is kept', async () => {
    await fill(2);
    const other = poolDatabaseName(PREFIX, 'aaaaaaaaaaaa');
    await admin.query(`CREATE DATABASE ${other} TEMPLATE ${TEMPLATE.name}`);
    assert.deepEqual(await dropStaleCopies(admin, PREFIX, new Set([HASH])), [other]);
    assert.equal((await dropStaleCopies(admin, PREFIX, new Set([HASH]), 1)).length, 1);
    assert.equal((await readyCopies(admin, PREFIX, HASH)).length, 1);
  });
});
