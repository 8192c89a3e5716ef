import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isLanesError } from '../../src/errors.ts';
import { configBridge } from '../../src/playwright/config-bridge.ts';
import { GLOBAL_SETUP_FILE, WORKER_SETUP_FILE, withDatabases } from '../../src/vitest/config.ts';
import { vitestBridge } from '../../src/vitest/bridge.ts';
import { workerSlot } from '../../src/vitest/worker-database.ts';
import type { ViteUserConfig } from 'vitest/config';
import { lanesOptionsOf, type VitestLanesOptions } from '../../src/vitest/options.ts';

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
  assert.deepEqual(configBridge().options?.database, { migrations: 'db/migrations', prefix: 'mine', reset: 'truncate' });
  assert.equal(configBridge().options?.stateDir, '/tmp/state');
  assert.equal(configBridge().options?.isolation, 'worker');
});

test("the workers' databases reset with 'truncate' unless database.reset says otherwise", () => {
  assert.deepEqual(lanesOptionsOf({}).database, { reset: 'truncate' });
  assert.deepEqual(lanesOptionsOf({ database: { reset: undefined } }).database, { reset: 'truncate' });
  assert.deepEqual(lanesOptionsOf({ database: { reset: 'swap', prefix: 'mine' } }).database, { reset: 'swap', prefix: 'mine' });
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

test("the built withDatabases has Vitest load the toolkit's own modules natively (as under node_modules, also when linked from elsewhere), keeping the config's own externals", async () => {
  // Built by `npm run build`, as the package ships it; from source nothing is added.
  const built = (await import(new URL('../../dist/vitest/config.js', import.meta.url).href)) as typeof import('../../src/vitest/config.ts');
  const own = /\/own-dep\//;
  const config = built.withDatabases({ test: { server: { deps: { external: [own], inline: ['x'] } } } });
  const external = config.test?.server?.deps?.external ?? [];
  assert.equal(external[0], own);
  assert.deepEqual(config.test?.server?.deps?.inline, ['x']);
  const toolkit = external[1];
  assert.ok(toolkit instanceof RegExp);
  assert.ok(toolkit.test(built.GLOBAL_SETUP_FILE), 'the global setup is loaded natively');
  assert.ok(toolkit.test(built.WORKER_SETUP_FILE), 'the setup file is loaded natively');
  assert.equal(toolkit.test('/app/src/db.ts'), false, "the app's modules are not");
  assert.equal(withDatabases<ViteUserConfig>({ test: {} }).test?.server, undefined, 'from source, nothing is added');
});
