import assert from 'node:assert/strict';
import { afterEach, beforeEach, test } from 'node:test';
import { isLanesError } from '../../src/errors.js';
import { describeTarget, ignoredAppDatabaseUrl, resolveAdminUrl, targetOf, withDatabase } from '../../src/postgres/index.js';

const saved = { lanes: process.env.E2E_LANES_DATABASE_URL, plain: process.env.DATABASE_URL };
beforeEach(() => {
  delete process.env.E2E_LANES_DATABASE_URL;
  delete process.env.DATABASE_URL;
});
afterEach(() => {
  for (const [name, value] of [['E2E_LANES_DATABASE_URL', saved.lanes], ['DATABASE_URL', saved.plain]] as const) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
});

test('resolveAdminUrl prefers the option, then E2E_LANES_DATABASE_URL, and never takes the app\'s DATABASE_URL', () => {
  assert.equal(resolveAdminUrl(), undefined);
  process.env.DATABASE_URL = 'postgres://plain@127.0.0.1/db';
  assert.equal(resolveAdminUrl(), undefined);
  process.env.E2E_LANES_DATABASE_URL = 'postgres://lanes@127.0.0.1/db';
  assert.equal(resolveAdminUrl(), 'postgres://lanes@127.0.0.1/db');
  assert.equal(resolveAdminUrl('postgres://option@127.0.0.1/db'), 'postgres://option@127.0.0.1/db');
});

test('resolveAdminUrl treats empty values as unset', () => {
  process.env.E2E_LANES_DATABASE_URL = '';
  assert.equal(resolveAdminUrl(''), undefined);
  process.env.E2E_LANES_DATABASE_URL = '  ';
  assert.equal(resolveAdminUrl(), undefined);
});

test('an ignored DATABASE_URL is named in one line without its password, and only when no admin URL is set', () => {
  assert.equal(ignoredAppDatabaseUrl(undefined), undefined);
  assert.equal(ignoredAppDatabaseUrl(' '), undefined);
  const line = ignoredAppDatabaseUrl('postgres://dev:hunter2@127.0.0.1:5432/myapp_dev');
  assert.ok(line);
  assert.match(line, /DATABASE_URL is set \(127\.0\.0\.1:5432\/myapp_dev\) and not used/);
  assert.match(line, /set E2E_LANES_DATABASE_URL/);
  assert.doesNotMatch(line, /hunter2/);
  assert.equal(ignoredAppDatabaseUrl('postgres://dev:hunter2@127.0.0.1:5432/myapp_dev', 'postgres://admin@127.0.0.1/postgres'), undefined);
  process.env.E2E_LANES_DATABASE_URL = 'postgres://lanes@127.0.0.1/db';
  assert.equal(ignoredAppDatabaseUrl('postgres://dev@127.0.0.1:5432/myapp_dev'), undefined);
});

test('withDatabase keeps server, credentials and parameters, and encodes the name', () => {
  assert.equal(
    withDatabase('postgres://u:p%40ss@127.0.0.1:5433/postgres?sslmode=disable', 'lane db/1'),
    'postgres://u:p%40ss@127.0.0.1:5433/lane%20db%2F1?sslmode=disable',
  );
  assert.equal(withDatabase('postgresql://u@localhost', 'other'), 'postgresql://u@localhost/other');
  assert.equal(targetOf(withDatabase('postgres://u@h/x', 'lane db/1')).database, 'lane db/1');
});

test('describeTarget shows host:port/database and never the password', () => {
  assert.equal(describeTarget('postgres://u:topsecret@127.0.0.1:5433/app'), '127.0.0.1:5433/app');
  assert.equal(describeTarget('postgres://u:topsecret@db.example/app'), 'db.example:5432/app');
  assert.equal(describeTarget('postgres://alice@[::1]:6000'), '[::1]:6000/alice');
  assert.equal(describeTarget('postgres:///app?host=/var/run/postgresql'), '/var/run/postgresql:5432/app');
  assert.equal(describeTarget('u:topsecret@127.0.0.1/db'), '(invalid PostgreSQL URL)');
});

test('an invalid URL is INVALID_OPTION and its message has no password', () => {
  assert.throws(
    () => withDatabase('http://u:topsecret@127.0.0.1/db', 'x'),
    (error) => isLanesError(error, 'INVALID_OPTION') && !error.message.includes('topsecret') && /scheme/.test(error.message),
  );
  assert.throws(
    () => targetOf('u:topsecret@127.0.0.1/db'),
    (error) => isLanesError(error, 'INVALID_OPTION') && !error.message.includes('topsecret'),
  );
});
