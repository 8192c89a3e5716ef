import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import pg from 'pg';
import { runSeed } from '../../src/databases/index.js';
import { isLanesError } from '../../src/errors.js';
import { withDatabase } from '../../src/postgres/index.js';
import { databasesStartingWith, query, useTestDatabases } from '../databases/helpers.js';
import { runFixture } from '../helpers/processes.js';

const server = useTestDatabases('hostseed');
const seeds = (name: string): string => fileURLToPath(new URL(`../fixtures/seeds/${name}`, import.meta.url));

/** The JSON lines a fixture printed. */
function jsonLines(stdout: string): Array<Record<string, unknown>> {
  return stdout.split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as Record<string, unknown>);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('a seed module cannot take the runner down', () => {
  it("a seed whose client has no 'error' listener and never resolves gives SEED_TIMEOUT, and the runner lives on", { timeout: 60_000 }, async () => {
    const prefix = `${server.prefix}_a`;
    // On a runner that ran the seed in its own process, ending the seed's session killed it: `Unhandled 'error' event`.
    const stdout = await runFixture(seeds('build-template.ts'), [prefix, seeds('unguarded-client-never-resolves.mjs'), '4000'], { env: { FIXTURE_ADMIN_URL: server.adminUrl, E2E_LANES_QUIET: '1' } });
    const [result, alive] = jsonLines(stdout);
    assert.equal(result?.code, 'SEED_TIMEOUT', stdout);
    const message = String(result?.message);
    assert.match(message, /unguarded-client-never-resolves\.mjs had not resolved after 4 s/);
    assert.match(message, /hostile seed: connected, now waiting forever/, 'the seed\'s output is quoted');
    const seedPid = Number(/its process \(pid (\d+)\) was killed/.exec(message)?.[1]);
    assert.ok(seedPid > 0 && !isAlive(seedPid), `the seed's process ${seedPid} is gone`);
    assert.ok(typeof alive?.alive === 'number', `the runner outlived the seed's end: ${stdout}`);
    assert.deepEqual(await databasesStartingWith(server.adminUrl, `${prefix}_tpl_`), [], 'no template or build database is left');
  });

  it('a seed that leaves a rejection unhandled gives SEED_FAILED with its output, and the runner lives on', { timeout: 60_000 }, async () => {
    const prefix = `${server.prefix}_b`;
    const stdout = await runFixture(seeds('build-template.ts'), [prefix, seeds('rejects-unhandled.mjs'), '30000'], { env: { FIXTURE_ADMIN_URL: server.adminUrl, E2E_LANES_QUIET: '1' } });
    const [result, alive] = jsonLines(stdout);
    assert.equal(result?.code, 'SEED_FAILED', stdout);
    assert.match(String(result?.message), /exited with code 1 before its default export resolved/);
    assert.match(String(result?.message), /a rejection nobody handles/);
    assert.ok(typeof alive?.alive === 'number', stdout);
    assert.deepEqual(await databasesStartingWith(server.adminUrl, `${prefix}_tpl_`), []);
  });

  it('a seed that resolves with its client still open seeds the database, and its process is gone at once', { timeout: 60_000 }, async () => {
    const database = `${server.prefix}_c`;
    await query(server.adminUrl, `CREATE DATABASE ${pg.escapeIdentifier(database)}`);
    const url = withDatabase(server.adminUrl, database);
    const started = performance.now();
    await runSeed(seeds('leaves-a-client-open.ts'), url, { timeoutMs: 20_000 });
    const tookMs = performance.now() - started;
    assert.deepEqual(await query(url, 'SELECT id FROM seeded_and_left_open'), [{ id: 1 }]);
    const sessions = await query<{ n: number }>(server.adminUrl, 'SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1', [database]);
    assert.equal(sessions[0]?.n, 0, 'the seed\'s session ended with its process');
    assert.ok(tookMs < 10_000, `took ${Math.round(tookMs)} ms`);
  });

  it('a seed module that cannot be loaded still names the import error', async () => {
    await assert.rejects(runSeed(seeds('no-such-seed.ts'), 'postgres://nobody@127.0.0.1:1/none'), (error) => {
      assert.ok(isLanesError(error, 'SEED_FAILED'), String(error));
      assert.match(error.message, /no-such-seed\.ts could not be loaded: /);
      return true;
    });
  });
});
