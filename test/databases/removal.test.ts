import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it, type TestContext } from 'node:test';
import pg from 'pg';
import { DatabaseAllocator, DATABASES_FILE, ensureTemplate, laneDatabaseName } from '../../src/databases/index.js';
import { exited } from '../helpers/processes.js';
import { tempDir } from '../helpers/tmp.js';
import { FIXTURES, databasesStartingWith, query, useTestDatabases } from './helpers.js';

const server = useTestDatabases('orph');
const hanging = { migrations: `${FIXTURES}basic/migrations`, seed: `${FIXTURES}basic/hanging-seed.ts` };

/** Starts a fixture with its stdin open and resolves once it printed its first line. */
function start(t: TestContext, script: string, args: string[], env: NodeJS.ProcessEnv): { child: ChildProcess; firstLine: Promise<string> } {
  const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
    env: { ...process.env, FIXTURE_ADMIN_URL: server.adminUrl, E2E_LANES_OWNER_PID: '', E2E_LANES_QUIET: '1', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let out = '';
  let err = '';
  child.stderr?.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const firstLine = new Promise<string>((resolve, reject) => {
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('\n')) resolve(out.slice(0, out.indexOf('\n')));
    });
    child.on('exit', (code) => reject(new Error(`${script} exited (${code}) before printing: ${err}`)));
  });
  firstLine.catch(() => undefined);
  return { child, firstLine };
}

/** Starts `allocate.ts` with a seed that hangs, and resolves once its build database exists (the seed runs). */
async function builderInSeed(t: TestContext, runId: string): Promise<{ child: ChildProcess; build: string }> {
  const stateDir = await tempDir(t);
  const { child } = start(t, `${FIXTURES}allocate.ts`, [JSON.stringify({ prefix: server.prefix, ...hanging, stateDir, runId, registry: 'file' }), 'app', 'hold'], { SEED_HANG: '1' });
  const deadline = Date.now() + 30_000;
  for (;;) {
    const builds = (await databasesStartingWith(server.adminUrl, `${server.prefix}_tpl_`)).filter((name) => name.includes('_build_'));
    const sessions = await query<{ n: number }>(server.adminUrl, 'SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = ANY($1::text[])', [builds]);
    if (builds.length === 1 && (sessions[0]?.n ?? 0) > 0) return { child, build: builds[0]! };
    if (Date.now() > deadline) throw new Error('the builder never reached its seed');
    await sleep(100);
  }
}

/**
 * Waits (at most 15 s) until PostgreSQL has ended the sessions of a SIGKILLed builder: its server
 * process notices the closed socket and exits on its own, later on a loaded machine, and until then
 * it holds the build's lock.
 */
async function sessionsGone(pid: number): Promise<void> {
  const deadline = Date.now() + 15_000;
  while ((await query<{ n: number }>(server.adminUrl, 'SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name LIKE $1', [`e2e-lanes build pid ${pid} %`]))[0]!.n > 0) {
    if (Date.now() > deadline) throw new Error(`the sessions of the killed builder (pid ${pid}) were not ended within 15 s`);
    await sleep(50);
  }
}

async function count(name: string): Promise<number> {
  const rows = await query<{ n: number }>(server.adminUrl, 'SELECT count(*)::int AS n FROM pg_database WHERE datname = $1', [name]);
  return rows[0]?.n ?? -1;
}

describe('databases whose owner is gone', () => {
  it('drops the build database of a builder SIGKILLed during its seed in reapStale(), never while the builder lives', { timeout: 90_000 }, async (t) => {
    const { child, build } = await builderInSeed(t, 'killed-builder');
    const reaper = new DatabaseAllocator({ adminUrl: server.adminUrl, prefix: server.prefix, migrations: false, stateDir: await tempDir(t), runId: 'reaper', registry: 'file' });
    t.after(() => reaper.close());
    assert.deepEqual(await reaper.reapStale(), [], 'a live builder keeps its build database');
    assert.equal(await count(build), 1);
    child.kill('SIGKILL');
    await exited(child);
    await sessionsGone(child.pid!);
    assert.equal(await count(build), 1, 'the killed builder left its build database');
    const reaped = await reaper.reapStale();
    assert.deepEqual(reaped.map((r) => [r.entry.databaseName, r.kind, r.dropped]), [[build, 'build', true]]);
    assert.equal(await count(build), 0);
  });

  it("drops a SIGKILLed builder's build database when the next template (another one) is built", { timeout: 90_000 }, async (t) => {
    const { child, build } = await builderInSeed(t, 'killed-builder-2');
    child.kill('SIGKILL');
    await exited(child);
    await sessionsGone(child.pid!);
    assert.equal(await count(build), 1);
    const other = await ensureTemplate({ adminUrl: server.adminUrl, prefix: server.prefix, migrations: false, hashInputs: [`${FIXTURES}basic/seed.ts`] });
    assert.equal(other.built, true);
    assert.equal(await count(build), 0);
    assert.deepEqual((await databasesStartingWith(server.adminUrl, `${server.prefix}_tpl_`)).filter((name) => name.includes('_build_')), []);
  });

  it('reaps the lane databases of a SIGKILLed owner whose ledger was truncated, by their mark, and leaves an unmarked look-alike', { timeout: 90_000 }, async (t) => {
    const stateDir = await tempDir(t);
    const options = { prefix: server.prefix, migrations: `${FIXTURES}basic/migrations`, seed: `${FIXTURES}basic/seed.ts`, stateDir, runId: 'lost-ledger', registry: 'file' as const };
    const { child, firstLine } = start(t, join(FIXTURES, '..', '..', 'databases', 'fixtures', 'host.ts'), [JSON.stringify(options), 'one', 'two'], {});
    const { lanes } = JSON.parse(await firstLine) as { lanes: { databaseName: string }[] };
    const names = lanes.map((lane) => lane.databaseName).sort();
    assert.equal(names.length, 2);
    // Named exactly like a lane of the run, but not created by the toolkit: no mark.
    const lookalike = laneDatabaseName(server.prefix, { runId: 'lost-ledger', project: 'three' });
    await query(server.adminUrl, `CREATE DATABASE ${pg.escapeIdentifier(lookalike)}`);
    child.kill('SIGKILL');
    await exited(child);
    await writeFile(join(stateDir, DATABASES_FILE), '{"kind":"e2e-lanes/datab'); // truncated mid-write
    for (const name of names) assert.equal(await count(name), 1);

    const warnings = t.mock.method(console, 'warn', () => undefined);
    const reaper = new DatabaseAllocator({ ...options, adminUrl: server.adminUrl });
    t.after(() => reaper.close());
    const reaped = await reaper.reapStale();
    assert.ok(warnings.mock.calls.some((call) => /corrupt|quarantin|moved aside/i.test(String(call.arguments[0]))), 'the truncated ledger was set aside');
    assert.deepEqual(reaped.map((r) => r.entry.databaseName).sort(), names);
    assert.ok(reaped.every((r) => r.dropped && /no ledger lists it and owner pid \d+ on .* is gone/.test(r.reason)), JSON.stringify(reaped));
    assert.deepEqual(reaped.map((r) => r.entry.project).sort(), ['one', 'two']);
    for (const name of names) assert.equal(await count(name), 0);
    assert.equal(await count(lookalike), 1, 'a database without the mark is never touched');
  });
});
