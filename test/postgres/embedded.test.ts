import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { acquireEmbeddedPostgres, describeTarget, reapEmbeddedPostgres, withClient } from '../../src/postgres/index.js';
import { passwordOf } from '../../src/redact.js';
import { isGone, postmasterPidOf, privateServer, readEmbeddedUsers, spawnRun, uidOf, waitFor } from './helpers.js';

interface PortEntry {
  runId: string;
  project: string;
  ports: Record<string, number>;
  owner: { pid: number };
}

/** The port entries of the server of `dataDir` (the ledger is shared by every test server). */
function readPorts(stateDir: string, dataDir: string): PortEntry[] {
  const file = join(stateDir, 'allocated-ports.json');
  const entries: PortEntry[] = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')).entries : [];
  return entries.filter((entry) => entry.project === dataDir);
}

// Every test has its own server (data dir, state folder, port): they run concurrently.
describe('the embedded server', { concurrency: true }, () => {
  it('starts the embedded server, answers select 1 and runs as a non-root user', async (t) => {
    const options = privateServer(t);
    const server = options.own(await acquireEmbeddedPostgres(options));

    assert.equal(server.started, true);
    assert.ok(server.version >= 180000, `version ${server.version}`);
    assert.equal(describeTarget(server.adminUrl), `127.0.0.1:${server.port}/postgres`);
    const rows = await withClient(server.adminUrl, async (client) => (await client.query('select 1 as one')).rows);
    assert.deepEqual(rows, [{ one: 1 }]);
    assert.notEqual(uidOf(server.postmasterPid), 0, 'the postmaster does not run as root');

    const password = passwordOf(server.adminUrl)!;
    const passwordFile = join(options.dataDir, '..', 'postgres.password');
    assert.equal(statSync(passwordFile).mode & 0o777, 0o600);
    const usersText = readFileSync(join(options.dataDir, '..', 'embedded-postgres.json'), 'utf8');
    assert.ok(!usersText.includes(password), 'the users file never holds the password');

    const [entry, ...others] = readPorts(options.stateDir, options.dataDir);
    assert.equal(others.length, 0);
    assert.deepEqual(entry?.ports, { postgres: server.port });
    assert.equal(entry?.owner.pid, server.postmasterPid, 'the port entry is owned by the postmaster');
  });

  it('two concurrent runs share one server, which stops only after the last release', async (t) => {
    const options = privateServer(t);
    const [a, b] = await Promise.all([spawnRun(t, { ...options, runId: 'run-a' }), spawnRun(t, { ...options, runId: 'run-b' })]);

    assert.equal(a.info.port, b.info.port);
    assert.equal(a.info.postmasterPid, b.info.postmasterPid);
    assert.deepEqual([a.info.started, b.info.started].sort(), [false, true], 'exactly one run started the server');
    assert.equal(readEmbeddedUsers(options.dataDir).servers[0]?.users.length, 2);

    await a.release();
    assert.ok(!isGone(a.info.postmasterPid), 'the server survives the first release');
    await withClient(b.info.adminUrl, (client) => client.query('select 1'));

    await b.release();
    assert.ok(await waitFor(() => isGone(b.info.postmasterPid)), 'the last release stops the server');
    assert.deepEqual(readEmbeddedUsers(options.dataDir).servers, []);
    assert.deepEqual(readPorts(options.stateDir, options.dataDir), [], 'the port entry is released');
    assert.equal(postmasterPidOf(options.dataDir), undefined, 'the server shut down cleanly');
  });

  it('a SIGKILLed run is reaped at the next acquire, and the last release stops the server', async (t) => {
    const options = privateServer(t);
    const dead = await spawnRun(t, { ...options, runId: 'run-killed' });
    await dead.kill();
    assert.ok(!isGone(dead.info.postmasterPid), 'the detached server outlives the killed run');

    const server = options.own(await acquireEmbeddedPostgres({ ...options, runId: 'run-next' }));
    assert.equal(server.started, false);
    assert.equal(server.postmasterPid, dead.info.postmasterPid);
    const users = readEmbeddedUsers(options.dataDir).servers[0]?.users ?? [];
    assert.deepEqual(users.map((user) => user.runId), ['run-next'], 'the killed run was reaped');

    await server.release();
    assert.ok(await waitFor(() => isGone(server.postmasterPid)), 'the server is stopped');
  });

  it('a server whose starting run had a temporary state folder, removed since, stops without creating that folder again', async (t) => {
    const base = privateServer(t);
    const stateDir = join(dirname(base.dataDir), 'short-lived-state');
    const options = { ...base, stateDir };
    const server = await acquireEmbeddedPostgres(options);
    assert.ok(existsSync(join(stateDir, 'allocated-ports.json')), 'the port is recorded in the run\'s state folder');
    rmSync(stateDir, { recursive: true, force: true });
    await server.release();
    assert.ok(await waitFor(() => isGone(server.postmasterPid)), 'the last user stopped the server');
    assert.equal(existsSync(stateDir), false, 'the removed state folder stays removed');
  });

  it('restarts after the postmaster was SIGKILLed, despite its stale postmaster.pid', async (t) => {
    const options = privateServer(t);
    const first = options.own(await acquireEmbeddedPostgres(options));
    process.kill(first.postmasterPid, 'SIGKILL');
    assert.ok(await waitFor(() => isGone(first.postmasterPid)));
    assert.equal(postmasterPidOf(options.dataDir), first.postmasterPid, 'postmaster.pid is left behind');

    const second = options.own(await acquireEmbeddedPostgres(options));
    assert.equal(second.started, true);
    assert.notEqual(second.postmasterPid, first.postmasterPid);
    await withClient(second.adminUrl, (client) => client.query('select 1'));
    assert.deepEqual(
      readPorts(options.stateDir, options.dataDir).map((entry) => entry.owner.pid),
      [second.postmasterPid],
      'only the new server holds a port',
    );
    await first.release();
    assert.ok(!isGone(second.postmasterPid), 'a release for the dead server does not stop the new one');
  });

  it('adopts a running server whose users file was lost, and rebuilds a corrupt users file', async (t) => {
    const options = privateServer(t);
    const first = options.own(await acquireEmbeddedPostgres(options));
    writeFileSync(join(options.dataDir, '..', 'embedded-postgres.json'), '{ not json');

    const second = options.own(await acquireEmbeddedPostgres(options));
    assert.equal(second.started, false);
    assert.equal(second.postmasterPid, first.postmasterPid);
    assert.equal(second.port, first.port);
  });

  it('keeps the data dir between runs and restores a lost password file', async (t) => {
    const options = privateServer(t);
    const first = options.own(await acquireEmbeddedPostgres(options));
    await withClient(first.adminUrl, (client) => client.query('create database kept'));
    await first.release();
    assert.ok(await waitFor(() => isGone(first.postmasterPid)));

    writeFileSync(join(options.dataDir, '..', 'postgres.password'), '');
    const second = options.own(await acquireEmbeddedPostgres(options));
    assert.equal(second.started, true);
    assert.notEqual(second.adminUrl, first.adminUrl, 'a new password was set');
    const { rows } = await withClient(second.adminUrl, (client) => client.query("select 1 from pg_database where datname = 'kept'"));
    assert.equal(rows.length, 1, 'the database of the first run is still there');
  });

  it('reapEmbeddedPostgres stops a server whose only user died', async (t) => {
    const options = privateServer(t);
    const dead = await spawnRun(t, { ...options, runId: 'run-killed' });
    await dead.kill();

    assert.deepEqual(await reapEmbeddedPostgres(options), { reaped: 1, users: 0, stopped: true });
    assert.ok(await waitFor(() => isGone(dead.info.postmasterPid)));
    assert.deepEqual(await reapEmbeddedPostgres(options), { reaped: 0, users: 0, stopped: false });
  });

  it('keeps the heartbeat of its user and of the port entry fresh while the run lives', async (t) => {
    const options = privateServer(t);
    const server = options.own(await acquireEmbeddedPostgres({ ...options, leaseMs: 1_000 }));
    const before = readEmbeddedUsers(options.dataDir).servers[0]!.users[0]!.heartbeatAt;
    const portBefore = readPorts(options.stateDir, options.dataDir)[0]!.owner;

    assert.ok(await waitFor(() => readEmbeddedUsers(options.dataDir).servers[0]?.users[0]?.heartbeatAt !== before, 3_000), 'the user heartbeat moved');
    assert.ok(await waitFor(() => JSON.stringify(readPorts(options.stateDir, options.dataDir)[0]?.owner) !== JSON.stringify(portBefore), 3_000), 'the port heartbeat moved');
    await server.release();
  });

  it('leaves Ctrl-C to the run: the run dies of SIGINT, the detached server does not notice', async (t) => {
    const options = privateServer(t);
    const server = options.own(await acquireEmbeddedPostgres(options));
    const run = await spawnRun(t, { ...options, runId: 'run-ctrl-c' }, { detached: true });

    const exited = once(run.child, 'exit');
    process.kill(-run.child.pid!, 'SIGINT'); // what a terminal does: signal the whole foreground group
    const [code, signal] = await exited;
    assert.deepEqual({ code, signal }, { code: null, signal: 'SIGINT' }, 'no exit hook turned SIGINT into process.exit()');
    assert.ok(!isGone(server.postmasterPid), 'the server ignored the Ctrl-C of the run');
    await withClient(server.adminUrl, (client) => client.query('select 1'));
  });

  it('as root, falls back to a folder under the temp folder when the user postgres cannot reach the data dir', { skip: process.getuid?.() !== 0 && 'needs root' }, async (t) => {
    const options = privateServer(t);
    const hidden = join(options.dataDir, '..', 'private');
    mkdirSync(hidden, { mode: 0o700 });
    const server = await acquireEmbeddedPostgres({ ...options, dataDir: join(hidden, 'postgres') });
    t.after(() => rmSync(dirname(server.dataDir), { recursive: true, force: true }));
    options.own(server);

    assert.ok(server.dataDir.startsWith(tmpdir()), server.dataDir);
    assert.notEqual(dirname(server.dataDir), hidden);
    await withClient(server.adminUrl, (client) => client.query('select 1'));
  });
});
