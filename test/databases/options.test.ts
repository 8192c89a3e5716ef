import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { DEFAULT_RESET_LOCK_TIMEOUT_MS } from '../../src/databases/fresh/fresh-options.js';
import { resolveDatabaseAllocatorOptions } from '../../src/databases/options.js';
import { DEFAULT_CONNECT_TIMEOUT_MS } from '../../src/postgres/index.js';
import { RESET_LOCK_TIMEOUT_ENV, SEED_TIMEOUT_ENV } from '../../src/env-vars.js';
import { isLanesError } from '../../src/errors.js';
import { tempDir } from '../helpers/tmp.js';

const saved = { lock: process.env[RESET_LOCK_TIMEOUT_ENV], seed: process.env[SEED_TIMEOUT_ENV] };

afterEach(() => {
  for (const [name, value] of [[RESET_LOCK_TIMEOUT_ENV, saved.lock], [SEED_TIMEOUT_ENV, saved.seed]] as const) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
});

describe('the options of a database allocator', () => {
  it("resolve each default from its feature's one place", async (t) => {
    delete process.env[RESET_LOCK_TIMEOUT_ENV];
    delete process.env[SEED_TIMEOUT_ENV];
    const resolved = resolveDatabaseAllocatorOptions({ stateDir: await tempDir(t) });
    assert.equal(resolved.connectTimeoutMs, DEFAULT_CONNECT_TIMEOUT_MS);
    assert.equal(resolved.resetLockTimeoutMs, DEFAULT_RESET_LOCK_TIMEOUT_MS);
    assert.equal(resolved.reset, 'swap');
    assert.equal(resolved.cloneStrategy, 'wal_log');
    assert.equal(resolved.registry, 'auto');
    assert.equal(resolved.registryDatabase, 'e2e_lanes');
    assert.equal(resolved.laneRoles, true);
    assert.equal(resolved.seedTimeoutMs, 600_000);
    assert.equal(resolved.pool, undefined);
  });

  it('take a duration from its variable when the option is not given, the option first, and refuse a bad one naming the variable', async (t) => {
    const stateDir = await tempDir(t);
    process.env[RESET_LOCK_TIMEOUT_ENV] = '2500';
    assert.equal(resolveDatabaseAllocatorOptions({ stateDir }).resetLockTimeoutMs, 2_500);
    assert.equal(resolveDatabaseAllocatorOptions({ stateDir, resetLockTimeoutMs: 700 }).resetLockTimeoutMs, 700);
    process.env[SEED_TIMEOUT_ENV] = 'soon';
    assert.throws(() => resolveDatabaseAllocatorOptions({ stateDir }), (error) => isLanesError(error, 'INVALID_OPTION') && error.message.includes(`(from ${SEED_TIMEOUT_ENV})`));
  });

  it('call the check of each feature: a bad value of any part is refused at the call', async (t) => {
    const stateDir = await tempDir(t);
    const bad: Array<Record<string, unknown>> = [{ reset: 'drop' }, { pool: 100 }, { cloneStrategy: 'copy' }, { laneRoles: 'yes' }, { registry: 'table' }, { migrations: 3 }, { hashInputs: 'x' }, { connectTimeoutMs: -1 }, { prefix: 'Bad' }];
    for (const options of bad) {
      assert.throws(() => resolveDatabaseAllocatorOptions({ stateDir, ...options }), (error) => isLanesError(error), JSON.stringify(options));
    }
  });
});
