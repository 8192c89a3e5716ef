import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pg from 'pg';
import { dropStaleCopies, poolDatabaseName, poolTemplateHash, readyCopies, takeReadyCopy } from '../../../src/databases/fresh/ready-pool.js';
import { usePoolTemplate } from './pool-template.js';

let server: { adminUrl: string };
let admin: pg.Client;
const { PREFIX, HASH, TEMPLATE, databases, rowsOf, fill } = usePoolTemplate('rp', (live) => {
  ({ server, admin } = live);
});

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
