import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isLanesError } from '../../src/errors.ts';
import { configBridge } from '../../src/playwright/config-bridge.ts';
import { GLOBAL_SETUP_FILE, WORKER_SETUP_FILE, withDatabases } from '../../src/vitest/config.ts';
import { vitestBridge } from '../../src/vitest/bridge.ts';
import { workerSlot } from '../../src/vitest/worker-database.ts';
import type { VitestLanesOptions } from '../../src/vitest/options.ts';

test('withDatabases puts its global setup and setup file before the config\'s own and keeps the rest', () => {
  const config = withDatabases({ root: '/app', test: { include: ['a.test.ts'], globalSetup: './own-setup.ts', setupFiles: ['./own-a.ts', './own-b.ts'], maxWorkers: 2 } }, { reset: 'test' });
  assert.equal(config.root, '/app');
  assert.deepEqual(config.test?.include, ['a.test.ts']);
  assert.equal(config.test?.maxWorkers, 2);
  assert.deepEqual(config.test?.globalSetup, [GLOBAL_SETUP_FILE, './own-setup.ts']);
  assert.deepEqual(config.test?.setupFiles, [WORKER_SETUP_FILE, './own-a.ts', './own-b.ts']);
  assert.match(GLOBAL_SETUP_FILE, /src\/vitest\/global-setup\.ts$/);
  assert.match(WORKER_SETUP_FILE, /src\/vitest\/worker-setup\.ts$/);
});

test('withDatabases hands its options to the global setup and to `e2e-lanes status | gc --config`', () => {
  const options: VitestLanesOptions = { database: { migrations: 'db/migrations', prefix: 'mine' }, reset: 'file', stateDir: '/tmp/state' };
  withDatabases({}, options);
  assert.equal(vitestBridge().options, options);
  assert.deepEqual(configBridge().options?.database, { migrations: 'db/migrations', prefix: 'mine' });
  assert.equal(configBridge().options?.stateDir, '/tmp/state');
  assert.equal(configBridge().options?.isolation, 'worker');
});

test('withDatabases refuses options that cannot work, naming the option and the fix', () => {
  const refused = (options: unknown): void => {
    assert.throws(
      () => withDatabases({}, options as VitestLanesOptions),
      (error: unknown) => isLanesError(error, 'INVALID_OPTION') && Boolean(error.hint),
      `refuses ${JSON.stringify(options)} with a hint`,
    );
  };
  refused({ reset: 'always' });
  refused({ database: 'prisma/migrations' });
  refused(null);
  assert.throws(() => withDatabases({}, { reset: 'each' as never }), /Invalid reset "each".*Use 'test'/s);
});

test("a worker's slot is VITEST_POOL_ID - 1; without a pool id the error says which pools work", () => {
  assert.equal(workerSlot({ VITEST_POOL_ID: '1' }), 0);
  assert.equal(workerSlot({ VITEST_POOL_ID: '4' }), 3);
  for (const value of [undefined, '', '0', 'x', '1.5']) {
    assert.throws(() => workerSlot({ VITEST_POOL_ID: value }), (error: unknown) => isLanesError(error, 'CONFIG_INVALID') && /threads.*forks/.test(error.hint ?? ''));
  }
});
