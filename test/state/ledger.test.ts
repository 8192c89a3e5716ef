import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { newOwner } from '../../src/state/owner.js';
import { splitByLiveness, type LedgerEntry } from '../../src/state/ledger.js';

describe('splitByLiveness', () => {
  it('judges an entry whose pid now belongs to another process as stale, even beside a live entry of the same pid and heartbeat', () => {
    const live = newOwner('run-live', process.pid);
    assert.notEqual(live.pidStart, undefined, 'this test needs /proc to read start times');
    // The same pid and heartbeat, but another start time: the pid was reused since this owner ran.
    const reused = { ...live, runId: 'run-gone', pidStart: live.pidStart! - 1 };
    const entries: LedgerEntry[] = [
      { runId: 'run-live', project: 'a', owner: live },
      { runId: 'run-gone', project: 'b', owner: reused },
    ];
    const { live: alive, stale } = splitByLiveness(entries, 60_000);
    assert.deepEqual(alive.map((entry) => entry.project), ['a']);
    assert.deepEqual(stale.map((item) => item.entry.project), ['b']);
    assert.match(stale[0]!.reason, /another process/);
    // And in the other order.
    const reversed = splitByLiveness([...entries].reverse(), 60_000);
    assert.deepEqual(reversed.live.map((entry) => entry.project), ['a']);
  });
});
