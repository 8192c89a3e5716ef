import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { LeaseKeeper } from '../../../src/databases/records/lease-keeper.js';
import { ensureRegistry, findRow, writeRow } from '../../../src/databases/records/registry.js';
import { withDatabase } from '../../../src/postgres/index.js';
import { currentHost } from '../../../src/state/index.js';
import { query, useTestDatabases } from '../helpers.js';

const server = useTestDatabases('lease');
/** A database of this file's own holding a registry, so no other test's rows are touched. */
let registryUrl: string;


const keepers: LeaseKeeper[] = [];
after(() => {
  for (const keeper of keepers) keeper.stop();
});

async function connect(): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: registryUrl });
  await client.connect();
  return client;
}

async function claim(databaseName: string, host = currentHost()): Promise<void> {
  const client = await connect();
  try {
    await writeRow(client, { databaseName, prefix: server.prefix, runId: 'run-1', project: databaseName, host, pid: process.pid, template: 'tpl' }, 60_000);
  } finally {
    await client.end();
  }
}

async function expiresAt(databaseName: string): Promise<number> {
  const client = await connect();
  try {
    return Date.parse((await findRow(client, databaseName))!.expiresAt);
  } finally {
    await client.end();
  }
}

describe('the keeper of registry leases', () => {
  before(async () => {
    const name = `${server.prefix}_registry`;
    await query(server.adminUrl, `CREATE DATABASE ${pg.escapeIdentifier(name)}`);
    registryUrl = withDatabase(server.adminUrl, name);
    const client = new pg.Client({ connectionString: registryUrl });
    await client.connect();
    try {
      await ensureRegistry(client, 'the test registry');
    } finally {
      await client.end();
    }
  });

  it('renews the leases it holds for as long again, and forgets them when asked', async () => {
    const name = `${server.prefix}_a`;
    await claim(name);
    const before = await expiresAt(name);
    const keeper = new LeaseKeeper(connect, 600_000);
    keepers.push(keeper);
    keeper.hold(name);
    assert.deepEqual(keeper.held, [name]);
    await keeper.renew();
    const renewed = await expiresAt(name);
    assert.ok(renewed - before > 500_000, `the lease now ends ${Math.round((renewed - before) / 1000)} s later`);
    keeper.forget([name]);
    assert.deepEqual(keeper.held, []);
  });

  it('forgets a lease it lost (no row, or a row of another host) and keeps the others', async () => {
    const mine = `${server.prefix}_b`;
    const elsewhere = `${server.prefix}_c`;
    await claim(mine);
    await claim(elsewhere, 'another-host');
    const keeper = new LeaseKeeper(connect, 60_000);
    keepers.push(keeper);
    for (const name of [mine, elsewhere, `${server.prefix}_gone`]) keeper.hold(name);
    await keeper.renew();
    assert.deepEqual(keeper.held, [mine]);
    keeper.stop();
  });

  it('survives a registry it cannot reach, holding its leases for the next beat', async () => {
    const keeper = new LeaseKeeper(async () => Promise.reject(new Error('no server')), 60_000);
    keepers.push(keeper);
    keeper.hold('e2e_anything');
    await keeper.renew();
    assert.deepEqual(keeper.held, ['e2e_anything']);
    keeper.stop();
  });
});
