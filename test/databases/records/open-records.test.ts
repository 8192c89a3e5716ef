import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { FileRecords } from '../../../src/databases/records/lane-records.js';
import { DatabaseLedger } from '../../../src/databases/records/ledger.js';
import { openLaneRecords, requestedKind } from '../../../src/databases/records/open-records.js';
import { resolveDatabaseAllocatorOptions } from '../../../src/databases/options.js';
import { ServerAccess } from '../../../src/databases/sql/server-access.js';
import { DATABASE_URL_ENV } from '../../../src/env-vars.js';
import { tempDir } from '../../helpers/tmp.js';

const saved = process.env[DATABASE_URL_ENV];
afterEach(() => {
  if (saved === undefined) delete process.env[DATABASE_URL_ENV];
  else process.env[DATABASE_URL_ENV] = saved;
});

describe('where an allocator records its lanes', () => {
  it("is the registry when asked, or under 'auto' when an admin URL is given, else the state file only", () => {
    delete process.env[DATABASE_URL_ENV];
    const url = 'postgres://admin:pw@127.0.0.1:5432/postgres';
    assert.equal(requestedKind({ registry: 'postgres', adminUrl: undefined }), 'postgres');
    assert.equal(requestedKind({ registry: 'file', adminUrl: url }), 'file');
    assert.equal(requestedKind({ registry: 'auto', adminUrl: url }), 'postgres');
    assert.equal(requestedKind({ registry: 'auto', adminUrl: undefined }), 'file');
    process.env[DATABASE_URL_ENV] = url;
    assert.equal(requestedKind({ registry: 'auto', adminUrl: undefined }), 'postgres');
  });

  it('opens the state file only without touching the server when the registry is not used', async (t) => {
    const stateDir = await tempDir(t);
    const options = resolveDatabaseAllocatorOptions({ stateDir, registry: 'file', adminUrl: 'postgres://admin:pw@127.0.0.1:1/postgres' });
    const session = new ServerAccess({ adminUrl: options.adminUrl, stateDir, runId: options.runId, connectTimeoutMs: 1_000 });
    const ledger = new DatabaseLedger({ stateDir, prefix: options.prefix, leaseMs: options.leaseMs, shard: undefined });
    const records = await openLaneRecords(options, session, ledger, undefined);
    assert.ok(records instanceof FileRecords);
    assert.equal(records.kind, 'file');
    assert.deepEqual(await records.rows(), []);
    assert.equal(session.joined, false, 'the server (unreachable here) was never joined');
  });
});
