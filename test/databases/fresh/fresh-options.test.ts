import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkResetLockTimeout, DEFAULT_RESET_GRACE_MS, DEFAULT_RESET_LOCK_TIMEOUT_MS, resolvePool, resolveResetGrace, resolveResetStrategy } from '../../../src/databases/fresh/fresh-options.js';
import { isLanesError } from '../../../src/errors.js';

const refused = (name: RegExp) => (error: unknown) => isLanesError(error, 'INVALID_OPTION') && name.test(error.message);

describe('options of fresh data', () => {
  it("reset with 'swap' unless told 'truncate', and refuse any other strategy", () => {
    assert.equal(resolveResetStrategy(undefined), 'swap');
    assert.equal(resolveResetStrategy('truncate'), 'truncate');
    for (const bad of ['drop', '', 1]) assert.throws(() => resolveResetStrategy(bad), refused(/database reset/), String(bad));
  });

  it('give a swap a grace of 2000 ms by default, and take 0 to 60000', () => {
    assert.equal(DEFAULT_RESET_GRACE_MS, 2_000);
    assert.equal(resolveResetGrace(undefined), 2_000);
    assert.equal(resolveResetGrace(0), 0);
    assert.equal(resolveResetGrace(60_000), 60_000);
    for (const bad of [-1, 60_001, Number.NaN, '2000']) assert.throws(() => resolveResetGrace(bad), refused(/resetGraceMs/), String(bad));
  });

  it('keep 0 to 64 ready copies', () => {
    assert.equal(resolvePool(0), 0);
    assert.equal(resolvePool(64), 64);
    for (const bad of [-1, 65, 1.5, '2']) assert.throws(() => resolvePool(bad), refused(/database pool/), String(bad));
  });

  it('let a truncate reset wait 10000 ms for a lock by default, and take whole milliseconds that lock_timeout takes', () => {
    assert.equal(DEFAULT_RESET_LOCK_TIMEOUT_MS, 10_000);
    assert.equal(checkResetLockTimeout(undefined), 10_000);
    assert.equal(checkResetLockTimeout(1), 1);
    assert.equal(checkResetLockTimeout(2_147_483_647), 2_147_483_647);
    for (const bad of [0, -1, 1.5, 2_147_483_648, '10']) assert.throws(() => checkResetLockTimeout(bad), refused(/lockTimeoutMs/), String(bad));
  });
});
