import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { LaneUrls } from '../../src/databases/lane-urls.js';
import { laneRoleKey, laneRolePassword } from '../../src/databases/sql/roles.js';
import { ServerAccess } from '../../src/databases/sql/server-access.js';
import { withDatabase } from '../../src/postgres/index.js';
import { tempDir } from '../helpers/tmp.js';
import { useTestDatabases } from './helpers.js';

const server = useTestDatabases('urls');
const accesses: ServerAccess[] = [];
after(async () => {
  for (const access of accesses) await access.release();
});

async function accessFor(t: import('node:test').TestContext): Promise<ServerAccess> {
  const access = new ServerAccess({ adminUrl: server.adminUrl, stateDir: await tempDir(t), runId: 'urls-run', connectTimeoutMs: 10_000 });
  accesses.push(access);
  return access;
}

describe('the URLs of lane databases', () => {
  it("with lane roles, name each database's own role with the password derived from the run's key, and no admin credentials", async (t) => {
    const urls = new LaneUrls(await accessFor(t), { laneRoles: true, runId: 'urls-run' });
    const key = laneRoleKey(server.adminUrl, 'urls-run');
    const url = new URL(await urls.databaseUrl('e2e_urls_lane'));
    assert.equal(url.username, 'e2e_urls_lane');
    assert.equal(url.password, laneRolePassword(key, 'e2e_urls_lane'));
    assert.equal(url.pathname, '/e2e_urls_lane');
    const access = await urls.access();
    assert.equal(access.roleKey, key);
    assert.equal(new URL(access.baseUrl).username, '');
    assert.equal(new URL(access.baseUrl).password, '');
    assert.equal(await urls.roles(), await urls.roles(), 'the same key for the allocator\'s life');
  });

  it('without lane roles, give the admin URL with the lane database in it', async (t) => {
    const urls = new LaneUrls(await accessFor(t), { laneRoles: false, runId: 'urls-run' });
    assert.equal(await urls.roles(), undefined);
    assert.equal(await urls.databaseUrl('e2e_urls_lane'), withDatabase(server.adminUrl, 'e2e_urls_lane'));
    assert.deepEqual(await urls.access(), { baseUrl: server.adminUrl });
  });
});
