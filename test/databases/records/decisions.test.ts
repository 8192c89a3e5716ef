import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { claimFor, planRemoval, reaping, releasing, type RemovalPick } from '../../../src/databases/records/decisions.js';
import { isLanesError } from '../../../src/errors.js';
import type { RegistryRow } from '../../../src/databases/records/registry.js';
import { currentHost } from '../../../src/state/index.js';
import { ADMIN, entry, key, row } from './samples.js';

describe('claims on a registry row', () => {
  it('inserts a new row, renews a live one of the same run, and takes over one whose owner is gone', () => {
    assert.equal(claimFor(undefined, key, currentHost(), '/repo/test-results'), 'insert');
    assert.equal(claimFor(row(), key, currentHost(), '/repo/test-results'), 'renew');
    assert.equal(claimFor(row({ pid: 2 ** 30 }), key, currentHost(), '/repo/test-results'), 'take');
    assert.equal(claimFor(row({ host: 'elsewhere', expired: true }), key, currentHost(), '/repo/test-results'), 'take');
  });

  it('refuses a row that a live owner of another run holds: another host, another state folder, or another lane', () => {
    const conflicts: Array<[RegistryRow, RegExp]> = [
      [row({ host: 'elsewhere' }), /held by host "elsewhere".*same run id/],
      [row({ stateDir: '/other/test-results' }), /another run on this host/],
      [row({ project: 'firefox' }), /names collide/],
    ];
    for (const [candidate, message] of conflicts) {
      assert.throws(() => claimFor(candidate, key, currentHost(), '/repo/test-results'), (error) => isLanesError(error, 'RUN_ID_CONFLICT') && message.test(error.message));
    }
  });
});

describe('removal plans', () => {
  const stale: RemovalPick = { ledger: (entries) => entries.map((item) => ({ entry: item, reason: 'stale' })), row: () => 'stale' };

  it('joins a ledger entry and the registry row of the same database into one target', () => {
    const targets = planRemoval([entry('e2e_a')], [row({ databaseName: 'e2e_a' }), row({ databaseName: 'e2e_b' })], stale, ADMIN);
    assert.deepEqual(targets.map((target) => [target.databaseName, target.ledger.length, Boolean(target.row)]), [['e2e_a', 1, true], ['e2e_b', 0, true]]);
    assert.match(targets[1]!.entry.databaseUrl, /^postgres:\/\/admin:\*\*\*@/);
  });

  it('leaves a ledger entry alone when the registry says its database is held, and judges row-less entries by the ledger', () => {
    const keepRows: RemovalPick = { ...stale, row: () => undefined };
    const targets = planRemoval([entry('e2e_held'), entry('e2e_unknown')], [row({ databaseName: 'e2e_held' })], keepRows, ADMIN);
    assert.deepEqual(targets.map((target) => target.databaseName), ['e2e_unknown']);
  });

  it('releases the rows of its own run and state folder, and of others only once their owner is gone', () => {
    const pick = releasing('run-1', '/repo/test-results', (lane) => lane.runId === 'run-1');
    assert.equal(pick.row(row()), 'released');
    assert.equal(pick.row(row({ stateDir: '/other/test-results' })), undefined);
    assert.equal(pick.row(row({ host: 'elsewhere' })), undefined);
    assert.match(pick.row(row({ host: 'elsewhere', expired: true })) ?? '', /lease of elsewhere .* expired/);
    assert.equal(pick.row(row({ runId: 'run-2' })), undefined);
  });

  it('reaps the entries and rows whose owner is gone, of any run, and keeps the live ones', () => {
    const pick = reaping(60_000);
    const dead = entry('e2e_dead', 2 ** 30);
    assert.deepEqual(pick.ledger([entry('e2e_live'), dead]).map((item) => item.entry), [dead]);
    assert.equal(pick.row(row()), undefined);
    assert.equal(pick.row(row({ runId: 'run-2' })), undefined);
    assert.match(pick.row(row({ runId: 'run-2', pid: 2 ** 30 })) ?? '', /owner pid .* is gone/);
    assert.match(pick.row(row({ host: 'elsewhere', expired: true })) ?? '', /lease of elsewhere .* expired/);
  });
});
