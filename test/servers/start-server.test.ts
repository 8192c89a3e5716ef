import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { isLanesError, type LanesError } from '../../src/errors.js';
import { startServer } from '../../src/servers/index.js';
import { checkDefinition, resolveServer } from '../../src/servers/options.js';
import {
  freePort,
  get,
  isGone,
  laneContext,
  nodeCommand,
  readPidFile,
  reapPidFileAfter,
  shellCommand,
  startFailure,
  stopAfter,
  tempDir,
} from './helpers.js';

function assertLanesError(error: unknown, code: LanesError['code']): asserts error is LanesError {
  assert.ok(isLanesError(error), `expected a LanesError, got ${String(error)}`);
  assert.equal(error.code, code, error.message);
}

test('starts a server and reports it healthy', async (t) => {
  const logDir = tempDir(t);
  const port = await freePort();
  const server = stopAfter(t, await startServer({ name: 'backend', command: nodeCommand('http-server.mjs'), health: '/health' }, laneContext({ backend: port }), { logDir }));

  assert.equal(server.name, 'backend');
  assert.equal(server.port, port);
  assert.equal(server.url, `http://localhost:${port}`, 'localhost by default; the server listens on 127.0.0.1');
  assert.equal(server.logFile, path.join(logDir, 'backend.log'));
  assert.deepEqual(await get(`${server.url}/health`), { status: 200, body: 'health' });

  await server.stop();
  assert.ok(isGone(server.pid), 'the process is gone after stop()');
  await assert.rejects(get(`${server.url}/health`), /ECONNREFUSED/);
  assert.match(readFileSync(server.logFile, 'utf8'), new RegExp(`^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z listening on ${port}\\n\\S+ SIGTERM: closing\\n`, 'm'), 'every line carries its time');
  await server.stop(); // idempotent
});

test('gives the process PORT, the lane ports and URLs, DATABASE_URL and its own env', async (t) => {
  const ports = { backend: await freePort(), 'admin-ui': await freePort() };
  const databaseUrl = 'postgres://lane:pw-123@127.0.0.1:5432/lane_db';
  await using server = await startServer(
    {
      name: 'backend',
      command: nodeCommand('http-server.mjs'),
      env: (ctx) => ({ FROM_FUNCTION: `${ctx.project}:${ctx.ports.backend}`, BACKEND_URL: 'overridden' }),
    },
    laneContext(ports, { databaseUrl }),
    { logDir: tempDir(t) },
  );
  const env = JSON.parse((await get(`${server.url}/env`)).body) as Record<string, string>;
  assert.equal(env.PORT, String(ports.backend));
  assert.equal(env.BACKEND_PORT, String(ports.backend));
  assert.equal(env.BACKEND_URL, 'overridden');
  assert.equal(env.ADMIN_UI_PORT, String(ports['admin-ui']));
  assert.equal(env.ADMIN_UI_URL, `http://localhost:${ports['admin-ui']}`);
  assert.equal(env.DATABASE_URL, databaseUrl);
  assert.equal(env.FROM_FUNCTION, `chromium-a:${ports.backend}`);
  assert.equal(env.PATH, process.env.PATH, 'inherits the parent environment');
});

test("points every database variable of the parent environment at the lane's database, and withholds the toolkit's own", async (t) => {
  const port = await freePort();
  const databaseUrl = 'postgres://lane:pw-123@127.0.0.1:5432/lane_db';
  const parent = {
    DIRECT_URL: 'postgresql://dev:devpw@127.0.0.1:5432/myapp_dev',
    PGDATABASE: 'myapp_dev',
    PGSERVICE: 'dev',
    E2E_LANES_DATABASE_URL: 'postgres://admin:adminpw@127.0.0.1:5432/postgres',
    E2E_LANES_LANE_DATABASES: '{"adminUrl":"postgres://admin:adminpw@127.0.0.1:5432/postgres"}',
  };
  const saved = Object.fromEntries(Object.keys(parent).map((name) => [name, process.env[name]]));
  Object.assign(process.env, parent);
  t.after(() => {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  });
  await using server = await startServer({ name: 'backend', command: nodeCommand('http-server.mjs') }, laneContext({ backend: port }, { databaseUrl }), { logDir: tempDir(t) });
  const env = JSON.parse((await get(`${server.url}/env`)).body) as Record<string, string>;
  assert.equal(env.DATABASE_URL, databaseUrl);
  assert.equal(env.DIRECT_URL, databaseUrl);
  assert.deepEqual([env.PGHOST, env.PGPORT, env.PGDATABASE, env.PGUSER, env.PGPASSWORD], ['127.0.0.1', '5432', 'lane_db', 'lane', 'pw-123']);
  assert.equal(env.PGSERVICE, undefined);
  assert.equal(env.E2E_LANES_DATABASE_URL, undefined);
  assert.equal(env.E2E_LANES_LANE_DATABASES, undefined);
});

test('reports SERVER_EXITED with the exit code and log tail when the process dies before it is healthy', async (t) => {
  const logDir = tempDir(t);
  const port = await freePort();
  const error = await startFailure(startServer({ name: 'backend', command: nodeCommand('exit-early.mjs'), health: '/health' }, laneContext({ backend: port }), { logDir }));

  assertLanesError(error, 'SERVER_EXITED');
  assert.match(error.message, /Server "backend" for project "chromium-a" exited with code 3/);
  assert.match(error.message, new RegExp(`GET http://localhost:${port}/health`));
  assert.match(error.message, /Last 30 log lines:/);
  assert.match(error.message, /\| line 11\n/);
  assert.match(error.message, /\| line 40\n/);
  assert.doesNotMatch(error.message, /\| line 10\n/, 'only the last 30 lines');
  assert.ok(error.message.includes(`Log: ${path.join(logDir, 'backend.log')}`));
  assert.ok(error.hint);
  assert.equal(error.details.exitCode, 3);
  assert.match(readFileSync(path.join(logDir, 'backend.log'), 'utf8'), /^\S+Z line 1\n/m);
});

test('reports SERVER_EXITED when the command cannot be spawned', async (t) => {
  const error = await startFailure(
    startServer({ name: 'backend', command: ['/nonexistent/e2e-lanes-binary'], health: false }, laneContext({}), { logDir: tempDir(t) }),
  );
  assertLanesError(error, 'SERVER_EXITED');
  assert.match(error.message, /could not be started \(spawn \/nonexistent\/e2e-lanes-binary ENOENT\)/);
});

test('reports SERVER_START_TIMEOUT when health never answers 2xx and kills the process', async (t) => {
  const logDir = tempDir(t);
  const port = await freePort();
  const pidFile = path.join(logDir, 'server.pid');
  reapPidFileAfter(t, pidFile);
  const started = Date.now();
  const error = await startFailure(
    startServer(
      { name: 'backend', command: nodeCommand('http-server.mjs'), health: '/health', timeout: 1_200, env: { HEALTH_STATUS: '500', PID_FILE: pidFile } },
      laneContext({ backend: port }),
      { logDir },
    ),
  );
  assertLanesError(error, 'SERVER_START_TIMEOUT');
  assert.ok(Date.now() - started < 4_000, 'gives up near the deadline');
  assert.match(error.message, new RegExp(`did not answer GET http://localhost:${port}/health with 2xx/3xx within 1\\.2 s \\(last attempt: answered HTTP 500`));
  assert.match(error.message, new RegExp(`\\| listening on ${port}`));
  assert.match(error.hint ?? '', /timeout/);
  assert.ok(isGone(await readPidFile(pidFile)), 'the process was killed before the error was thrown');
});

test('gives up on a server that answers nothing but 5xx after 5 s (unhealthyAfterMs), not after its timeout, with its last answer', async (t) => {
  const logDir = tempDir(t);
  const port = await freePort();
  const pidFile = path.join(logDir, 'server.pid');
  reapPidFileAfter(t, pidFile);
  const started = Date.now();
  const error = await startFailure(
    startServer(
      { name: 'backend', command: nodeCommand('http-server.mjs'), health: '/health', env: { HEALTH_STATUS: '503', PID_FILE: pidFile } },
      laneContext({ backend: port }),
      { logDir },
    ),
  );
  const took = Date.now() - started;
  assertLanesError(error, 'SERVER_UNHEALTHY');
  assert.ok(took >= 5_000 && took < 9_000, `gave up after about 5 s of 5xx answers, not the 60 s timeout (took ${took} ms)`);
  assert.match(error.message, new RegExp(`answered GET http://localhost:${port}/health with nothing but 5xx for 5(\\.\\d)? s \\(\\d+ polls\\); last answer: HTTP 503, body "health"\\. Gave up before its timeout of 60 s`));
  assert.match(error.message, new RegExp(`\\| listening on ${port}`));
  assert.match(error.hint ?? '', /unhealthyAfterMs/);
  assert.ok(isGone(await readPidFile(pidFile)), 'the process was killed before the error was thrown');
});

test('unhealthyAfterMs: a shorter window gives up sooner, false waits for the timeout, bad values are refused', async (t) => {
  const port = await freePort();
  const definition = { name: 'backend', command: nodeCommand('http-server.mjs'), health: '/health', env: { HEALTH_STATUS: '500' } };
  let started = Date.now();
  assertLanesError(await startFailure(startServer({ ...definition, unhealthyAfterMs: 600 }, laneContext({ backend: port }), { logDir: tempDir(t) })), 'SERVER_UNHEALTHY');
  assert.ok(Date.now() - started < 3_000);
  started = Date.now();
  const timedOut = await startFailure(startServer({ ...definition, unhealthyAfterMs: false, timeout: 1_500 }, laneContext({ backend: port }), { logDir: tempDir(t) }));
  assertLanesError(timedOut, 'SERVER_START_TIMEOUT');
  assert.match(timedOut.message, /last attempt: answered HTTP 500 "health"/, 'a timeout names the last answer and its body too');
  for (const unhealthyAfterMs of [0, -1, Number.NaN]) {
    const error = await startFailure(startServer({ ...definition, unhealthyAfterMs }, laneContext({ backend: port }), { logDir: tempDir(t) }));
    assertLanesError(error, 'INVALID_OPTION');
    assert.match(error.message, /unhealthyAfterMs/);
  }
});

test('EADDRINUSE on its own port makes an exit SERVER_PORT_IN_USE; EADDRINUSE on another port does not', async (t) => {
  const port = await freePort();
  const exitWith = (lines: string[]): string[] => [process.execPath, '-e', `${lines.map((line) => `console.error(${JSON.stringify(line)});`).join(' ')} process.exit(1)`];
  const own = await startFailure(
    startServer({ name: 'backend', command: exitWith(['Error: listen EADDRINUSE: address already in use 127.0.0.1', '    at Server.setupListenHandle', `  port: ${port}`]) }, laneContext({ backend: port }), { logDir: tempDir(t) }),
  );
  assertLanesError(own, 'SERVER_PORT_IN_USE');
  assert.match(own.message, new RegExp(`Port ${port} of server "backend" for project "chromium-a" was taken by another process after it was checked: the server exited \\(code 1\\) and its log shows EADDRINUSE on port ${port}`));
  const other = await startFailure(
    startServer({ name: 'backend', command: exitWith([`starting on ${port}`, 'inspector: listen EADDRINUSE 127.0.0.1:9229']) }, laneContext({ backend: port }), { logDir: tempDir(t) }),
  );
  assertLanesError(other, 'SERVER_EXITED');
});

test('kills grandchildren started through a shell', async (t) => {
  const logDir = tempDir(t);
  const pidFile = path.join(logDir, 'grandchild.pid');
  reapPidFileAfter(t, pidFile);
  const server = stopAfter(
    t,
    await startServer({ name: 'web', command: shellCommand('spawn-child.mjs'), env: { PID_FILE: pidFile } }, laneContext({ web: await freePort() }), { logDir }),
  );
  const grandchild = await readPidFile(pidFile);
  assert.notEqual(grandchild, server.pid);
  assert.ok(!isGone(grandchild));

  await server.stop();
  assert.ok(isGone(grandchild), 'the grandchild is gone after stop()');
  assert.ok(isGone(server.pid));
});

test('escalates to SIGKILL of the group when the server ignores the stop signal', async (t) => {
  const logDir = tempDir(t);
  const pidFile = path.join(logDir, 'server.pid');
  reapPidFileAfter(t, pidFile);
  const server = stopAfter(
    t,
    await startServer(
      { name: 'stubborn', command: shellCommand('spawn-child.mjs'), stopTimeout: 300, env: { IGNORE_SIGTERM: '1', PID_FILE: pidFile } },
      laneContext({ stubborn: await freePort() }),
      { logDir },
    ),
  );
  const grandchild = await readPidFile(pidFile);
  const started = Date.now();
  await Promise.all([server.stop(), server.stop()]);
  assert.ok(Date.now() - started >= 300, 'waited stopTimeout first');
  assert.ok(isGone(grandchild));
  assert.match(readFileSync(server.logFile, 'utf8'), /ignoring SIGTERM/);
});

test('refuses a port that another process already listens on', async (t) => {
  const logDir = tempDir(t);
  for (const host of ['127.0.0.1', '::1']) {
    const port = await freePort();
    const other = net.createServer();
    const listening = await new Promise<boolean>((resolve) => {
      other.once('error', () => resolve(false));
      other.listen({ port, host, ipv6Only: host === '::1' }, () => resolve(true));
    });
    if (!listening) {
      t.diagnostic(`cannot listen on ${host}; skipped that family`);
      continue;
    }
    t.after(() => other.close());
    const error = await startFailure(startServer({ name: 'backend', command: nodeCommand('http-server.mjs') }, laneContext({ backend: port }), { logDir }));
    assertLanesError(error, 'SERVER_PORT_IN_USE');
    assert.match(error.message, new RegExp(`Port ${port} of server "backend" for project "chromium-a" is already in use`));
    assert.match(error.hint ?? '', /npx e2e-lanes gc/);
  }
});

test('never writes the database password into the log', async (t) => {
  const password = 'Sup3r-s3cret_pw';
  const logDir = tempDir(t);
  await using server = await startServer(
    { name: 'backend', command: nodeCommand('http-server.mjs'), env: { ECHO: `password is ${password}; token tok-XYZ-123` } },
    laneContext({ backend: await freePort() }, { databaseUrl: `postgres://lane:${password}@127.0.0.1:5432/lane_db` }),
    { logDir, secrets: ['tok-XYZ-123'] },
  );
  await server.stop();
  const text = readFileSync(server.logFile, 'utf8');
  assert.ok(!text.includes(password), text);
  assert.ok(!text.includes('tok-XYZ-123'), text);
  assert.match(text, /echo: password is \*\*\*; token \*\*\*/);
  assert.match(text, /DATABASE_URL=postgres:\/\/lane:\*\*\*@127\.0\.0\.1:5432\/lane_db/);
});

test('kills the process when the start is aborted', async (t) => {
  const logDir = tempDir(t);
  const pidFile = path.join(logDir, 'server.pid');
  reapPidFileAfter(t, pidFile);
  const controller = new AbortController();
  const starting = startServer(
    { name: 'slow', command: nodeCommand('http-server.mjs'), env: { LISTEN_DELAY_MS: '5000', PID_FILE: pidFile } },
    laneContext({ slow: await freePort() }),
    { logDir, signal: controller.signal },
  );
  const pid = await readPidFile(pidFile);
  controller.abort(new Error('run cancelled'));
  const error = await startFailure(starting);
  assert.match(String(error), /run cancelled/);
  assert.ok(isGone(pid));
});

test('rejects bad options with INVALID_OPTION naming the option', async (t) => {
  const logDir = tempDir(t);
  const ctx = laneContext({ backend: 4100 });
  const cases: Array<[Parameters<typeof startServer>[0], RegExp]> = [
    [{ name: 'backend', command: '' }, /`command`/],
    [{ name: 'backend', command: 'x', health: 'health' }, /`health`/],
    [{ name: 'backend', command: 'x', timeout: -1 }, /`timeout`/],
    [{ name: 'backend', command: 'x', port: 'nope' }, /`port` names "nope"/],
    [{ name: 'worker', command: 'x' }, /no port/],
    [{ name: 'backend', command: 'x', stopSignal: 'SIGNOPE' as NodeJS.Signals }, /`stopSignal`/],
  ];
  for (const [def, message] of cases) {
    const error = await startFailure(startServer(def, ctx, { logDir }));
    assertLanesError(error, 'INVALID_OPTION');
    assert.match(error.message, message);
  }
});

test("gets the variables of its envFile, with the lane's own winning and a warning naming file and variables, never values", async (t) => {
  const dir = tempDir(t);
  writeFileSync(path.join(dir, '.env.e2e'), 'FROM_FILE=one\nPORT=9\nDATABASE_URL=postgres://dev:file-secret@127.0.0.1:5432/myapp_dev\nSHARED=first\n');
  writeFileSync(path.join(dir, '.env.local'), 'SHARED=second\n');
  const port = await freePort();
  const databaseUrl = 'postgres://lane:pw-123@127.0.0.1:5432/lane_db';
  const warnings: string[] = [];
  const original = console.warn;
  console.warn = (...args: unknown[]) => void warnings.push(args.join(' '));
  t.after(() => {
    console.warn = original;
  });
  await using server = await startServer(
    { name: 'backend', command: nodeCommand('http-server.mjs'), cwd: dir, envFile: ['.env.e2e', '.env.local'] },
    laneContext({ backend: port }, { databaseUrl }),
    { logDir: tempDir(t) },
  );
  const env = JSON.parse((await get(`${server.url}/env`)).body) as Record<string, string>;
  assert.equal(env.FROM_FILE, 'one');
  assert.equal(env.SHARED, 'second', 'later files win');
  assert.equal(env.PORT, String(port));
  assert.equal(env.DATABASE_URL, databaseUrl);
  const warning = warnings.find((line) => line.includes('.env.e2e'));
  assert.ok(warning, warnings.join('\n'));
  assert.match(warning, /\(envFile of server "backend", project "chromium-a"\) sets DATABASE_URL, PORT: the lane's own values win/);
  assert.doesNotMatch(warnings.join('\n'), /file-secret|myapp_dev/);
  await assert.rejects(
    startServer({ name: 'backend', command: nodeCommand('http-server.mjs'), cwd: dir, envFile: 'missing.env' }, laneContext({ backend: await freePort() }), { logDir: tempDir(t) }),
    (error) => isLanesError(error, 'INVALID_OPTION') && error.message.includes(path.join(dir, 'missing.env')),
  );
});

test("a server that loads its own .env keeps the lane's variables: the process environment wins", async (t) => {
  const dir = tempDir(t);
  writeFileSync(path.join(dir, '.env'), 'DATABASE_URL=postgres://dev@127.0.0.1:5432/myapp_dev\nPORT=9\nFROM_OWN_FILE=yes\n');
  const port = await freePort();
  const databaseUrl = 'postgres://lane:pw-123@127.0.0.1:5432/lane_db';
  await using server = await startServer({ name: 'backend', command: nodeCommand('dotenv-server.mjs'), cwd: dir, health: '/' }, laneContext({ backend: port }, { databaseUrl }), { logDir: tempDir(t) });
  const env = JSON.parse((await get(`${server.url}/env`)).body) as Record<string, string>;
  assert.equal(env.FROM_OWN_FILE, 'yes');
  assert.equal(env.DATABASE_URL, databaseUrl);
  assert.equal(env.PORT, String(port));
});

test("health 'tcp' waits for the port to accept connections; a server that never listens times out saying so", async (t) => {
  const port = await freePort();
  await using server = await startServer({ name: 'socket', command: nodeCommand('http-server.mjs'), health: 'tcp', env: { LISTEN_DELAY_MS: '300' } }, laneContext({ socket: port }), { logDir: tempDir(t) });
  assert.equal((await get(`${server.url}/health`)).status, 200, 'listening once ready');
  const never = await freePort();
  await assert.rejects(
    startServer({ name: 'silent', command: [process.execPath, '-e', 'setTimeout(() => {}, 20000)'], health: 'tcp', timeout: 600 }, laneContext({ silent: never }), { logDir: tempDir(t) }),
    (error) => isLanesError(error, 'SERVER_START_TIMEOUT') && new RegExp(`did not accept TCP connections on localhost:${never} within 0\\.6 s`).test(error.message),
  );
});

test("host '127.0.0.1' puts 127.0.0.1 in the URL, the <NAME>_URL variables and the tcp health check", async (t) => {
  const port = await freePort();
  await using server = await startServer({ name: 'socket', command: nodeCommand('http-server.mjs'), health: 'tcp' }, laneContext({ socket: port }), { logDir: tempDir(t), host: '127.0.0.1' });
  assert.equal(server.url, `http://127.0.0.1:${port}`);
  assert.equal(JSON.parse((await get(`${server.url}/env`)).body).SOCKET_URL, `http://127.0.0.1:${port}`);
  const never = await freePort();
  await assert.rejects(
    startServer({ name: 'silent', command: [process.execPath, '-e', 'setTimeout(() => {}, 20000)'], health: 'tcp', timeout: 600 }, laneContext({ silent: never }), { logDir: tempDir(t), host: '127.0.0.1' }),
    (error) => isLanesError(error, 'SERVER_START_TIMEOUT') && new RegExp(`did not accept TCP connections on 127\\.0\\.0\\.1:${never} within 0\\.6 s`).test(error.message),
  );
});

test('health { file } waits for the file, relative to cwd, for a server without a port', async (t) => {
  const dir = tempDir(t);
  const script = "setTimeout(() => require('node:fs').writeFileSync('ready.flag', ''), 300); setTimeout(() => {}, 20000);";
  await using server = await startServer({ name: 'worker', command: [process.execPath, '-e', script], cwd: dir, health: { file: 'ready.flag' } }, laneContext({}), { logDir: tempDir(t) });
  assert.ok(readFileSync(path.join(dir, 'ready.flag')) !== undefined);
  assert.equal(server.port, undefined);
  await assert.rejects(
    startServer({ name: 'never', command: [process.execPath, '-e', 'setTimeout(() => {}, 20000)'], cwd: dir, health: { file: 'missing.flag' }, timeout: 500 }, laneContext({}), { logDir: tempDir(t) }),
    (error) => isLanesError(error, 'SERVER_START_TIMEOUT') && error.message.includes(`did not create ${path.join(dir, 'missing.flag')}`),
  );
  assert.throws(() => checkDefinition({ name: 'bad', command: 'x', health: { file: '' } }, laneContext({})), (error) => isLanesError(error, 'INVALID_OPTION') && /'tcp', \{ file: '<path>' \}/.test(error.message));
});

test('a timeout says how many servers were starting at once on how many cores, and a 404 on the health path gets its own hint', async (t) => {
  const logDir = tempDir(t);
  const [first, second, third] = [await freePort(), await freePort(), await freePort()];
  const start = (name: string, port: number, status: string) =>
    startFailure(startServer({ name, command: nodeCommand('http-server.mjs'), health: '/health', timeout: 1_000, env: { HEALTH_STATUS: status } }, laneContext({ [name]: port }), { logDir }));
  const errors = await Promise.all([start('api', first, '404'), start('web', second, '503'), start('worker', third, '503')]);
  for (const error of errors) assertLanesError(error, 'SERVER_START_TIMEOUT');
  const [api, web] = errors as [LanesError, LanesError, LanesError];
  assert.match(api.message, /3 servers were starting at once on \d+ cores?\)/);
  assert.match(api.hint ?? '', new RegExp(`answers 404 at http://localhost:${first}/health: set \`health\` of "api" to a path it serves with 2xx/3xx, or \`health: 'tcp'\``));
  assert.equal(api.details['startingAtOnce'], 3);
  assert.doesNotMatch(web.hint ?? '', /404/);

  const alone = await start('alone', await freePort(), '503');
  assertLanesError(alone, 'SERVER_START_TIMEOUT');
  assert.match(alone.message, /1 server was starting at once on \d+ cores?\)/);
});

test("a server's timeout defaults to Playwright's webServer timeout, 60 s", () => {
  const resolved = resolveServer({ name: 'web', command: 'true' }, { project: 'p', ports: { web: 4100 }, urls: {} }, { logDir: '/tmp' });
  assert.equal(resolved.timeout, 60_000);
  assert.equal(resolveServer({ name: 'web', command: 'true', timeout: 5_000 }, { project: 'p', ports: { web: 4100 }, urls: {} }, { logDir: '/tmp' }).timeout, 5_000);
});
