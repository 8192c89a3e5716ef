import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { installCjsApp, runInApp } from '../helpers/cjs-app.js';
import { getTestPostgres } from '../helpers/postgres.js';

const BIN = 'node_modules/e2e-lanes/bin/e2e-lanes.js';

let app: { dir: string; remove(): Promise<void> } | undefined;
let server: { adminUrl: string; release(): Promise<void> } | undefined;
before(async () => {
  app = await installCjsApp();
  server = await getTestPostgres();
});
after(async () => {
  await app?.remove();
  await server?.release();
});

test('status loads the playwright.config.ts of a CommonJS package', { timeout: 120_000 }, async (t) => {
  const result = await runInApp(t, app!.dir, BIN, ['status']);
  assert.equal(result.code, 0, result.output);
  assert.match(result.output, /No lanes\./);
});

test('doctor loads the config of a CommonJS package and checks its port range', { timeout: 120_000 }, async (t) => {
  const result = await runInApp(t, app!.dir, BIN, ['doctor'], { env: { E2E_LANES_DATABASE_URL: server!.adminUrl } });
  assert.equal(result.code, 0, result.output);
  assert.match(result.output, /✓ PostgreSQL reachable/);
  // The range of the fixture's withLanes options: the config was really evaluated.
  assert.match(result.output, /✓ ports: .* in 34500-34599/);
});

test('a config that cannot be loaded is CONFIG_INVALID naming the file and the cause', { timeout: 120_000 }, async (t) => {
  // A spec file: it loads, but calling test() outside the Playwright runner throws.
  const result = await runInApp(t, app!.dir, BIN, ['status', '--config', 'e2e/seeded.spec.ts']);
  assert.equal(result.code, 1, result.output);
  assert.match(result.output, /\[CONFIG_INVALID\] Config file \S+\/e2e\/seeded\.spec\.ts could not be loaded: /);
  assert.match(result.output, /Hint: .*--config/);
});

test('without --config, finds a playwright.config.cjs as Playwright does', { timeout: 120_000 }, async (t) => {
  const folder = join(app!.dir, 'plain-cjs');
  await mkdir(folder, { recursive: true });
  const config = [
    "const { defineConfig } = require('@playwright/test');",
    "const { withLanes } = require('e2e-lanes/playwright');",
    "module.exports = withLanes(defineConfig({ projects: [{ name: 'plain' }] }), { portRange: [34600, 34649] });",
  ];
  await writeFile(join(folder, 'playwright.config.cjs'), `${config.join('\n')}\n`);
  const result = await runInApp(t, app!.dir, BIN, ['doctor'], { cwd: folder, env: { E2E_LANES_DATABASE_URL: server!.adminUrl } });
  assert.equal(result.code, 0, result.output);
  assert.match(result.output, /✓ ports: .* in 34600-34649/);
});
