import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import pg from 'pg';
import { DatabaseAllocator, DATABASES_FILE, DEFAULT_REGISTRY_DATABASE, REGISTRY_TABLE } from '../../src/databases/index.js';
import { withDatabase } from '../../src/postgres/index.js';
import { isLanesError } from '../../src/errors.js';
import { newOwner } from '../../src/state/index.js';
import { exited, runFixture, startFixture } from '../helpers/processes.js';
import { tempDir } from '../helpers/tmp.js';
import { FIXTURES, databasesStartingWith, dropDatabasesStartingWith, query, useBasicAllocators, useTestDatabases } from './helpers.js';

const server = useTestDatabases('alloc');
/** An allocator on the test server with the `basic` fixture, released after the test. */
const allocatorFor = useBasicAllocators(server);

async function exists(name: string): Promise<boolean> {
  return (await databasesStartingWith(server.adminUrl, name)).includes(name);
}

describe('DatabaseAllocator', () => {
  it("opens a truncating lane's reset connection while its users start, and none once closed (also when closed right after the allocation)", async (t) => {
    const resetSessions = async (name: string): Promise<number> =>
      (await query<{ n: number }>(server.adminUrl, "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND application_name = 'e2e-lanes reset'", [name]))[0]!.n;
    const allocator = await allocatorFor(t, { reset: 'truncate' });
    const lane = await allocator.allocateDatabaseForProject('chromium');
    for (let i = 0; i < 200 && (await resetSessions(lane.databaseName)) === 0; i++) await sleep(10);
    assert.equal(await resetSessions(lane.databaseName), 1, 'the reset connection is open before the first reset');
    const reset = await allocator.resetDatabaseForProject('chromium');
    assert.equal(reset.strategy, 'truncate');
    assert.equal(await resetSessions(lane.databaseName), 1, 'the reset used it');
    await allocator.close();
    for (let i = 0; i < 200 && (await resetSessions(lane.databaseName)) > 0; i++) await sleep(10);
    assert.equal(await resetSessions(lane.databaseName), 0, 'closed with the allocator');

    const quick = await allocatorFor(t, { reset: 'truncate', runId: 'run-quick-close' });
    const other = await quick.allocateDatabaseForProject('firefox');
    await quick.close();
    await sleep(500);
    assert.equal(await resetSessions(other.databaseName), 0, 'an allocator closed right after the allocation leaves no connection open');

    const swapping = await allocatorFor(t, { reset: 'swap', runId: 'run-swapping' });
    const swapLane = await swapping.allocateDatabaseForProject('webkit');
    await sleep(300);
    assert.equal(await resetSessions(swapLane.databaseName), 0, 'a swapping lane keeps no such connection');
  });

  it('gives two projects two databases with the seeded rows, and writes in one are invisible in the other', async (t) => {
    const allocator = await allocatorFor(t);
    const [a, b] = await Promise.all([allocator.allocateDatabaseForProject('chromium'), allocator.allocateDatabaseForProject('firefox')]);
    assert.notEqual(a.databaseName, b.databaseName);
    for (const lane of [a, b]) assert.deepEqual(await query(lane.databaseUrl, 'SELECT name FROM "Item" ORDER BY id'), [{ name: 'alpha' }, { name: 'beta' }]);
    await query(a.databaseUrl, `INSERT INTO "Item" (name) VALUES ('only-in-a')`);
    assert.equal((await query(a.databaseUrl, 'SELECT * FROM "Item"')).length, 3);
    assert.equal((await query(b.databaseUrl, 'SELECT * FROM "Item"')).length, 2);
  });

  it('returns the same database when the same lane asks again, and builds no template the second time', async (t) => {
    const first = await allocatorFor(t);
    const lane = await first.allocateDatabaseForProject('webkit');
    const second = await allocatorFor(t, { stateDir: first.options.stateDir, runId: first.runId });
    const again = await second.allocateDatabaseForProject('webkit');
    assert.equal(again.template.built, false);
    assert.equal(again.template.name, lane.template.name);
    assert.equal(again.databaseName, lane.databaseName);
    assert.equal((await second.list()).length, 1);
    // An owner that died while its run goes on is replaced, so reapStale() spares the lane.
    await second.file.update((doc) => {
      doc.entries[0]!.owner.pid = 2 ** 30;
    });
    await second.allocateDatabaseForProject('webkit');
    assert.deepEqual(await second.reapStale(), []);
    const perWorker = await second.allocateDatabaseForProject('webkit', { worker: 1 });
    assert.match(perWorker.databaseName, /_w1$/);
  });

  it('records URLs with the password redacted in allocated-databases.json', async (t) => {
    const allocator = await allocatorFor(t);
    await allocator.allocateDatabaseForProject('secret');
    const text = await readFile(join(allocator.options.stateDir, DATABASES_FILE), 'utf8');
    const password = new URL(server.adminUrl).password;
    if (password) assert.ok(!text.includes(password), 'password leaked into the ledger');
    assert.match(text, /"databaseUrl": "postgres(ql)?:\/\/[^"]*\*\*\*@/);
  });

  it('releases a lane database even while a connection to it is held', async (t) => {
    const allocator = await allocatorFor(t);
    const lane = await allocator.allocateDatabaseForProject('held');
    const client = new pg.Client({ connectionString: lane.databaseUrl });
    client.on('error', () => undefined); // the forced drop terminates it
    await client.connect();
    await client.query('BEGIN');
    await client.query('SELECT * FROM "Item" FOR UPDATE');
    assert.equal(await allocator.releaseDatabaseForProject('held'), true);
    assert.equal(await exists(lane.databaseName), false);
    assert.deepEqual(await allocator.list(), []);
    await client.end().catch(() => undefined);
  });

  it('gives hostile project names distinct databases that work', async (t) => {
    const allocator = await allocatorFor(t);
    const projects = ['"; DROP DATABASE postgres; --', "Robert'); DROP TABLE students;--", '日本語', '中文', 'x'.repeat(300), 'X'.repeat(300)];
    const names = new Set<string>();
    for (const project of projects) {
      const lane = await allocator.allocateDatabaseForProject(project);
      assert.ok(Buffer.byteLength(lane.databaseName) <= 63);
      assert.equal(lane.project, project);
      assert.equal((await query(lane.databaseUrl, 'SELECT count(*)::int AS n FROM "Item"'))[0]?.n, 2);
      names.add(lane.databaseName);
    }
    assert.equal(names.size, projects.length);
    assert.equal((await allocator.releaseRun()).length, projects.length);
    for (const name of names) assert.equal(await exists(name), false);
  });

  it('never drops a pre-existing database it did not create, even when a hand-edited ledger names it', async (t) => {
    const allocator = await allocatorFor(t);
    const mine = `${server.prefix}_precious`;
    const foreign = `${server.prefix}x_precious`; // another prefix: not even this allocator's namespace
    t.after(async () => {
      for (const name of [mine, foreign]) await query(server.adminUrl, `DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)}`);
    });
    for (const name of [mine, foreign]) await query(server.adminUrl, `CREATE DATABASE ${pg.escapeIdentifier(name)}`);
    const dead = { ...newOwner(allocator.runId), pid: 2 ** 30 }; // no such process
    const entry = (project: string, databaseName: string, owner = dead) => ({ runId: allocator.runId, project, owner, databaseName, databaseUrl: 'postgres://x', template: 'x' });
    await allocator.file.update((doc) => {
      doc.entries.push(entry('a', mine), entry('b', foreign), entry('c', mine, newOwner(allocator.runId)), entry('d', 'postgres', newOwner(allocator.runId)));
    });
    const warnings = t.mock.method(console, 'warn', () => undefined);
    const reaped = await allocator.reapStale();
    assert.deepEqual(reaped.map((r) => [r.entry.project, r.dropped]), [['a', false]]);
    assert.equal(await allocator.releaseDatabaseForProject('c'), true);
    await allocator.releaseRun();
    assert.ok(warnings.mock.calls.some((call) => String(call.arguments[0]).includes('not dropping database')));
    assert.equal(await exists(mine), true);
    assert.equal(await exists(foreign), true);
    assert.equal(await exists('postgres'), true);
    // Entries outside this allocator's prefix are left for their own allocator.
    assert.deepEqual((await allocator.list()).map((e) => e.project).sort(), ['b', 'd']);
  });

  it("drops a SIGKILLed owner's database in reapStale()", async (t) => {
    const allocator = await allocatorFor(t);
    const options = JSON.stringify({ prefix: server.prefix, ...pathsOf(allocator), stateDir: allocator.options.stateDir, runId: 'doomed' });
    const { child, firstLine } = await startFixture(t, `${FIXTURES}allocate.ts`, [options, 'victim', 'hold'], {
      FIXTURE_ADMIN_URL: server.adminUrl,
      E2E_LANES_QUIET: '1',
      E2E_LANES_OWNER_PID: '',
    });
    const { databaseName } = JSON.parse(firstLine) as { databaseName: string };
    assert.equal(await exists(databaseName), true);
    assert.deepEqual((await allocator.list()).map((e) => e.alive), [true]);
    child.kill('SIGKILL');
    await exited(child);
    const reaped = await allocator.reapStale();
    assert.deepEqual(reaped.map((r) => [r.entry.databaseName, r.dropped]), [[databaseName, true]]);
    assert.match(reaped[0]?.reason ?? '', /gone/);
    assert.equal(await exists(databaseName), false);
    assert.deepEqual(await allocator.list(), []);
  });

  it('keeps a corrupt allocated-databases.json aside with a warning, and allocation still works', async (t) => {
    const allocator = await allocatorFor(t);
    await writeFile(join(allocator.options.stateDir, DATABASES_FILE), '{"kind": "e2e-lanes/databases", "entr');
    const warnings = t.mock.method(console, 'warn', () => undefined);
    const lane = await allocator.allocateDatabaseForProject('after-corruption');
    assert.equal(await exists(lane.databaseName), true);
    assert.ok(warnings.mock.calls.some((call) => /was unreadable/.test(String(call.arguments[0]))));
    const files = await readdir(allocator.options.stateDir);
    assert.ok(files.some((file) => file.startsWith(`${DATABASES_FILE}.corrupt-`)), files.join(', '));
    assert.equal((await allocator.list()).length, 1);
  });

  for (const registry of ['file', 'postgres'] as const) {
    it(`gives every concurrent allocation of one lane the same database, and none before it exists (registry: ${registry})`, async (t) => {
      const one = await allocatorFor(t, { registry });
      const other = await allocatorFor(t, { registry, stateDir: one.options.stateDir, runId: one.runId }); // its own connections, same ledger
      await Promise.all([one.prepare(), other.prepare()]);
      const lanes = await Promise.all(
        [one, one, other, other, one].map(async (allocator) => {
          const lane = await allocator.allocateDatabaseForProject('contested');
          return { name: lane.databaseName, existed: await exists(lane.databaseName) };
        }),
      );
      assert.equal(new Set(lanes.map((lane) => lane.name)).size, 1);
      assert.deepEqual(
        lanes.map((lane) => lane.existed),
        lanes.map(() => true),
      );
      assert.deepEqual((await one.list()).map((entry) => entry.databaseName), [lanes[0]!.name]);
      assert.deepEqual(await databasesStartingWith(server.adminUrl, lanes[0]!.name), [lanes[0]!.name]);
    });
  }

  it('leaves a lane either recorded with its database or gone with it when a release races its allocation', async (t) => {
    const allocator = await allocatorFor(t, { registry: 'file' });
    await allocator.prepare();
    for (let round = 0; round < 4; round++) {
      const project = `racy-${round}`;
      const allocation = allocator.allocateDatabaseForProject(project);
      // Release as soon as the entry is recorded: usually while the clone runs.
      while (!(await allocator.file.read()).entries.some((entry) => entry.project === project)) await sleep(1);
      await allocator.releaseDatabaseForProject(project);
      const lane = await allocation;
      const recorded = (await allocator.list()).some((entry) => entry.databaseName === lane.databaseName);
      assert.equal(await exists(lane.databaseName), recorded, `round ${round}: database and entry disagree`);
    }
  });

  it('gives two processes allocating one lane at once the same database and one entry', async (t) => {
    const allocator = await allocatorFor(t);
    await allocator.prepare(); // the children find the template built
    const options = JSON.stringify({ prefix: server.prefix, ...pathsOf(allocator), stateDir: allocator.options.stateDir, runId: allocator.runId });
    const env = { FIXTURE_ADMIN_URL: server.adminUrl, E2E_LANES_QUIET: '1', E2E_LANES_OWNER_PID: '' };
    const outputs = await Promise.all([0, 1].map(() => runFixture(`${FIXTURES}allocate.ts`, [options, 'shared', 'exit'], { env, timeoutMs: 60_000 })));
    const names = outputs.map((output) => (JSON.parse(output.trim()) as { databaseName: string }).databaseName);
    assert.equal(names[0], names[1]);
    assert.equal(await exists(names[0]!), true);
    assert.deepEqual((await allocator.list()).map((entry) => [entry.project, entry.databaseName]), [['shared', names[0]]]);
    // This process's allocation of the lane is the same database too.
    assert.equal((await allocator.allocateDatabaseForProject('shared')).databaseName, names[0]);
  });

  it('takes a lane database that exists already but was not recorded (a clone whose entry was lost)', async (t) => {
    const allocator = await allocatorFor(t);
    const template = await allocator.prepare();
    const lane = await allocator.allocateDatabaseForProject('orphan');
    await allocator.file.update((doc) => void (doc.entries = []));
    await query(lane.databaseUrl, `INSERT INTO "Item" (name) VALUES ('kept')`);
    const again = await allocator.allocateDatabaseForProject('orphan');
    assert.equal(again.databaseName, lane.databaseName);
    assert.equal(again.template.name, template.name);
    assert.equal((await query(again.databaseUrl, `SELECT count(*)::int AS n FROM "Item" WHERE name = 'kept'`))[0]?.n, 1);
    assert.equal((await allocator.list()).length, 1);
  });

  for (const registry of ['file', 'postgres'] as const) {
    it(`records nothing for a lane whose clone failed (registry: ${registry})`, async (t) => {
      // A template of its own (no migrations), dropped behind the allocator's back: the clone fails.
      // No ready copies either (pool: 0): a copy would stand in for the dropped template.
      const allocator = await allocatorFor(t, { migrations: false, seed: undefined, registry, runId: `run-fail-${registry}`, pool: 0 });
      const template = await allocator.prepare();
      await dropDatabasesStartingWith(server.adminUrl, template.name);
      const kept = await allocatorFor(t, { stateDir: allocator.options.stateDir, runId: allocator.runId });
      const other = await kept.allocateDatabaseForProject('other'); // an entry of another lane, which must stay
      await assert.rejects(allocator.allocateDatabaseForProject('doomed'), (error) => {
        assert.ok(isLanesError(error, 'DATABASE_CREATE_FAILED'), String(error));
        assert.match(error.message, /does not exist/);
        return true;
      });
      assert.deepEqual((await allocator.list()).map((entry) => entry.databaseName), [other.databaseName]);
      assert.deepEqual(await databasesStartingWith(server.adminUrl, `${server.prefix}_`).then((names) => names.filter((name) => name.includes('doomed'))), []);
      if (registry === 'postgres') {
        const rows = await query(withDatabase(server.adminUrl, DEFAULT_REGISTRY_DATABASE), `SELECT database_name FROM ${REGISTRY_TABLE} WHERE prefix = $1 AND run_id = $2 AND project = 'doomed'`, [server.prefix, allocator.runId]);
        assert.deepEqual(rows, []);
      }
    });
  }

  it('reaps a dead owner\'s entry whose database was never created', async (t) => {
    const allocator = await allocatorFor(t, { registry: 'file' });
    const lane = await allocator.allocateDatabaseForProject('never');
    await query(server.adminUrl, `DROP DATABASE ${pg.escapeIdentifier(lane.databaseName)} WITH (FORCE)`);
    await allocator.file.update((doc) => void (doc.entries[0]!.owner.pid = 2 ** 30));
    const reaped = await allocator.reapStale();
    assert.deepEqual(reaped.map((r) => [r.entry.databaseName, r.dropped]), [[lane.databaseName, false]]);
    assert.deepEqual(await allocator.list(), []);
  });

  it('reuses a few maintenance connections, replaces one the server ended, and closes them on close()', async (t) => {
    const applicationName = `e2e-lanes-test-${randomBytes(4).toString('hex')}`;
    const adminUrl = new URL(server.adminUrl);
    adminUrl.searchParams.set('application_name', applicationName);
    const allocator = await allocatorFor(t, { adminUrl: adminUrl.toString(), registry: 'file' });
    const backends = async (): Promise<number> =>
      (await query<{ n: number }>(server.adminUrl, 'SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1', [applicationName]))[0]!.n;
    await allocator.prepare();
    await Promise.all(['a', 'b', 'c', 'd', 'e', 'f'].map((project) => allocator.allocateDatabaseForProject(project)));
    const open = await backends();
    assert.ok(open >= 1 && open <= 4, `${open} maintenance connections`);
    // The server ends them (as a restart would): the idle clients are dropped, not reused, and nothing crashes.
    await query(server.adminUrl, 'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [applicationName]);
    await sleep(200);
    const lane = await allocator.allocateDatabaseForProject('after-restart');
    assert.equal(await exists(lane.databaseName), true);
    assert.equal(await allocator.releaseDatabaseForProject('a'), true);
    await allocator.close();
    const deadline = Date.now() + 5_000;
    while ((await backends()) > 0 && Date.now() < deadline) await sleep(50);
    assert.equal(await backends(), 0);
  });

  it('warns when the expected connections approach max_connections', async (t) => {
    const allocator = await allocatorFor(t, { expectedConnections: 100_000 });
    const warnings = t.mock.method(console, 'warn', () => undefined);
    await allocator.prepare();
    assert.ok(warnings.mock.calls.some((call) => /max_connections/.test(String(call.arguments[0]))));
  });

  it('shares one instance per state folder and rejects conflicting options', async (t) => {
    const stateDir = await tempDir(t);
    const options = { adminUrl: server.adminUrl, prefix: server.prefix, migrations: false as const, stateDir, runId: 'single' };
    const one = DatabaseAllocator.getInstance(options);
    t.after(() => one.close());
    assert.equal(DatabaseAllocator.getInstance(options), one);
    assert.throws(() => DatabaseAllocator.getInstance({ ...options, prefix: 'other' }), /already created with other options/);
  });
});

function pathsOf(allocator: DatabaseAllocator): { migrations: unknown; seed: unknown } {
  return { migrations: allocator.options.migrations, seed: allocator.options.seed };
}

describe('DatabaseAllocator resets and ready copies', () => {
  it('puts a lane back to the template under the same name and URL, from a ready copy, then refills the pool', async (t) => {
    const allocator = await allocatorFor(t, { pool: 2 });
    const lane = await allocator.allocateDatabaseForProject('fresh');
    await allocator.poolSettled();
    assert.equal(await allocator.readyCopyCount(), 2);
    await query(lane.databaseUrl, `INSERT INTO "Item" (name) VALUES ('written by a test')`);

    const reset = await allocator.resetDatabaseForProject('fresh');
    assert.equal(reset.databaseName, lane.databaseName);
    assert.equal(reset.strategy, 'swap');
    assert.equal(reset.source, 'pool');
    assert.deepEqual(await query(lane.databaseUrl, 'SELECT name FROM "Item" ORDER BY id'), [{ name: 'alpha' }, { name: 'beta' }]);
    await allocator.poolSettled();
    assert.equal(await allocator.readyCopyCount(), 2, 'refilled after the take');
  });

  it('takes a ready copy when a lane boots, and clones when none is left', async (t) => {
    const allocator = await allocatorFor(t, { pool: 1 });
    const template = await allocator.prepare();
    await allocator.poolSettled();
    const copies = await databasesStartingWith(server.adminUrl, `${server.prefix}_pool_${template.hash}_`);
    assert.ok(copies.length > 0, 'a ready copy exists');
    const lane = await allocator.allocateDatabaseForProject('booted');
    const gone = [];
    for (const copy of copies) if (!(await exists(copy))) gone.push(copy);
    assert.equal(gone.length, 1, 'one ready copy became the lane database');
    assert.deepEqual(await query(lane.databaseUrl, 'SELECT name FROM "Item" ORDER BY id'), [{ name: 'alpha' }, { name: 'beta' }]);
  });

  it('truncate puts the rows back without ending the sessions on the lane database', async (t) => {
    const allocator = await allocatorFor(t, { pool: 0, reset: 'truncate' });
    const lane = await allocator.allocateDatabaseForProject('kept-session');
    const app = new pg.Client({ connectionString: lane.databaseUrl });
    app.on('error', () => undefined); // the lane is dropped after the test
    await app.connect();
    t.after(() => app.end().catch(() => undefined));
    const pid = (await app.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    await app.query(`INSERT INTO "Item" (name) VALUES ('written by a test'), ('and another')`);
    await app.query(`DELETE FROM "Item" WHERE name = 'alpha'`);
    const reset = await allocator.resetDatabaseForProject('kept-session');
    assert.equal(reset.source, 'truncate');
    assert.deepEqual((await app.query('SELECT name FROM "Item" ORDER BY id')).rows, [{ name: 'alpha' }, { name: 'beta' }]);
    assert.equal((await app.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid, pid, 'the same session, never ended');
    // The sequence is back too: the next row gets the id after the seed's.
    assert.deepEqual((await app.query(`INSERT INTO "Item" (name) VALUES ('next') RETURNING id`)).rows, [{ id: 3 }]);
  });

  it("a truncate blocked by a test's open transaction fails with DATABASE_RESET_FAILED naming it, and the next reset gets a clean lane", async (t) => {
    const allocator = await allocatorFor(t, { pool: 0, reset: 'truncate', resetLockTimeoutMs: 300 });
    const lane = await allocator.allocateDatabaseForProject('blocked');
    const holder = new pg.Client({ connectionString: lane.databaseUrl, application_name: 'lingering-test' });
    holder.on('error', () => undefined); // the lane is dropped after the test
    await holder.connect();
    t.after(() => holder.end().catch(() => undefined));
    await holder.query(`INSERT INTO "Item" (name) VALUES ('dirty')`);
    await holder.query('BEGIN');
    await holder.query('SELECT * FROM "Item" FOR UPDATE');
    await assert.rejects(allocator.resetDatabaseForProject('blocked'), (error) => {
      assert.ok(isLanesError(error, 'DATABASE_RESET_FAILED'), String(error));
      assert.match(error.message, /lingering-test/);
      return true;
    });
    await holder.query('ROLLBACK');
    await allocator.resetDatabaseForProject('blocked');
    assert.deepEqual(await query(lane.databaseUrl, 'SELECT name FROM "Item" ORDER BY id'), [{ name: 'alpha' }, { name: 'beta' }]);
  });

  it('refuses to reset a lane this run has no database for', async (t) => {
    const allocator = await allocatorFor(t, { pool: 0 });
    await assert.rejects(allocator.resetDatabaseForProject('never-booted'), (error) => isLanesError(error, 'LANE_NOT_FOUND'));
  });

  it('rejects bad reset and pool options, naming them', () => {
    assert.throws(() => new DatabaseAllocator({ reset: 'wipe' as never }), (error) => isLanesError(error, 'INVALID_OPTION') && /database reset "wipe"/.test(error.message));
    assert.throws(() => new DatabaseAllocator({ pool: -1 }), (error) => isLanesError(error, 'INVALID_OPTION') && /database pool -1/.test(error.message));
  });
});
