import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { installCjsApp, runInApp } from '../helpers/cjs-app.js';
import { databasesStartingWith, useTestDatabases } from '../databases/helpers.js';

const server = useTestDatabases('cjspw');

let app: { dir: string; remove(): Promise<void> } | undefined;
before(async () => {
  app = await installCjsApp();
});
after(() => app?.remove());

test('npx playwright test runs in a CommonJS package: TS config, TS seed with export default, lane fixture', { timeout: 240_000 }, async (t) => {
  const run = await runInApp(t, app!.dir, 'node_modules/@playwright/test/cli.js', ['test', '--reporter=line'], {
    env: { E2E_LANES_DATABASE_URL: server.adminUrl, CJS_APP_PREFIX: server.prefix },
    timeoutMs: 180_000,
  });
  assert.equal(run.code, 0, run.output);
  assert.match(run.output, new RegExp(`template ${server.prefix}_tpl_[0-9a-f]{12} built`));
  assert.match(run.output, /1 passed/);
  // The lane database was dropped at teardown; only the template and its ready copies stay.
  const left = await databasesStartingWith(server.adminUrl, `${server.prefix}_`);
  assert.deepEqual(left.filter((name) => !name.startsWith(`${server.prefix}_tpl_`) && !name.startsWith(`${server.prefix}_pool_`)), []);
});
