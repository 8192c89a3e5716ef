import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mergeListings, rowListing } from '../../../src/databases/records/listings.js';
import { ADMIN, entry, row } from './samples.js';

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
