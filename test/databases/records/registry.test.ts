import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeEach, describe, it, type TestContext } from 'node:test';
import pg from 'pg';
import { DatabaseAllocator, DATABASES_FILE, DEFAULT_REGISTRY_DATABASE, REGISTRY_TABLE, type DatabaseAllocatorOptions } from '../../../src/databases/index.js';
import { ensureRegistry } from '../../../src/databases/records/registry.js';
import { isLanesError } from '../../../src/errors.js';
import { withDatabase } from '../../../src/postgres/index.js';
import { tempDir } from '../../helpers/tmp.js';
import { FIXTURES, databasesStartingWith, query, useTestDatabases } from '../helpers.js';
import { startHost, type SimulatedHost } from '../simulated-host.js';

const server = useTestDatabases('reg');
const basic = { migrations: `${FIXTURES}basic/migrations`, seed: `${FIXTURES}basic/seed.ts` };
const PROJECTS = ['chromium', 'firefox', 'Mobile Safari'];

/** The registry database of these tests: their own, so the registry starts empty and stays private. */
const registryDatabase = `${server.prefix}_reg`;
const registryUrl = (): string => withDatabase(server.adminUrl, registryDatabase);

/** The admin URL of these tests: it names a database of their own, which must stay empty. */
let adminUrl: string;
beforeEach(async () => {
  if (adminUrl) return;
  const name = `${server.prefix}_admin`;
  await query(server.adminUrl, `CREATE DATABASE ${pg.escapeIdentifier(name)}`);
  adminUrl = withDatabase(server.adminUrl, name);
});

interface Row {
  database_name: string;
  host: string;
  run_id: string;
  shard: string | null;
  live: boolean;
  renewed: boolean;
}

async function rows(runId?: string): Promise<Row[]> {
  return query<Row>(
    registryUrl(),
    `SELECT database_name, host, run_id, shard, expires_at > now() AS live, heartbeat_at > created_at AS renewed FROM ${REGISTRY_TABLE}
     WHERE prefix = $1 AND ($2::text IS NULL OR run_id = $2) ORDER BY database_name`,
    [server.prefix, runId ?? null],
  );
}

async function existing(names: string[]): Promise<string[]> {
  const all = new Set(await databasesStartingWith(server.adminUrl, `${server.prefix}_`));
  return names.filter((name) => all.has(name)).sort();
}

async function hostOf(t: TestContext, host: string | undefined, runId: string, extra: Record<string, unknown> = {}, projects = PROJECTS): Promise<SimulatedHost> {
  const options = { prefix: server.prefix, ...basic, registryDatabase, runId, ...extra };
  return startHost(t, { ...(host ? { host } : {}), options, projects, adminUrl });
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** An allocator in the test's own state folder; after the test it releases its run, then the folder goes. */
async function allocatorFor(t: TestContext, options: DatabaseAllocatorOptions): Promise<DatabaseAllocator> {
  const stateDir = await mkdtemp(join(tmpdir(), 'e2e-lanes-reg-'));
  const allocator = new DatabaseAllocator({ adminUrl, prefix: server.prefix, ...basic, registryDatabase, stateDir, ...options });
  t.after(async () => {
    await allocator.releaseRun().catch(() => undefined);
    await allocator.close();
    await rm(stateDir, { recursive: true, force: true });
  });
  return allocator;
}

const names = (host: SimulatedHost): string[] => host.ready.lanes.map((lane) => lane.databaseName).sort();

describe('lane registry on a shared server', () => {
  it('creates its table once when many processes start at the same time', async () => {
    const fresh = `${server.prefix}_fresh`;
    await query(server.adminUrl, `CREATE DATABASE ${pg.escapeIdentifier(fresh)}`);
    const url = withDatabase(server.adminUrl, fresh);
    const clients = await Promise.all(Array.from({ length: 8 }, async () => {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      return client;
    }));
    try {
      await Promise.all(clients.map((client) => ensureRegistry(client, 'test')));
      assert.deepEqual(await query(url, `SELECT count(*)::int AS n FROM ${REGISTRY_TABLE}`), [{ n: 0 }]);
    } finally {
      await Promise.all(clients.map((client) => client.end()));
    }
  });

  it('brings a registry of an older format up to date', async () => {
    const old = `${server.prefix}_old`;
    await query(server.adminUrl, `CREATE DATABASE ${pg.escapeIdentifier(old)}`);
    const url = withDatabase(server.adminUrl, old);
    await query(url, `CREATE SCHEMA e2e_lanes; CREATE TABLE ${REGISTRY_TABLE} (database_name text PRIMARY KEY, prefix text NOT NULL, run_id text NOT NULL,
      project text NOT NULL, worker integer, shard text, host text NOT NULL, pid integer NOT NULL, pid_start bigint, template text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(), heartbeat_at timestamptz NOT NULL DEFAULT now(), expires_at timestamptz NOT NULL)`);
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      await ensureRegistry(client, 'test');
      await ensureRegistry(client, 'test');
    } finally {
      await client.end();
    }
    const columns = await query<{ name: string }>(url, `SELECT attname AS name FROM pg_attribute WHERE attrelid = $1::regclass AND attname = 'state_dir'`, [REGISTRY_TABLE]);
    assert.deepEqual(columns, [{ name: 'state_dir' }]);
  });

  it('gives the shards of one CI run on two machines distinct databases for the same projects, and builds the template once', async (t) => {
    const salt = join(await tempDir(t), 'salt');
    await writeFile(salt, randomUUID()); // a template nobody built yet
    const github = { CI: 'true', GITHUB_ACTIONS: 'true', GITHUB_RUN_ID: '4242', GITHUB_RUN_ATTEMPT: '1', GITHUB_JOB: 'e2e', SEED_DELAY_MS: '1500' };
    const shard = async (host: string, argv: string) =>
      startHost(t, { host, argv: [argv], env: github, adminUrl, projects: PROJECTS, options: { prefix: server.prefix, ...basic, registryDatabase, hashInputs: [salt] } });
    const [a, b] = await Promise.all([shard('host-a', '--shard=1/2'), shard('host-b', '--shard=2/2')]);

    assert.match(a.ready.runId, /^gh-e2e-4242-1-[0-9a-f]{6}-s1of2$/);
    assert.match(b.ready.runId, /^gh-e2e-4242-1-[0-9a-f]{6}-s2of2$/);
    assert.deepEqual([a.ready.registry, b.ready.registry], ['postgres', 'postgres']);
    const all = [...names(a), ...names(b)];
    assert.equal(new Set(all).size, 6, all.join(', '));
    assert.deepEqual(await existing(all), all.sort());

    // The template: one machine built it, the other waited on the advisory lock and reused it.
    assert.equal(a.ready.template.name, b.ready.template.name);
    assert.deepEqual([a.ready.template.built, b.ready.template.built].sort(), [false, true]);
    const waiter = a.ready.template.built ? b : a;
    assert.ok(waiter.logs.some((line) => /waiting for another process to finish building template/.test(line)), waiter.logs.join('\n'));

    const recorded = await rows();
    assert.deepEqual(recorded.map((row) => row.database_name), all.sort());
    assert.deepEqual(
      new Set(recorded.map((row) => `${row.host} ${row.run_id} ${row.shard}`)),
      new Set([`host-a ${a.ready.runId} 1/2`, `host-b ${b.ready.runId} 2/2`]),
    );

    assert.deepEqual((await a.ask<string[]>('release')).sort(), names(a));
    assert.deepEqual((await b.ask<string[]>('release')).sort(), names(b));
    assert.deepEqual(await existing(all), []);
    assert.deepEqual(await rows(), []);
  });

  it("reaps a SIGKILLed machine's lanes only once their lease expired, and keeps its own alive", async (t) => {
    const leaseMs = 3_000;
    const [a, b] = await Promise.all([hostOf(t, 'host-a', 'run-a', { leaseMs }), hostOf(t, 'host-b', 'run-b', { leaseMs })]);
    await a.kill();

    // host-b cannot check host-a's pids: the lease decides, and it has not expired yet.
    const early = (await b.ask<{ runId: string }[]>('reap')).filter((item) => item.runId === 'run-a');
    const leaseRunning = (await rows('run-a')).every((row) => row.live);
    assert.ok(leaseRunning, 'inconclusive: the lease expired before the first reap was checked');
    assert.deepEqual(early, []);
    assert.deepEqual(await existing(names(a)), names(a));

    await until("host-a's lease expired", async () => (await rows('run-a')).every((row) => !row.live));
    const late = (await b.ask<{ databaseName: string; runId: string; host: string; reason: string; dropped: boolean }[]>('reap')).filter((item) => item.runId === 'run-a');
    assert.deepEqual(late.map((item) => item.databaseName).sort(), names(a));
    for (const item of late) {
      assert.equal(item.dropped, true);
      assert.equal(item.host, 'host-a');
      assert.match(item.reason, /lease of host-a \(pid \d+\) expired/);
    }
    assert.deepEqual(await existing(names(a)), []);
    assert.deepEqual(await rows('run-a'), []);

    // host-b renewed its own leases all along.
    assert.deepEqual(await existing(names(b)), names(b));
    const own = await rows('run-b');
    assert.ok(own.every((row) => row.live && row.renewed), JSON.stringify(own));
  });

  it('reaps the lanes of a dead process on its own host at once, whatever the lease', async (t) => {
    const [a, b] = await Promise.all([hostOf(t, 'host-c', 'run-c', { leaseMs: 120_000 }), hostOf(t, 'host-c', 'run-d', { leaseMs: 120_000 })]);
    await a.kill();
    const reaped = (await b.ask<{ databaseName: string; runId: string; reason: string; dropped: boolean }[]>('reap')).filter((item) => item.runId === 'run-c'); // earlier tests' leftovers may go too
    assert.deepEqual(reaped.map((item) => item.databaseName).sort(), names(a));
    for (const item of reaped) assert.match(item.reason, new RegExp(`owner pid ${a.ready.pid} on host-c is gone`));
    assert.deepEqual(await existing(names(a)), []);
    assert.deepEqual(await existing(names(b)), names(b));
  });

  it('still knows the lanes of a machine whose state folder was wiped, and reaps them from a corrupt one', async (t) => {
    const stateDir = await tempDir(t);
    const a = await startHost(t, { options: { prefix: server.prefix, ...basic, registryDatabase, stateDir, runId: 'run-w' }, projects: PROJECTS, adminUrl });
    assert.equal(a.ready.host, hostname());
    await a.kill();
    await rm(stateDir, { recursive: true, force: true });

    // Another machine sees them in the registry (it cannot judge this host's pids, and the lease runs).
    const other = await hostOf(t, 'host-x', 'run-x', {}, ['other']);
    const listed = await other.ask<{ databaseName: string; host: string; alive: boolean }[]>('list');
    const mine = listed.filter((item) => names(a).includes(item.databaseName));
    assert.deepEqual(mine.map((item) => [item.databaseName, item.host, item.alive]).sort(), names(a).map((name) => [name, hostname(), true]));

    // This machine, with a corrupt state file, still reaps them: their owner pid is gone.
    const allocator = await allocatorFor(t, { runId: 'run-y' });
    await writeFile(join(allocator.options.stateDir, DATABASES_FILE), '{"kind": "e2e-lanes/databases", "entr');
    const warnings = t.mock.method(console, 'warn', () => undefined);
    const reaped = (await allocator.reapStale()).filter((item) => item.entry.runId === 'run-w'); // earlier tests' leftovers may go too
    assert.deepEqual(reaped.map((item) => [item.entry.databaseName, item.dropped, item.reason.includes(`pid ${a.ready.pid}`)]).sort(), names(a).map((name) => [name, true, true]));
    assert.ok(warnings.mock.calls.some((call) => /was unreadable/.test(String(call.arguments[0]))));
    assert.deepEqual(await existing(names(a)), []);
    assert.deepEqual(await rows('run-w'), []);
  });

  it('refuses a lane that a live machine holds under the same run id, never drops it, and takes it over once the lease expired', async (t) => {
    const a = await hostOf(t, 'host-a', 'same-run', { leaseMs: 3_000 }, ['chromium']);
    const allocator = await allocatorFor(t, { runId: 'same-run', leaseMs: 3_000 });
    await assert.rejects(allocator.allocateDatabaseForProject('chromium'), (error) => {
      assert.ok(isLanesError(error, 'RUN_ID_CONFLICT'), String(error));
      assert.match(error.message, /held by host "host-a"/);
      assert.match(error.hint ?? '', /--shard|E2E_LANES_RUN_ID/);
      return true;
    });
    assert.deepEqual(await allocator.releaseRun(), []);
    assert.deepEqual(await existing(names(a)), names(a));

    await a.kill();
    await until("host-a's lease expired", async () => (await rows('same-run')).every((row) => !row.live));
    const warnings = t.mock.method(console, 'warn', () => undefined);
    const lane = await allocator.allocateDatabaseForProject('chromium');
    assert.equal(lane.databaseName, names(a)[0]);
    assert.ok(warnings.mock.calls.some((call) => /taking over lane database .* lease of host-a/.test(String(call.arguments[0]))));
    assert.deepEqual((await rows('same-run')).map((row) => [row.host, row.live]), [[hostname(), true]]);
  });

  it('refuses a lane that another run on this host holds under the same run id, and shares it within one run', async (t) => {
    const first = await allocatorFor(t, { runId: 'twin' });
    const second = await allocatorFor(t, { runId: 'twin' }); // another state folder: another run
    const lane = await first.allocateDatabaseForProject('chromium');
    await assert.rejects(second.allocateDatabaseForProject('chromium'), (error) => {
      assert.ok(isLanesError(error, 'RUN_ID_CONFLICT'), String(error));
      assert.match(error.message, /another run on this host with the same run id/);
      return true;
    });
    assert.deepEqual(await second.releaseRun(), []);
    assert.deepEqual(await existing([lane.databaseName]), [lane.databaseName]);
    // Another process of the same run (same state folder) gets the same database.
    const sameRun = new DatabaseAllocator({ adminUrl, prefix: server.prefix, ...basic, registryDatabase, stateDir: first.options.stateDir, runId: 'twin' });
    t.after(() => sameRun.close());
    assert.equal((await sameRun.allocateDatabaseForProject('chromium')).databaseName, lane.databaseName);
  });

  it('warns once a lease it held was lost, and stops renewing it', async (t) => {
    const allocator = await allocatorFor(t, { runId: 'run-lost', leaseMs: 1_000 });
    const lane = await allocator.allocateDatabaseForProject('chromium');
    const warnings = t.mock.method(console, 'warn', () => undefined);
    await query(registryUrl(), `UPDATE ${REGISTRY_TABLE} SET expires_at = now() - interval '1 second' WHERE database_name = $1`, [lane.databaseName]);
    await until('the lost lease was reported', async () => warnings.mock.calls.some((call) => /lost the lease of lane database/.test(String(call.arguments[0]))), 5_000);
    assert.deepEqual((await rows('run-lost')).map((row) => row.live), [false]);
  });

  it("records in the server only with registry 'postgres' (or 'auto' for a given URL), never with 'file'", async (t) => {
    const file = await allocatorFor(t, { runId: 'run-file', registry: 'file' });
    assert.equal(file.registryKind(), 'file');
    await file.allocateDatabaseForProject('chromium');
    assert.deepEqual(await rows('run-file'), []);
    assert.equal((await file.list({ scope: 'server' })).length, 1);

    const auto = await allocatorFor(t, { runId: 'run-auto' });
    assert.equal(auto.registryKind(), 'postgres');
    await auto.allocateDatabaseForProject('chromium');
    assert.equal((await rows('run-auto')).length, 1);

    assert.throws(() => new DatabaseAllocator({ adminUrl, registry: 'cloud' as never }), (error) => isLanesError(error, 'INVALID_OPTION') && /registry/.test(error.message));
    process.env.E2E_LANES_REGISTRY = 'file';
    t.after(() => delete process.env.E2E_LANES_REGISTRY);
    assert.equal(new DatabaseAllocator({ adminUrl, runId: 'x' }).options.registry, 'file');
  });
});

describe('a role that may create databases but not the registry', () => {
  it("falls back to state files with a warning under 'auto', and fails under 'postgres'", async (t) => {
    const role = `${server.prefix}_limited`;
    const password = randomUUID();
    await query(server.adminUrl, `CREATE ROLE ${pg.escapeIdentifier(role)} LOGIN CREATEDB PASSWORD ${pg.escapeLiteral(password)}`);
    const maintenance = `${server.prefix}_limited_db`;
    await query(server.adminUrl, `CREATE DATABASE ${pg.escapeIdentifier(maintenance)}`);
    await query(withDatabase(server.adminUrl, maintenance), 'REVOKE CREATE ON SCHEMA public FROM PUBLIC');
    await query(server.adminUrl, `REVOKE CREATE ON DATABASE ${pg.escapeIdentifier(maintenance)} FROM PUBLIC`);
    t.after(async () => {
      await query(server.adminUrl, `DROP DATABASE IF EXISTS ${pg.escapeIdentifier(maintenance)} WITH (FORCE)`);
      const owned = await databasesStartingWith(server.adminUrl, `${server.prefix}_`);
      for (const name of owned) {
        const [row] = await query<{ owner: string }>(server.adminUrl, 'SELECT pg_get_userbyid(datdba) AS owner FROM pg_database WHERE datname = $1', [name]);
        if (row?.owner !== role) continue;
        await query(server.adminUrl, `ALTER DATABASE ${pg.escapeIdentifier(name)} WITH IS_TEMPLATE false`);
        await query(server.adminUrl, `DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);
      }
      await query(server.adminUrl, `DROP ROLE IF EXISTS ${pg.escapeIdentifier(role)}`);
    });
    // The registry database exists (another role created it) but this role may not create the schema in it.
    const limitedRegistry = `${server.prefix}_limreg`;
    await query(server.adminUrl, `CREATE DATABASE ${pg.escapeIdentifier(limitedRegistry)}`);
    await query(withDatabase(server.adminUrl, limitedRegistry), 'REVOKE CREATE ON SCHEMA public FROM PUBLIC');
    const url = new URL(withDatabase(server.adminUrl, maintenance));
    url.username = role;
    url.password = password;
    const limitedUrl = url.toString();

    // A role without CREATEROLE cannot give lanes roles of their own: setup says so and names the opt-out.
    const roleless = new DatabaseAllocator({ adminUrl: limitedUrl, prefix: server.prefix, ...basic, registry: 'file', stateDir: await tempDir(t), runId: 'limited-roles' });
    t.after(() => roleless.close());
    await assert.rejects(roleless.allocateDatabaseForProject('p'), (error) => {
      assert.ok(isLanesError(error, 'LANE_ROLES_UNAVAILABLE'), String(error));
      assert.match(error.message, new RegExp(`admin role ${role} .* may not create roles`));
      assert.match(error.hint ?? '', /database\.laneRoles: false/);
      return true;
    });

    const strict = new DatabaseAllocator({ adminUrl: limitedUrl, prefix: server.prefix, ...basic, registry: 'postgres', registryDatabase: limitedRegistry, stateDir: await tempDir(t), runId: 'limited-strict', laneRoles: false });
    t.after(() => strict.close());
    await assert.rejects(strict.allocateDatabaseForProject('p'), (error) => isLanesError(error, 'REGISTRY_FAILED'));

    const warnings: string[] = [];
    t.mock.method(console, 'warn', (message: string) => warnings.push(message));
    const auto = new DatabaseAllocator({ adminUrl: limitedUrl, prefix: server.prefix, ...basic, registryDatabase: limitedRegistry, stateDir: await tempDir(t), runId: 'limited-auto', laneRoles: false });
    t.after(() => auto.close());
    const lane = await auto.allocateDatabaseForProject('p');
    assert.equal(auto.registryKind(), 'file');
    assert.ok(warnings.some((message) => /may not create the lane registry/.test(message)), warnings.join('\n'));
    assert.ok(!warnings.join('\n').includes(password));
    assert.deepEqual((await auto.list({ scope: 'server' })).map((entry) => entry.databaseName), [lane.databaseName], 'the lanes of the state file');

    // Listing every machine's lanes first also settles on the state file.
    const listing = new DatabaseAllocator({ adminUrl: limitedUrl, prefix: server.prefix, ...basic, registryDatabase: limitedRegistry, stateDir: await tempDir(t), runId: 'limited-list' });
    t.after(() => listing.close());
    assert.deepEqual(await listing.list({ scope: 'server' }), []);
    assert.equal(listing.registryKind(), 'file');
    await auto.releaseRun();
    assert.deepEqual(await existing([lane.databaseName]), []);
  });
});

describe('where the registry lives', () => {
  it("creates nothing in the database the admin URL names (an app's database), and two allocators on it still see each other's lanes", async (t) => {
    const app = `${server.prefix}_myapp`;
    await query(server.adminUrl, `CREATE DATABASE ${pg.escapeIdentifier(app)}`);
    const appUrl = withDatabase(server.adminUrl, app);
    await query(appUrl, 'CREATE TABLE app_users (id integer PRIMARY KEY)');
    const census = async (): Promise<unknown> =>
      query(appUrl, 'SELECT (SELECT count(*)::int FROM pg_namespace) AS namespaces, (SELECT count(*)::int FROM pg_class) AS relations, (SELECT count(*)::int FROM pg_proc) AS functions');
    const before = await census();
    const allocator = async (runId: string): Promise<DatabaseAllocator> => {
      const made = new DatabaseAllocator({ adminUrl: appUrl, prefix: server.prefix, ...basic, registry: 'postgres', stateDir: await tempDir(t), runId });
      t.after(async () => {
        await made.releaseRun().catch(() => undefined);
        await made.close();
      });
      return made;
    };
    const [one, two] = [await allocator('app-one'), await allocator('app-two')];
    const a = await one.allocateDatabaseForProject('chromium');
    const b = await two.allocateDatabaseForProject('chromium');
    assert.notEqual(a.databaseName, b.databaseName);
    for (const seer of [one, two]) {
      const seen = (await seer.list({ scope: 'server' })).map((entry) => entry.databaseName);
      assert.ok(seen.includes(a.databaseName) && seen.includes(b.databaseName), seen.join(', '));
    }
    assert.deepEqual(await census(), before, `nothing was created in ${app}`);
    const schemas = await query(appUrl, `SELECT nspname FROM pg_namespace WHERE nspname = 'e2e_lanes'`);
    assert.deepEqual(schemas, []);
    const [registry] = await query<{ comment: string | null }>(server.adminUrl, `SELECT shobj_description(oid, 'pg_database') AS comment FROM pg_database WHERE datname = $1`, [DEFAULT_REGISTRY_DATABASE]);
    assert.match(registry?.comment ?? '', /"toolkit":"e2e-lanes","kind":"registry"/);
    assert.equal((await two.releaseRun()).length, 1);
    assert.deepEqual((await one.list({ scope: 'server' })).map((entry) => entry.databaseName).filter((name) => name === b.databaseName), []);
  });
});
