import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { DEFAULT_REGISTRY_DATABASE, resolveRegistryDatabase, resolveRegistryMode } from '../../../src/databases/records/registry-options.js';
import { REGISTRY_DATABASE_ENV, REGISTRY_ENV } from '../../../src/env-vars.js';
import { isLanesError } from '../../../src/errors.js';

const saved = { mode: process.env[REGISTRY_ENV], database: process.env[REGISTRY_DATABASE_ENV] };

afterEach(() => {
  for (const [name, value] of [[REGISTRY_ENV, saved.mode], [REGISTRY_DATABASE_ENV, saved.database]] as const) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
});

describe('options of the registry', () => {
  it("choose 'auto' by default, the option over its variable, and refuse other modes naming where they came from", () => {
    delete process.env[REGISTRY_ENV];
    assert.equal(resolveRegistryMode(undefined), 'auto');
    process.env[REGISTRY_ENV] = 'file';
    assert.equal(resolveRegistryMode(undefined), 'file');
    assert.equal(resolveRegistryMode('postgres'), 'postgres');
    process.env[REGISTRY_ENV] = 'table';
    assert.throws(() => resolveRegistryMode(undefined), (error) => isLanesError(error, 'INVALID_OPTION') && error.message.includes(`(from ${REGISTRY_ENV})`));
    assert.throws(() => resolveRegistryMode('server'), (error) => isLanesError(error, 'INVALID_OPTION') && !error.message.includes('(from'));
  });

  it('keep the registry in the database e2e_lanes by default, and take only a plain lowercase name', () => {
    delete process.env[REGISTRY_DATABASE_ENV];
    assert.equal(DEFAULT_REGISTRY_DATABASE, 'e2e_lanes');
    assert.equal(resolveRegistryDatabase(undefined), 'e2e_lanes');
    process.env[REGISTRY_DATABASE_ENV] = 'shared_registry';
    assert.equal(resolveRegistryDatabase(undefined), 'shared_registry');
    assert.equal(resolveRegistryDatabase('ci_lanes'), 'ci_lanes');
    for (const bad of ['Lanes', '1lanes', 'a-b', 'x'.repeat(64), 7]) {
      assert.throws(() => resolveRegistryDatabase(bad), (error) => isLanesError(error, 'INVALID_OPTION') && /registryDatabase/.test(error.message), String(bad));
    }
  });
});
