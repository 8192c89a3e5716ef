import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { changedVariables, isRunScopedEnv, listNames, serverEnvironment } from '../../../src/lanes/reuse/environment.js';
import { tempDir } from '../../helpers/tmp.js';

const lane = { ports: { api: 4100, web: 4101 }, database: true };
const server = { name: 'api' };

test("a server's environment is a digest per variable: names kept, values never", () => {
  const digests = serverEnvironment(server, lane, undefined, { A_FLAG: 'a-secret-value', HOME: '/home/me' });
  assert.deepEqual(Object.keys(digests), ['A_FLAG', 'HOME']);
  assert.ok(Object.values(digests).every((digest) => /^[0-9a-f]{12}$/.test(digest)));
  assert.doesNotMatch(JSON.stringify(digests), /a-secret-value/);
  const changed = serverEnvironment(server, lane, undefined, { A_FLAG: 'another', HOME: '/home/me' });
  assert.deepEqual(changedVariables(digests, changed), ['A_FLAG']);
  assert.deepEqual(changedVariables(digests, serverEnvironment(server, lane, undefined, { HOME: '/home/me', NEW_ONE: '1' })), ['A_FLAG', 'NEW_ONE']);
});

test('variables that change every run, the runner\'s private ones and those the lane sets itself are left out', () => {
  const env = {
    _: '/usr/bin/npx',
    OLDPWD: '/x',
    PWD: '/app',
    SHLVL: '2',
    TERM_SESSION_ID: 't',
    SSH_AUTH_SOCK: '/tmp/s',
    npm_lifecycle_event: 'e2e',
    VSCODE_GIT_IPC_HANDLE: '/run/h',
    PLAYWRIGHT_JSON_OUTPUT_FILE: '/tmp/report-1.json',
    PW_TEST_REUSE_CONTEXT: '1',
    E2E_LANES_RUN_ID: 'r1',
    E2E_LANES_OWNER_PID: '42',
    E2E_LANES_CONTROL_TOKEN: 'token',
    PORT: '3000',
    API_PORT: '1',
    WEB_URL: 'http://x',
    DATABASE_URL: 'postgresql://lane-not-ready@x/db',
    PGHOST: 'x',
    PGPASSWORD: 'p',
    KEPT: 'yes',
  };
  assert.deepEqual(Object.keys(serverEnvironment(server, lane, undefined, env)), ['KEPT']);
  // Without a database, DATABASE_URL and PG* are the server's own business.
  assert.deepEqual(Object.keys(serverEnvironment(server, { ...lane, database: false }, undefined, env)), ['DATABASE_URL', 'KEPT', 'PGHOST', 'PGPASSWORD']);
  for (const name of ['npm_config_cache', 'VSCODE_PID', 'E2E_LANES_DEBUG', 'PLAYWRIGHT_HTML_OPEN', 'PWDEBUG']) assert.ok(isRunScopedEnv(name), name);
  for (const name of ['NODE_ENV', 'A_FLAG', 'PATH', 'npm', 'PLAYWRIGHT']) assert.ok(!isRunScopedEnv(name), name);
});

test("an envFile's contents and the configured env are part of it, the configured env winning", async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, '.env.test'), 'FROM_FILE=one\nSHARED=file\n');
  const withFile = { name: 'api', cwd: dir, envFile: '.env.test' };
  const before = serverEnvironment(withFile, lane, { SHARED: 'configured' }, {});
  assert.deepEqual(Object.keys(before), ['FROM_FILE', 'SHARED']);
  await writeFile(join(dir, '.env.test'), 'FROM_FILE=two\nSHARED=file again\n');
  assert.deepEqual(changedVariables(before, serverEnvironment(withFile, lane, { SHARED: 'configured' }, {})), ['FROM_FILE'], 'the configured value still wins for SHARED');
  assert.equal(listNames(['A', 'B', 'C'], 2), 'A, B and 1 more');
});
