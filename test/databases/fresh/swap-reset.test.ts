import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pg from 'pg';
import { withDatabase } from '../../../src/postgres/index.js';
import { readyCopies } from '../../../src/databases/fresh/ready-pool.js';
import { swapDatabase } from '../../../src/databases/fresh/swap-reset.js';
import { usePoolTemplate } from './pool-template.js';

let server: { adminUrl: string };
let admin: pg.Client;
let version: number;
const { PREFIX, HASH, TEMPLATE, databases, rowsOf, fill } = usePoolTemplate('sw', (live) => {
  ({ server, admin, version } = live);
});

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
