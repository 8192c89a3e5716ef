import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { describe, it } from 'node:test';
import {
  DEFAULT_MIGRATION_TIMEOUT_MS,
  DEFAULT_MIGRATIONS_DIR,
  DEFAULT_SEED_TIMEOUT_MS,
  DEFAULT_TEMPLATE_WAIT_TIMEOUT_MS,
  resolveHashInputs,
  resolveMigrations,
  resolveStep,
} from '../../../src/databases/template/template-options.js';
import { isLanesError } from '../../../src/errors.js';

describe('options of the template', () => {
  it("read Prisma's migrations folder by default, made absolute, and take false for none", () => {
    assert.equal(DEFAULT_MIGRATIONS_DIR, 'prisma/migrations');
    assert.equal(resolveMigrations(undefined), resolve('prisma/migrations'));
    assert.equal(resolveMigrations('db/migrations'), resolve('db/migrations'));
    assert.equal(resolveMigrations(false), false);
  });

  it('take a command with its folder made absolute and its timeout checked', () => {
    assert.deepEqual(resolveStep('seed', { command: 'npm run seed' }), { command: 'npm run seed', cwd: resolve('.') });
    assert.deepEqual(resolveStep('migrations', { command: 'npx prisma migrate deploy', cwd: 'app', timeoutMs: 5_000 }), { command: 'npx prisma migrate deploy', cwd: resolve('app'), timeoutMs: 5_000 });
    assert.throws(() => resolveStep('seed', { command: 'x', timeoutMs: 0 }), (error) => isLanesError(error, 'INVALID_OPTION') && /seed\.timeoutMs/.test(error.message));
  });

  it('refuse an empty path, an empty command or another shape, naming the forms the option takes', () => {
    for (const bad of ['', '  ', { command: ' ' }, 42, { cmd: 'x' }]) {
      assert.throws(() => resolveStep('migrations', bad), (error) => isLanesError(error, 'INVALID_OPTION') && /Option `migrations` takes/.test(error.hint ?? ''), JSON.stringify(bad));
      assert.throws(() => resolveStep('seed', bad), (error) => isLanesError(error, 'INVALID_OPTION') && /Option `seed` takes/.test(error.hint ?? ''), JSON.stringify(bad));
    }
  });

  it('take a list of paths as inputs of the hash, made absolute', () => {
    assert.deepEqual(resolveHashInputs(undefined), []);
    assert.deepEqual(resolveHashInputs(['prisma/schema.prisma', 'seed']), [resolve('prisma/schema.prisma'), resolve('seed')]);
    for (const bad of ['seed.ts', [''], [1]]) {
      assert.throws(() => resolveHashInputs(bad), (error) => isLanesError(error, 'INVALID_OPTION') && /hashInputs/.test(error.message), JSON.stringify(bad));
    }
  });

  it('give migrations and the seed ten minutes each and a waiter thirty minutes by default', () => {
    assert.equal(DEFAULT_MIGRATION_TIMEOUT_MS, 600_000);
    assert.equal(DEFAULT_SEED_TIMEOUT_MS, 600_000);
    assert.equal(DEFAULT_TEMPLATE_WAIT_TIMEOUT_MS, 1_800_000);
  });
});
