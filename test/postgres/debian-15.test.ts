import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { acquireEmbeddedPostgres, withClient } from '../../src/postgres/index.js';
import { isGone, privateServer, waitFor } from './helpers.js';

const DEBIAN_15 = '/usr/lib/postgresql/15/bin';

test('runs a shared server with the binaries of Debian PostgreSQL 15 (binDir)', { skip: !existsSync(`${DEBIAN_15}/pg_ctl`) && `no ${DEBIAN_15}` }, async (t) => {
  const options = privateServer(t);
  const server = options.own(await acquireEmbeddedPostgres({ ...options, binDir: DEBIAN_15 }));

  assert.equal(Math.floor(server.version / 10000), 15);
  const { rows } = await withClient(server.adminUrl, (client) => client.query('select current_setting($1) as fsync', ['fsync']));
  assert.deepEqual(rows, [{ fsync: 'off' }]);
  await server.release();
  assert.ok(await waitFor(() => isGone(server.postmasterPid)));
});
