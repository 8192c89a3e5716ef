import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DatabaseEntry } from '../../../src/databases/index.js';
import { mergeListings, rowListing } from '../../../src/databases/records/listings.js';
import type { RegistryRow } from '../../../src/databases/records/registry.js';
import { currentHost } from '../../../src/state/index.js';

const ADMIN = 'postgres://admin:secret@127.0.0.1:5432/postgres';
const key = { runId: 'run-1', project: 'chromium' };

function row(overrides: Partial<RegistryRow> = {}): RegistryRow {
  return {
    databaseName: 'e2e_run1_chromium_0badf00d',
    prefix: 'e2e',
    ...key,
    host: currentHost(),
    pid: process.pid,
    stateDir: '/repo/test-results',
    template: 'e2e_tpl_0123456789ab',
    createdAt: '2026-11-22T00:00:00.000Z',
    heartbeatAt: '2026-11-22T00:00:00.000Z',
    expiresAt: '2026-11-22T00:02:00.000Z',
    expired: false,
    ...overrides,
  };
}

function entry(databaseName: string, pid = process.pid): DatabaseEntry {
  const now = new Date().toISOString();
  return { ...key, databaseName, databaseUrl: 'postgres://x', template: 't', owner: { runId: key.runId, pid, host: currentHost(), createdAt: now, heartbeatAt: now } };
}

describe('listings of every machine', () => {
  it('show the rows first, judged by their lease, then the local entries no row knows', () => {
    const local = [entry('e2e_a'), entry('e2e_local')].map((item) => ({ ...item, alive: true }));
    const listed = mergeListings(local, [row({ databaseName: 'e2e_a' }), row({ databaseName: 'e2e_b', host: 'elsewhere', expired: true })], ADMIN);
    assert.deepEqual(
      listed.map((item) => [item.databaseName, item.alive, item.expiresAt !== undefined]),
      [['e2e_a', true, true], ['e2e_b', false, true], ['e2e_local', true, false]],
    );
    assert.match(listed[1]!.staleReason ?? '', /lease of elsewhere/);
    assert.match(listed[0]!.databaseUrl, /^postgres:\/\/admin:\*\*\*@/);
  });

  it('give a row the URL of its database without the password, and its owner from the row', () => {
    const listed = rowListing(row({ databaseName: 'e2e_b', host: 'elsewhere', expired: true }), ADMIN);
    assert.equal(listed.databaseName, 'e2e_b');
    assert.equal(listed.databaseUrl, 'postgres://admin:***@127.0.0.1:5432/e2e_b');
    assert.equal(listed.owner.host, 'elsewhere');
    assert.equal(listed.alive, false);
  });
});
