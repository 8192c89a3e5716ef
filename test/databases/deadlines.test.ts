import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it, type TestContext } from 'node:test';
import pg from 'pg';
import { applyMigrations, DatabaseAllocator, readMigrations } from '../../src/databases/index.js';
import { isLanesError } from '../../src/errors.js';
import { withDatabase } from '../../src/postgres/index.js';
import { exited, runFixture } from '../helpers/processes.js';
import { tempDir } from '../helpers/tmp.js';
import { FIXTURES, databasesStartingWith, query, useTestDatabases } from './helpers.js';

const server = useTestDatabases('deadl');
const hanging = { migrations: `${FIXTURES}basic/migrations`, seed: `${FIXTURES}basic/hanging-seed.ts` };

/** Advisory locks held by sessions that build templates for process `pid`. */
async function builderLocks(pid: number): Promise<number> {
  const rows = await query<{ n: number }>(
    server.adminUrl,
    `SELECT count(*)::int AS n FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
      WHERE l.locktype = 'advisory' AND a.application_name LIKE $1`,
    [`e2e-lanes build pid ${pid} %`],
  );
  return rows[0]?.n ?? -1;
}

/** A child allocating one lane with `allocate.ts`, its output collected as it comes. */
function spawnAllocate(t: TestContext, options: object, project: string, env: NodeJS.ProcessEnv): { child: ChildProcess; output: () => string } {
  const child = spawn(process.execPath, ['--import', 'tsx', `${FIXTURES}allocate.ts`, JSON.stringify(options), project, 'hold'], {
    env: { ...process.env, FIXTURE_ADMIN_URL: server.adminUrl, E2E_LANES_OWNER_PID: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let out = '';
  child.stdout?.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (out += chunk.toString()));
  return { child, output: () => out };
}

/** Polls `check` every 100 ms for at most `ms`. */
async function until(what: string, check: () => Promise<boolean> | boolean, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

describe('deadlines of the template build', () => {
  it('fails a hanging seed module within its deadline with SEED_TIMEOUT, printing progress, and leaves no template, build database, session or lock', { timeout: 60_000 }, async (t) => {
    const stateDir = await tempDir(t);
    process.env.SEED_HANG = '1';
    process.env.E2E_LANES_PROGRESS_INTERVAL_MS = '300';
    t.after(() => {
      delete process.env.SEED_HANG;
      delete process.env.E2E_LANES_PROGRESS_INTERVAL_MS;
    });
    const lines: string[] = [];
    t.mock.method(console, 'log', (line: unknown) => lines.push(String(line)));
    const allocator = new DatabaseAllocator({ adminUrl: server.adminUrl, prefix: server.prefix, ...hanging, stateDir, runId: 'hang-in-process', seedTimeoutMs: 1_500 });
    t.after(() => allocator.close());
    const started = performance.now();
    await assert.rejects(allocator.allocateDatabaseForProject('app'), (error: unknown) => {
      assert.ok(isLanesError(error, 'SEED_TIMEOUT'), String(error));
      assert.match(error.message, /Seed .*hanging-seed\.ts had not resolved after 1\.5 s/);
      assert.match(error.message, /seedTimeoutMs.*E2E_LANES_SEED_TIMEOUT_MS/s);
      return true;
    });
    const elapsed = performance.now() - started;
    assert.ok(elapsed < 10_000, `took ${Math.round(elapsed)} ms`);
    assert.ok(lines.some((line) => new RegExp(`^\\[e2e-lanes\\] seeding template ${server.prefix}_tpl_[0-9a-f]{12}: \\d`).test(line)), lines.join('\n'));
    assert.deepEqual(await databasesStartingWith(server.adminUrl, `${server.prefix}_tpl_`), []);
    assert.equal(await builderLocks(process.pid), 0);
    const sessions = await query<{ n: number }>(server.adminUrl, 'SELECT count(*)::int AS n FROM pg_stat_activity WHERE left(datname, $2) = $1', [`${server.prefix}_tpl_`, server.prefix.length + 5]);
    assert.equal(sessions[0]?.n, 0);
  });

  it('lets a second process name the builder it waits for, time out, or take over once the builder is killed', { timeout: 120_000 }, async (t) => {
    const stateDir = await tempDir(t);
    const options = { prefix: server.prefix, ...hanging, stateDir };
    const first = spawnAllocate(t, { ...options, runId: 'hang-first' }, 'one', { SEED_HANG: '1', E2E_LANES_QUIET: '1' });
    const pid = first.child.pid!;
    // The first process is in its seed once its marked build database exists and its lock is held.
    await until('the first build to start its seed', async () => (await builderLocks(pid)) > 0 && (await databasesStartingWith(server.adminUrl, `${server.prefix}_tpl_`)).length > 0);

    await assert.rejects(
      runFixture(`${FIXTURES}allocate.ts`, [JSON.stringify({ ...options, runId: 'hang-impatient', templateWaitTimeoutMs: 1_000 }), 'two', 'exit'], {
        env: { FIXTURE_ADMIN_URL: server.adminUrl, E2E_LANES_OWNER_PID: '', SEED_HANG: '' },
      }),
      (error: Error) => {
        assert.match(error.message, /TEMPLATE_WAIT_TIMEOUT/);
        assert.match(error.message, new RegExp(`still held by pid \\d+ \\(application "e2e-lanes build pid ${pid} host [^"]* run hang-first"`));
        assert.match(error.message, /templateWaitTimeoutMs/);
        return true;
      },
    );

    const second = spawnAllocate(t, { ...options, runId: 'hang-second' }, 'three', { SEED_HANG: '', E2E_LANES_PROGRESS_INTERVAL_MS: '300' });
    await until('the second process to name the builder twice', () => second.output().split(`e2e-lanes build pid ${pid} `).length > 2);
    assert.match(second.output(), /waiting for another process to finish building template \w+ \(held by pid \d+ \(application "e2e-lanes build pid/);
    assert.match(second.output(), /waiting for template \w+ \(held by .*\): \d+(\.\d)? s…/);
    first.child.kill('SIGKILL');
    await exited(first.child);
    await until('the second process to allocate its lane', () => second.output().includes('"databaseName"'));
    const result = JSON.parse(second.output().split('\n').find((line) => line.startsWith('{')) ?? '{}') as { built: boolean; template: string; databaseName: string };
    assert.equal(result.built, true);
    assert.deepEqual(await query(withDatabase(server.adminUrl, result.databaseName), 'SELECT name FROM "Item" ORDER BY name'), [{ name: 'alpha' }, { name: 'beta' }]);
    // The killed builder's build database was dropped by the next build.
    assert.deepEqual(await databasesStartingWith(server.adminUrl, `${result.template}_build_`), []);
    second.child.kill('SIGKILL');
    await exited(second.child);
  });

  it('cancels a migration blocked by a lock after its deadline, naming the lock and the session that holds it', { timeout: 60_000 }, async (t) => {
    const database = `${server.prefix}_locked`;
    await query(server.adminUrl, `CREATE DATABASE ${pg.escapeIdentifier(database)}`);
    const url = withDatabase(server.adminUrl, database);
    await query(url, 'CREATE TABLE "Item" (id serial PRIMARY KEY)');
    const dir = join(await tempDir(t), 'migrations');
    await mkdir(join(dir, '20250101000000_add_note'), { recursive: true });
    await writeFile(join(dir, '20250101000000_add_note', 'migration.sql'), 'ALTER TABLE "Item" ADD COLUMN note text;\n');

    const holder = new pg.Client({ connectionString: url, application_name: 'lock-holder' });
    holder.on('error', () => undefined);
    await holder.connect();
    t.after(() => holder.end().catch(() => undefined));
    const holderPid = (await holder.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    await holder.query('BEGIN');
    await holder.query('LOCK TABLE "Item" IN ACCESS EXCLUSIVE MODE');

    const started = performance.now();
    await assert.rejects(applyMigrations(url, await readMigrations(dir), { timeoutMs: 1_000 }), (error: unknown) => {
      assert.ok(isLanesError(error, 'MIGRATION_TIMEOUT'), String(error));
      assert.match(error.message, /Migration 20250101000000_add_note .* did not finish within 1 s and was cancelled/);
      assert.match(error.message, new RegExp(`waited for AccessExclusiveLock on relation "Item", held by pid ${holderPid} \\(application "lock-holder"`));
      assert.match(error.message, /idle in transaction/);
      assert.match(error.message, /migrationTimeoutMs/);
      const password = new URL(server.adminUrl).password;
      if (password) assert.ok(!error.message.includes(password));
      return true;
    });
    assert.ok(performance.now() - started < 10_000);
    await holder.query('ROLLBACK');
    // Nothing of the migration was kept: no column, no finished row.
    const columns = await query(url, `SELECT attname FROM pg_attribute WHERE attrelid = '"Item"'::regclass AND attname = 'note'`);
    assert.deepEqual(columns, []);
    const rows = await query(url, 'SELECT migration_name FROM _prisma_migrations WHERE finished_at IS NOT NULL');
    assert.deepEqual(rows, []);
  });
});
