import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_CLONE_STRATEGY, resolveCloneStrategy, resolveLaneRoles } from '../../../src/databases/sql/server-options.js';
import { isLanesError } from '../../../src/errors.js';

describe('options of SQL on the server', () => {
  it("clone with 'wal_log' by default, or 'file_copy', and refuse anything else naming the option", () => {
    assert.equal(DEFAULT_CLONE_STRATEGY, 'wal_log');
    assert.equal(resolveCloneStrategy(undefined), 'wal_log');
    assert.equal(resolveCloneStrategy('file_copy'), 'file_copy');
    for (const bad of ['WAL_LOG', 'copy', 0]) {
      assert.throws(() => resolveCloneStrategy(bad), (error) => isLanesError(error, 'INVALID_OPTION') && /cloneStrategy/.test(error.hint ?? ''), String(bad));
    }
  });

  it('give each lane a role of its own unless told false, and refuse what is not a boolean', () => {
    assert.equal(resolveLaneRoles(undefined), true);
    assert.equal(resolveLaneRoles(false), false);
    for (const bad of ['false', 0, null]) {
      assert.throws(() => resolveLaneRoles(bad), (error) => isLanesError(error, 'INVALID_OPTION') && /laneRoles/.test(error.message), String(bad));
    }
  });
});
