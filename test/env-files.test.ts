import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadRunnerSettings, readEnvFiles } from '../src/env-files.js';
import { isLanesError } from '../src/errors.js';
import { tempDir } from './helpers/tmp.js';

test("the runner takes only its own settings from its env files, never over what is set (the first file that sets one wins)", async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, '.env.e2e'), 'E2E_LANES_DATABASE_URL=postgres://admin:pw@127.0.0.1:5432/postgres\nE2E_LANES_PORT_RANGE=4000-4100\nDATABASE_URL=postgres://dev@127.0.0.1/myapp_dev\n');
  await writeFile(join(dir, '.env.local'), 'E2E_LANES_DEBUG=1\nE2E_LANES_DATABASE_URL=postgres://other@127.0.0.1/postgres\n');
  const env: NodeJS.ProcessEnv = { E2E_LANES_PORT_RANGE: '5000-5100' };
  const set = loadRunnerSettings(['.env.e2e', '.env.local'], env, dir);
  assert.deepEqual(set.sort(), ['E2E_LANES_DATABASE_URL', 'E2E_LANES_DEBUG']);
  assert.deepEqual(env, { E2E_LANES_PORT_RANGE: '5000-5100', E2E_LANES_DATABASE_URL: 'postgres://admin:pw@127.0.0.1:5432/postgres', E2E_LANES_DEBUG: '1' });
});

test('an env file that cannot be read is refused, naming the option and the path', async (t) => {
  const dir = await tempDir(t);
  assert.throws(() => readEnvFiles('missing.env', dir, 'envFile'), (error) => isLanesError(error, 'INVALID_OPTION') && error.message.includes(join(dir, 'missing.env')) && /`envFile`/.test(error.hint ?? ''));
  assert.deepEqual(loadRunnerSettings(undefined, {}, dir), []);
});
