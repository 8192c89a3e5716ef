import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { isLanesError } from '../../src/errors.js';
import { startServers, type ServerDefinition } from '../../src/servers/index.js';
import { freePort, get, isGone, laneContext, nodeCommand, startFailure, stopAfter, tempDir } from './helpers.js';

test('starts the frontend only after the backend is healthy', async (t) => {
  const ports = { backend: await freePort(), frontend: await freePort() };
  const ctx = laneContext(ports);
  const defs: ServerDefinition[] = [
    // Listed first on purpose: the order of the list does not matter, `dependsOn` does.
    { name: 'frontend', command: nodeCommand('http-server.mjs'), dependsOn: ['backend'], env: ({ urls }) => ({ REQUIRE_URL: `${urls.backend}/health` }) },
    { name: 'backend', command: nodeCommand('http-server.mjs'), health: '/health', env: { LISTEN_DELAY_MS: '600' } },
  ];
  const servers = stopAfter(t, await startServers(defs, ctx, { logDir: tempDir(t) }));

  assert.deepEqual(servers.map((server) => server.name), ['frontend', 'backend']);
  assert.deepEqual(ctx.urls, { backend: `http://localhost:${ports.backend}`, frontend: `http://localhost:${ports.frontend}` });
  assert.equal((await get(`${ctx.urls.frontend}/`)).status, 200);

  await servers.stopAll();
  for (const server of servers) assert.ok(isGone(server.pid), `${server.name} is gone`);
  await servers.stopAll(); // idempotent
});

test('starts independent servers in parallel', async (t) => {
  const ctx = laneContext({ a: await freePort(), b: await freePort() });
  const logDir = tempDir(t);
  // Each fixture writes its pid file as it starts, then waits 800 ms before it listens: started one
  // after the other, the second file would be written at least 800 ms after the first.
  const env = (name: string) => ({ LISTEN_DELAY_MS: '800', PID_FILE: path.join(logDir, `${name}.pid`) });
  await using servers = await startServers(
    [
      { name: 'a', command: nodeCommand('http-server.mjs'), env: env('a') },
      { name: 'b', command: nodeCommand('http-server.mjs'), env: env('b') },
    ],
    ctx,
    { logDir },
  );
  assert.equal(servers.length, 2);
  const [a, b] = ['a', 'b'].map((name) => statSync(path.join(logDir, `${name}.pid`)).mtimeMs);
  assert.ok(Math.abs((a ?? 0) - (b ?? 0)) < 500, `spawned ${Math.abs((a ?? 0) - (b ?? 0))} ms apart`);
});

test('stops the servers already started when a later one fails', async (t) => {
  const ctx = laneContext({ backend: await freePort(), frontend: await freePort() });
  const error = await startFailure(
    startServers(
      [
        { name: 'backend', command: nodeCommand('http-server.mjs') },
        { name: 'frontend', command: nodeCommand('exit-early.mjs'), dependsOn: ['backend'] },
      ],
      ctx,
      { logDir: tempDir(t) },
    ),
  );
  assert.ok(isLanesError(error, 'SERVER_EXITED'), String(error));
  assert.match(error.message, /Server "frontend"/);
  assert.deepEqual(ctx.urls, {}, 'the URLs of stopped servers are removed again');
  await assert.rejects(get(`http://127.0.0.1:${ctx.ports.backend}/`), /ECONNREFUSED/, 'the backend was stopped');
});

test('rejects a dependency cycle', async (t) => {
  const ctx = laneContext({ a: 4100, b: 4101, c: 4102 });
  const command = nodeCommand('http-server.mjs');
  const error = await startFailure(
    startServers(
      [
        { name: 'a', command, dependsOn: ['c'] },
        { name: 'b', command, dependsOn: ['a'] },
        { name: 'c', command, dependsOn: ['b'] },
      ],
      ctx,
      { logDir: tempDir(t) },
    ),
  );
  assert.ok(isLanesError(error, 'INVALID_OPTION'), String(error));
  assert.match(error.message, /cycle: a → c → b → a/);
});

test('rejects an unknown dependency and a duplicate name before starting anything', async (t) => {
  const ctx = laneContext({ a: 4100 });
  const command = nodeCommand('http-server.mjs');
  const unknown = await startFailure(startServers([{ name: 'a', command, dependsOn: ['db'] }], ctx, { logDir: tempDir(t) }));
  assert.ok(isLanesError(unknown, 'INVALID_OPTION'), String(unknown));
  assert.match(unknown.message, /depends on "db", which is not one of its servers/);

  const duplicate = await startFailure(startServers([{ name: 'a', command }, { name: 'a', command }], ctx, { logDir: tempDir(t) }));
  assert.ok(isLanesError(duplicate, 'INVALID_OPTION'), String(duplicate));
  assert.match(duplicate.message, /defines the server "a" twice/);
});
