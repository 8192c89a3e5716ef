import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import pg from 'pg';
import { DatabaseAllocator, DEFAULT_REGISTRY_DATABASE, REGISTRY_TABLE, type DatabaseAllocation } from '../../../src/databases/index.js';
import { laneDatabaseName } from '../../../src/databases/sql/names.js';
import { laneDatabaseUrl, laneRoleName, templateOwnerName } from '../../../src/databases/sql/roles.js';
import { stateFilesOf } from '../../../src/cli/context.js';
import { collectStatus, formatStatus } from '../../../src/cli/status.js';
import { LaneManager } from '../../../src/lanes/lane-manager.js';
import { currentHost } from '../../../src/state/owner.js';
import { withDatabase } from '../../../src/postgres/index.js';
import { TEST_DATABASE_URL_ENV } from '../../helpers/postgres.js';
import { tempDir } from '../../helpers/tmp.js';
import { FIXTURES, query, useTestDatabases } from '../helpers.js';

const db = useTestDatabases('roles');
const BASIC = join(FIXTURES, 'basic');

/** A client on `url`, or the error connecting gave. */
async function connect(url: string): Promise<pg.Client | Error> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  try {
    await client.connect();
    return client;
  } catch (error) {
    await client.end().catch(() => undefined);
    return error as Error;
  }
}

/** What `sql` gave on `client`: 'ok' or the error's SQLSTATE. */
async function attempt(client: pg.Client, sql: string): Promise<string> {
  try {
    await client.query(sql);
    return 'ok';
  } catch (error) {
    return (error as pg.DatabaseError).code ?? 'error';
  }
}

/**
 * Everything a lane's `DATABASE_URL` may do beyond its own database, as a list of breaches (empty
 * when the lane is confined): it probes its role, its own data (read, write, DDL), every other
 * database named in `others` (refused, or reading and writing nothing), and `CREATE DATABASE`.
 */
async function breaches(lane: DatabaseAllocation, others: Array<{ name: string; table?: string }>): Promise<string[]> {
  const found: string[] = [];
  const own = await connect(lane.databaseUrl);
  if (own instanceof Error) throw own;
  try {
    const { rows } = await own.query<{ user: string; superuser: boolean; createdb: boolean; createrole: boolean; bypassrls: boolean }>(
      'SELECT current_user AS user, rolsuper AS superuser, rolcreatedb AS createdb, rolcreaterole AS createrole, rolbypassrls AS bypassrls FROM pg_roles WHERE rolname = current_user',
    );
    const role = rows[0]!;
    if (role.user !== laneRoleName(lane.databaseName)) found.push(`connects as ${role.user}, not its lane role`);
    for (const attribute of ['superuser', 'createdb', 'createrole', 'bypassrls'] as const) if (role[attribute]) found.push(`is ${attribute}`);
    // Its own data: everything an app does, DDL included.
    const items = await own.query<{ name: string }>('SELECT name FROM "Item" ORDER BY id');
    assert.deepEqual(items.rows.map((row) => row.name), ['alpha', 'beta']);
    for (const sql of [
      `INSERT INTO "Item" (name) VALUES ('own row')`,
      `UPDATE "Item" SET note = 'x' WHERE name = 'alpha'`,
      'ALTER TABLE "Item" ADD COLUMN extra int',
      'CREATE INDEX item_extra ON "Item" (extra)',
      'CREATE TABLE own_table (id int)',
      'CREATE SCHEMA own_schema',
      'CREATE TEMPORARY TABLE own_temp (id int)',
      'ALTER TABLE "Item" DROP COLUMN extra',
    ]) {
      assert.equal(await attempt(own, sql), 'ok', `in its own database: ${sql}`);
    }
    if ((await attempt(own, `CREATE DATABASE ${pg.escapeIdentifier(`${lane.databaseName}_x`)}`)) === 'ok') {
      found.push('created a database');
      await query(withDatabase(lane.databaseUrl, 'postgres'), `DROP DATABASE ${pg.escapeIdentifier(`${lane.databaseName}_x`)}`);
    }
  } finally {
    await own.end();
  }
  for (const other of others) {
    const client = await connect(withDatabase(lane.databaseUrl, other.name));
    if (client instanceof Error) continue; // refused: confined
    try {
      if (other.table && (await attempt(client, `SELECT * FROM ${other.table}`)) === 'ok') found.push(`read ${other.table} in ${other.name}`);
      if (other.table && (await attempt(client, `INSERT INTO ${other.table} DEFAULT VALUES`)) === 'ok') found.push(`wrote ${other.table} in ${other.name}`);
      if ((await attempt(client, 'CREATE TABLE intruder (id int)')) === 'ok') found.push(`created a table in ${other.name}`);
    } finally {
      await client.end();
    }
  }
  return found;
}

/** Two lanes of one allocator, their probes, then everything released. */
async function probeTwoLanes(laneRoles: boolean, stateDir: string, adminUrl = db.adminUrl): Promise<{ a: string[]; b: string[]; lanes: DatabaseAllocation[] }> {
  const allocator = new DatabaseAllocator({ adminUrl, stateDir, prefix: db.prefix, migrations: join(BASIC, 'migrations'), seed: join(BASIC, 'seed.ts'), registry: adminUrl === db.adminUrl ? 'postgres' : 'file', pool: 1, laneRoles });
  try {
    return await probeLanesOf(allocator);
  } finally {
    await allocator.releaseRun();
    await allocator.close();
  }
}

async function probeLanesOf(allocator: DatabaseAllocator): Promise<{ a: string[]; b: string[]; lanes: DatabaseAllocation[] }> {
  const template = await allocator.prepare();
  const a = await allocator.allocateDatabaseForProject('alpha');
  const b = await allocator.allocateDatabaseForProject('beta');
  await allocator.poolSettled();
  const [copy] = await allocator.readyCopiesOf([template.hash]);
  // A developer's own database on the same server, with a table and a row.
  const developer = `${db.prefix}_dev`;
  await query(db.adminUrl, `CREATE DATABASE ${developer}`).catch(() => undefined);
  await query(withDatabase(db.adminUrl, developer), 'CREATE TABLE IF NOT EXISTS secret (id serial PRIMARY KEY); INSERT INTO secret DEFAULT VALUES');
  const others = (lane: DatabaseAllocation): Array<{ name: string; table?: string }> => [
    { name: (lane === a ? b : a).databaseName, table: '"Item"' },
    { name: template.name, table: '"Item"' },
    ...(copy ? [{ name: copy, table: '"Item"' }] : []),
    { name: developer, table: 'secret' },
    { name: 'postgres' },
    { name: DEFAULT_REGISTRY_DATABASE, table: REGISTRY_TABLE },
  ];
  return { a: await breaches(a, others(a)), b: await breaches(b, others(b)), lanes: [a, b] };
}

describe('a role per lane', () => {
  it("confines each lane's DATABASE_URL to its own database: own role, not privileged, full rights there, nothing elsewhere", async (t) => {
    const { a, b, lanes } = await probeTwoLanes(true, await tempDir(t));
    assert.deepEqual(a, []);
    assert.deepEqual(b, []);
    for (const lane of lanes) assert.equal(new URL(lane.databaseUrl).username, laneRoleName(lane.databaseName));
  });

  it('works the same with an admin role that is not superuser but has CREATEDB and CREATEROLE (a managed server)', async (t) => {
    const admin = `${db.prefix}_manager`;
    const password = 'manager-password';
    await query(db.adminUrl, `CREATE ROLE ${admin} LOGIN CREATEDB CREATEROLE PASSWORD ${pg.escapeLiteral(password)}`);
    t.after(async () => {
      // Its databases first (what it created it owns), then what is left of its roles.
      for (const { name } of await query<{ name: string }>(db.adminUrl, 'SELECT datname AS name FROM pg_database WHERE datdba = (SELECT oid FROM pg_roles WHERE rolname = $1)', [admin])) {
        await query(db.adminUrl, `ALTER DATABASE ${pg.escapeIdentifier(name)} WITH IS_TEMPLATE false`);
        await query(db.adminUrl, `DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);
      }
      await query(db.adminUrl, `DROP OWNED BY ${admin}; DROP ROLE IF EXISTS ${admin}`).catch(() => undefined);
    });
    const url = new URL(db.adminUrl);
    url.username = admin;
    url.password = password;
    const { a, b } = await probeTwoLanes(true, await tempDir(t), url.toString());
    assert.deepEqual(a, []);
    assert.deepEqual(b, []);
  });

  it('with laneRoles: false, lanes connect as the admin role as before and reach every database', async (t) => {
    const lines: string[] = [];
    t.mock.method(console, 'log', (line: string) => void lines.push(String(line)));
    const { a, lanes } = await probeTwoLanes(false, await tempDir(t));
    assert.equal(lines.filter((line) => line.includes('database.laneRoles: false')).length, 1, 'setup says so in one line');
    assert.ok(a.some((breach) => breach.startsWith('connects as')), a.join('; '));
    assert.ok(a.some((breach) => breach.startsWith('read "Item" in')), a.join('; '));
    assert.ok(a.includes('created a database'), a.join('; '));
    assert.equal(new URL(lanes[0]!.databaseUrl).username, new URL(db.adminUrl).username);
  });

  it('a swap and a truncate reset keep the lane role its database, and releasing the lane drops its role', async (t) => {
    const allocator = new DatabaseAllocator({ adminUrl: db.adminUrl, stateDir: await tempDir(t), prefix: db.prefix, migrations: join(BASIC, 'migrations'), seed: join(BASIC, 'seed.ts'), registry: 'file', pool: 1 });
    t.after(() => allocator.close());
    const template = await allocator.prepare();
    const lane = await allocator.allocateDatabaseForProject('gamma');
    const role = laneRoleName(lane.databaseName);
    const rows = async (): Promise<string[]> => (await query<{ name: string }>(lane.databaseUrl, 'SELECT name FROM "Item" ORDER BY id')).map((row) => row.name);
    await query(lane.databaseUrl, `INSERT INTO "Item" (name) VALUES ('written')`);
    for (const strategy of ['swap', 'truncate', 'swap'] as const) {
      await allocator.poolSettled();
      await allocator.resetDatabaseForProject('gamma', { strategy });
      assert.deepEqual(await rows(), ['alpha', 'beta'], `after a ${strategy} reset`);
      await query(lane.databaseUrl, `INSERT INTO "Item" (name) VALUES ('written'); ALTER TABLE "Item" ADD COLUMN IF NOT EXISTS extra int`);
    }
    const owners = await query<{ owner: string }>(db.adminUrl, `SELECT pg_get_userbyid(datdba) AS owner FROM pg_database WHERE datname = $1`, [lane.databaseName]);
    assert.notEqual(owners[0]?.owner, role, 'the admin owns the lane database');
    const connectable = await query<{ name: string }>(db.adminUrl, `SELECT datname AS name FROM pg_database WHERE datallowconn AND has_database_privilege($1, oid, 'CONNECT') AND left(datname, $3) = $2`, [
      templateOwnerName(template.name),
      `${db.prefix}_`,
      db.prefix.length + 1,
    ]);
    // (Databases that PUBLIC may connect to, such as a developer's, every role may connect to.)
    assert.deepEqual(connectable.filter(({ name }) => !name.endsWith('_dev')), [], 'the template owner role may connect to no database of the toolkit');
    // A table of the lane role's own, then a swap moves that database away and the run ends at once:
    // the moved-away database (which holds the role's table and grant) goes before the role.
    await query(lane.databaseUrl, 'CREATE TABLE owned_by_the_lane (id int)');
    await allocator.poolSettled();
    await allocator.resetDatabaseForProject('gamma', { strategy: 'swap' });
    await allocator.releaseRun();
    const left = await query(db.adminUrl, 'SELECT 1 FROM pg_roles WHERE rolname = $1', [role]);
    assert.equal(left.length, 0, 'the lane role is dropped with its lane');
    const trash = await query<{ name: string }>(db.adminUrl, "SELECT datname AS name FROM pg_database WHERE datname LIKE $1", [`${db.prefix}\\_trash\\_%`]);
    assert.deepEqual(trash, [], 'no database a swap moved away is left');
  });

  it('a ready copy or a clone is open to no role but its own at any moment, even the first milliseconds after CREATE DATABASE', async (t) => {
    const allocator = new DatabaseAllocator({ adminUrl: db.adminUrl, stateDir: await tempDir(t), prefix: db.prefix, migrations: join(BASIC, 'migrations'), seed: join(BASIC, 'seed.ts'), registry: 'file', pool: 0 });
    t.after(() => allocator.close());
    const template = await allocator.prepare();
    const lane = await allocator.allocateDatabaseForProject('watcher');
    // Watched from the admin side as the server decides at a connection: the database lets
    // connections in, and the role may CONNECT.
    const watcher = new pg.Client({ connectionString: db.adminUrl });
    await watcher.connect();
    t.after(() => watcher.end());
    const seen = new Set<string>();
    let watching = true;
    let polls = 0;
    const watch = (async () => {
      const deadline = Date.now() + 60_000;
      while (watching && Date.now() < deadline) {
        polls++;
        const { rows } = await watcher.query<{ name: string }>(
          "SELECT datname AS name FROM pg_database WHERE datallowconn AND has_database_privilege($1, oid, 'CONNECT') AND left(datname, $3) = $2 AND datname <> $4",
          [laneRoleName(lane.databaseName), `${db.prefix}_`, db.prefix.length + 1, lane.databaseName],
        );
        for (const { name } of rows) if (!name.endsWith('_dev')) seen.add(name);
      }
    })();
    try {
      // Ready copies made one after another, and lanes that clone (no copy left), while watched.
      const filler = new DatabaseAllocator({ adminUrl: db.adminUrl, stateDir: await tempDir(t), prefix: db.prefix, migrations: join(BASIC, 'migrations'), seed: join(BASIC, 'seed.ts'), registry: 'file', pool: 8 });
      t.after(() => filler.close());
      await filler.prepare();
      await filler.poolSettled();
      for (let index = 0; index < 12; index++) await filler.allocateDatabaseForProject(`clone-${index}`);
      await filler.poolSettled();
    } finally {
      watching = false;
      await watch;
    }
    assert.ok(polls > 20, `the catalog was watched (${polls} polls)`);
    assert.deepEqual([...seen], [], `another lane's role could connect to these while they were made (template ${template.name})`);
  });

  it('reaps a marked lane role whose database is gone and whose owner died, and never a role without the mark', async (t) => {
    const allocator = new DatabaseAllocator({ adminUrl: db.adminUrl, stateDir: await tempDir(t), prefix: db.prefix, migrations: false, registry: 'file', pool: 0 });
    t.after(() => allocator.close());
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    const deadPid = Number(dead.stdout);
    const orphan = laneDatabaseName(db.prefix, { runId: 'run-dead', project: 'orphan' });
    const foreign = laneDatabaseName(db.prefix, { runId: 'run-dead', project: 'foreign' });
    const living = laneDatabaseName(db.prefix, { runId: 'run-alive', project: 'living' });
    const mark = (runId: string, project: string, pid: number): string =>
      JSON.stringify({ toolkit: 'e2e-lanes', kind: 'lane', runId, project, host: currentHost(), pid, created: new Date().toISOString() });
    await query(db.adminUrl, `CREATE ROLE ${orphan}; COMMENT ON ROLE ${orphan} IS ${pg.escapeLiteral(mark('run-dead', 'orphan', deadPid))}`);
    await query(db.adminUrl, `CREATE ROLE ${foreign}`); // the same name, but not the toolkit's
    await query(db.adminUrl, `CREATE ROLE ${living}; COMMENT ON ROLE ${living} IS ${pg.escapeLiteral(mark('run-alive', 'living', process.pid))}`);
    // Template owners: one whose template is gone, one whose template is there.
    const goneOwner = templateOwnerName(`${db.prefix}_tpl_aaaaaaaaaaaa`);
    const liveTemplate = `${db.prefix}_tpl_bbbbbbbbbbbb`;
    const liveOwner = templateOwnerName(liveTemplate);
    const ownerMark = pg.escapeLiteral(JSON.stringify({ toolkit: 'e2e-lanes', kind: 'template', created: new Date().toISOString() }));
    await query(db.adminUrl, `CREATE ROLE ${goneOwner}; COMMENT ON ROLE ${goneOwner} IS ${ownerMark}; CREATE ROLE ${liveOwner}; COMMENT ON ROLE ${liveOwner} IS ${ownerMark}`);
    await query(db.adminUrl, `CREATE DATABASE ${liveTemplate}`);
    await allocator.reapStale();
    const names = [orphan, foreign, living, goneOwner, liveOwner];
    const left = (await query<{ name: string }>(db.adminUrl, 'SELECT rolname AS name FROM pg_roles WHERE rolname = ANY($1) ORDER BY rolname', [names])).map((row) => row.name);
    assert.deepEqual(left, [foreign, living, liveOwner].sort());
  });

  it('refuses a role of the lane\'s name that it did not create, and the ready copy the boot would have taken stays in the pool', async (t) => {
    const runId = 'run-foreign-role';
    const allocator = new DatabaseAllocator({ adminUrl: db.adminUrl, stateDir: await tempDir(t), prefix: db.prefix, runId, migrations: join(BASIC, 'migrations'), registry: 'file', pool: 1 });
    const role = laneRoleName(laneDatabaseName(db.prefix, { runId, project: 'taken' }));
    t.after(async () => {
      await allocator.releaseRun().catch(() => undefined);
      await allocator.close();
      await query(db.adminUrl, `DROP ROLE IF EXISTS ${role}`);
    });
    const template = await allocator.prepare();
    await allocator.poolSettled();
    const before = await allocator.readyCopiesOf([template.hash]);
    assert.equal(before.length, 1);
    await query(db.adminUrl, `CREATE ROLE ${role}`); // the lane's name, without the toolkit's mark
    await assert.rejects(allocator.allocateDatabaseForProject('taken'), (error: Error & { code?: string }) => {
      assert.equal(error.code, 'DATABASE_CREATE_FAILED');
      assert.match(error.message, new RegExp(`role named ${role} exists`));
      return true;
    });
    // The rename, the role and the mark are one transaction: the copy was not used up.
    assert.deepEqual(await allocator.readyCopiesOf([template.hash]), before);
    const attributes = await query<{ login: boolean; comment: string | null }>(db.adminUrl, "SELECT rolcanlogin AS login, shobj_description(oid, 'pg_authid') AS comment FROM pg_roles WHERE rolname = $1", [role]);
    assert.deepEqual(attributes, [{ login: false, comment: null }], 'the foreign role is left as it was');
  });

  it("gives a lane's servers and its workers the lane role's URL, never the admin's", { timeout: 120_000 }, async (t) => {
    const server = new URL('../../fixtures/servers/http-server.mjs', import.meta.url).pathname;
    const options = {
      runId: `roles-${Math.random().toString(36).slice(2, 8)}`,
      stateDir: await tempDir(t),
      portRange: [35_200, 35_299] as [number, number],
      servers: [{ name: 'api', command: [process.execPath, server], health: '/health' }],
      database: { adminUrl: db.adminUrl, migrations: join(BASIC, 'migrations'), seed: join(BASIC, 'seed.ts'), prefix: db.prefix, registry: 'file' as const },
    };
    const manager = new LaneManager(options);
    t.after(() => manager.teardown({ keep: false }));
    await manager.prepare();
    const [a, b] = await Promise.all([manager.ensureLane('alpha'), manager.ensureLane('beta')]);
    const access = await manager.databases!.laneAccess();
    assert.equal(access.baseUrl.includes(new URL(db.adminUrl).password), false, 'workers get no admin password');
    for (const [lane, other] of [[a, b], [b, a]] as const) {
      const env = (await (await fetch(`${lane.urls.api}/env`)).json()) as Record<string, string>;
      assert.equal(env.DATABASE_URL, lane.databaseUrl);
      assert.equal(env.PGUSER, laneRoleName(lane.databaseName!));
      assert.equal(env.PGPASSWORD, new URL(lane.databaseUrl!).password);
      // (The tests' own E2E_LANES_TEST_DATABASE_URL, of a given server, is this test process's, not the toolkit's.)
      const leaks = Object.entries(env).filter(([name, value]) => name !== TEST_DATABASE_URL_ENV && value.includes(new URL(db.adminUrl).password));
      assert.deepEqual(leaks.map(([name]) => name), [], "the admin's password reaches no server");
      // A worker names the same URL before its spec files load.
      assert.equal(laneDatabaseUrl(access, db.prefix, { runId: manager.runId, project: lane.project }), lane.databaseUrl);
      const allocation = { project: lane.project, runId: manager.runId, databaseName: lane.databaseName!, databaseUrl: env.DATABASE_URL!, template: undefined as never };
      assert.deepEqual(await breaches(allocation, [{ name: other.databaseName!, table: '"Item"' }, { name: 'postgres' }]), []);
    }
    // `status` shows each lane's role (from the recorded URL, its password redacted).
    const rows = await collectStatus(stateFilesOf(options, {}));
    assert.deepEqual(rows.map((row) => [row.databaseName, row.role]).sort(), [a, b].map((lane) => [lane.databaseName, laneRoleName(lane.databaseName!)]).sort());
    assert.match(formatStatus(rows), /ROLE/);
  });
});
