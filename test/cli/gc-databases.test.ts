import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, test, type TestContext } from 'node:test';
import { DATABASES_FILE } from '../../src/databases/index.js';
import { databasesStartingWith, dropDatabasesStartingWith, query } from '../databases/helpers.js';
import { getTestPostgres } from '../helpers/postgres.js';
import { runCli } from '../helpers/cli.js';
import { exited } from '../helpers/processes.js';
import { tempDir } from '../helpers/tmp.js';

const root = new URL('../../', import.meta.url).pathname;
const CONFIG = 'test/fixtures/cli/gc-databases.config.ts';
const FIXTURES = join(root, 'test/fixtures/migrations');
const prefix = `gc${randomBytes(3).toString('hex')}`;

let server: { adminUrl: string; release(): Promise<void> } | undefined;
before(async () => {
  server = await getTestPostgres();
});
after(async () => {
  if (!server) return;
  await dropDatabasesStartingWith(server.adminUrl, `${prefix}_`);
  await server.release();
});
const adminUrl = (): string => server!.adminUrl;

/** Runs a child with its stdin open; resolves the child and a promise of its first line. */
function start(t: TestContext, args: string[], env: NodeJS.ProcessEnv): { child: ChildProcess; firstLine: Promise<string> } {
  const child = spawn(process.execPath, ['--import', 'tsx', ...args], {
    env: { ...process.env, FIXTURE_ADMIN_URL: adminUrl(), E2E_LANES_OWNER_PID: '', E2E_LANES_QUIET: '1', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let out = '';
  const firstLine = new Promise<string>((resolve, reject) => {
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('\n')) resolve(out.slice(0, out.indexOf('\n')));
    });
    child.on('exit', (code) => reject(new Error(`${args[0]} exited (${code}) before printing`)));
  });
  firstLine.catch(() => undefined);
  return { child, firstLine };
}

const cli = runCli;

test('gc (and gc --dry-run) finds, and gc drops, the lane databases of a SIGKILLed run whose ledger was truncated, and the build database of a SIGKILLed builder', { timeout: 180_000 }, async (t) => {
  const stateDir = await tempDir(t);
  const basic = { migrations: `${FIXTURES}/basic/migrations`, seed: `${FIXTURES}/basic/seed.ts` };
  // A run holding two lanes, SIGKILLed; its ledger then truncated.
  const host = start(t, [join(root, 'test/databases/fixtures/host.ts'), JSON.stringify({ prefix, ...basic, stateDir, runId: 'gc-lost', registry: 'file' }), 'one', 'two'], {});
  const lanes = (JSON.parse(await host.firstLine) as { lanes: { databaseName: string }[] }).lanes.map((lane) => lane.databaseName);
  host.child.kill('SIGKILL');
  await exited(host.child);
  await writeFile(join(stateDir, DATABASES_FILE), '{"kind":"e2e-lanes/datab');
  // A builder SIGKILLed during its seed.
  const builderState = await tempDir(t);
  const builder = start(t, [`${FIXTURES}/allocate.ts`, JSON.stringify({ prefix, migrations: basic.migrations, seed: `${FIXTURES}/basic/hanging-seed.ts`, stateDir: builderState, runId: 'gc-builder', registry: 'file' }), 'app', 'hold'], { SEED_HANG: '1' });
  const builds = async (): Promise<string[]> => (await databasesStartingWith(adminUrl(), `${prefix}_tpl_`)).filter((name) => name.includes('_build_'));
  for (let waited = 0; (await builds()).length === 0; waited += 100) {
    if (waited > 30_000) throw new Error('the builder never reached its seed');
    await sleep(100);
  }
  await sleep(500); // inside the seed (its migrations are applied within milliseconds)
  builder.child.kill('SIGKILL');
  await exited(builder.child);
  const [build] = await builds();
  assert.ok(build);

  const count = async (names: string[]): Promise<number> =>
    (await query<{ n: number }>(adminUrl(), 'SELECT count(*)::int AS n FROM pg_database WHERE datname = ANY($1::text[])', [names]))[0]?.n ?? -1;
  assert.equal(await count([...lanes, build]), 3);
  const env = { GC_TEST_PREFIX: prefix, E2E_LANES_DATABASE_URL: adminUrl(), E2E_LANES_REGISTRY: 'file' };
  const dry = await cli(['gc', '--dry-run', '--config', CONFIG, '--state-dir', stateDir], env);
  assert.equal(dry.code, 0, dry.stderr);
  assert.match(dry.stdout, /would remove 0 lane\(s\), \d+ server process\(es\), 3 database\(s\)/);
  assert.equal(await count([...lanes, build]), 3, 'a dry run drops nothing');
  const result = await cli(['gc', '--config', CONFIG, '--state-dir', stateDir], env);
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /removed 0 lane\(s\), \d+ server process\(es\), 3 database\(s\)/);
  for (const name of [...lanes, build]) assert.ok(result.stdout.includes(`database ${name}`), result.stdout);
  assert.equal(await count([...lanes, build]), 0);
});

test('gc drops the ready copies of templates that are gone, with them when it drops old templates, and keeps those of kept templates', { timeout: 120_000 }, async (t) => {
  const stateDir = await tempDir(t);
  const mark = (hash: string): string => JSON.stringify({ toolkit: 'e2e-lanes', kind: 'pool', created: new Date().toISOString(), hash });
  const pool = (hash: string, tag: string): string => `${prefix}_pool_${hash}_${tag}`;
  // A template that exists (kept by gc: the newest), one gc drops (older than --keep-templates 1), one already gone.
  const kept = 'aaaaaaaaaaa1';
  const old = 'aaaaaaaaaaa2';
  const gone = 'aaaaaaaaaaa3';
  for (const [hash, builtAt] of [[kept, '2099-01-01T00:00:00.000Z'], [old, '2000-01-01T00:00:00.000Z']] as const) {
    const name = `${prefix}_tpl_${hash}`;
    await query(adminUrl(), `CREATE DATABASE ${name}`);
    await query(adminUrl(), `COMMENT ON DATABASE ${name} IS '${JSON.stringify({ toolkit: 'e2e-lanes', kind: 'template', created: builtAt, hash, builtAt, toolkitVersion: '0' })}'`);
    await query(adminUrl(), `ALTER DATABASE ${name} WITH ALLOW_CONNECTIONS false IS_TEMPLATE true`);
  }
  for (const hash of [kept, old, gone]) {
    await query(adminUrl(), `CREATE DATABASE ${pool(hash, '0000aaaa')}`);
    await query(adminUrl(), `COMMENT ON DATABASE ${pool(hash, '0000aaaa')} IS '${mark(hash)}'`);
  }
  const env = { GC_TEST_PREFIX: prefix, E2E_LANES_DATABASE_URL: adminUrl(), E2E_LANES_REGISTRY: 'file' };
  const dry = await cli(['gc', '--dry-run', '--keep-templates', '1', '--config', CONFIG, '--state-dir', stateDir], env);
  assert.equal(dry.code, 0, dry.stderr);
  for (const run of [dry]) {
    assert.ok(run.stdout.includes(`ready copy ${pool(old, '0000aaaa')}`) && run.stdout.includes(`ready copy ${pool(gone, '0000aaaa')}`), run.stdout);
    assert.ok(!run.stdout.includes(`ready copy ${pool(kept, '0000aaaa')}`), run.stdout);
  }
  const before = await cli(['status', '--all-machines', '--json', '--config', CONFIG, '--state-dir', stateDir], env);
  assert.equal(before.code, 0, before.stderr);
  assert.ok((JSON.parse(before.stdout) as { readyCopies: number }).readyCopies >= 3, 'status --all-machines counts the ready copies');
  const result = await cli(['gc', '--keep-templates', '1', '--config', CONFIG, '--state-dir', stateDir], env);
  assert.equal(result.code, 0, result.stderr);
  assert.ok(result.stdout.includes(`ready copy ${pool(old, '0000aaaa')}`) && result.stdout.includes(`ready copy ${pool(gone, '0000aaaa')}`), result.stdout);
  const after = await cli(['status', '--all-machines', '--config', CONFIG, '--state-dir', stateDir], env);
  assert.match(after.stdout, /Ready copies of templates on the server: \d+\./);
  const left = await databasesStartingWith(adminUrl(), `${prefix}_pool_`);
  assert.deepEqual(left, [pool(kept, '0000aaaa')]);
});
