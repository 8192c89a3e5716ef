import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { getTestPostgres } from '../helpers/postgres.ts';
import { tempDir } from '../helpers/tmp.ts';
import { freshRunId, leftoversOf, runVitest, SUITE_CONFIG } from './helpers.ts';

interface Line {
  file: string;
  test: string;
  poolId: string;
  name: string;
  worker: number;
  urlAtImportIsTheDatabase: boolean;
  directUrlAtImportIsTheDatabase: boolean;
  pgDatabaseAtImport: string;
  pgUserAtImport: string;
  currentDatabase: string;
  currentUser: string;
  countBefore: number;
}

const RECORD_FILES = ['record-a', 'record-b', 'record-c', 'record-d', 'record-e', 'record-f'];

let postgres: Awaited<ReturnType<typeof getTestPostgres>>;
before(async () => {
  postgres = await getTestPostgres();
});
after(() => postgres.release());

/** What the record files' tests wrote to `out`. */
async function recorded(out: string): Promise<Line[]> {
  const lines: Line[] = [];
  for (const entry of await readdir(out)) {
    if (entry.endsWith('.jsonl')) for (const text of (await readFile(join(out, entry), 'utf8')).trim().split('\n')) lines.push(JSON.parse(text) as Line);
  }
  return lines;
}

/** Runs the record files of the fixture suite and resolves what every test saw. */
async function runRecords(t: test.TestContext, options: { pool: 'threads' | 'forks'; reset: string }): Promise<{ lines: Line[]; runId: string }> {
  const out = await tempDir(t);
  const runId = freshRunId();
  const run = await runVitest(t, ['--config', SUITE_CONFIG, `--pool=${options.pool}`], {
    E2E_LANES_DATABASE_URL: postgres.adminUrl,
    E2E_LANES_STATE_DIR: join(out, 'state'),
    E2E_LANES_RUN_ID: runId,
    DIRECT_URL: 'postgresql://someone@127.0.0.1:1/the_apps_own',
    DATABASE_URL: 'postgresql://someone@127.0.0.1:1/the_apps_own',
    FIXTURE_OUT: out,
    FIXTURE_TESTS: RECORD_FILES.join(','),
    FIXTURE_RESET: options.reset,
    FIXTURE_WORKERS: '3',
  });
  assert.equal(run.code, 0, run.output);
  const lines = await recorded(out);
  assert.equal(lines.length, RECORD_FILES.length * 2, run.output);
  return { lines, runId };
}

for (const pool of ['threads', 'forks'] as const) {
  describe(`the ${pool} pool`, () => {
    test('gives each worker a database of its own, named in DATABASE_URL, DIRECT_URL and PG* before the test file is imported, reached as its lane role; drops them after', async (t) => {
      const { lines, runId } = await runRecords(t, { pool, reset: 'never' });
      const byPool = new Map<string, Set<string>>();
      for (const line of lines) {
        assert.equal(line.currentDatabase, line.name, `${line.file} ${line.test} queried its worker's database`);
        assert.equal(line.urlAtImportIsTheDatabase, true, `${line.file}: DATABASE_URL named the worker's database when the file was imported`);
        assert.equal(line.directUrlAtImportIsTheDatabase, true, `${line.file}: DIRECT_URL too`);
        assert.equal(line.pgDatabaseAtImport, line.name);
        assert.equal(line.pgUserAtImport, line.name, 'PGUSER is the lane role');
        assert.equal(line.currentUser, line.name, 'the client connected as the lane role, not the admin');
        assert.equal(line.worker, Number(line.poolId) - 1);
        const names = byPool.get(line.poolId) ?? new Set<string>();
        names.add(line.name);
        byPool.set(line.poolId, names);
      }
      // One database per worker slot, a different one for every slot.
      const names = [...byPool.values()].map((set) => {
        assert.equal(set.size, 1);
        return [...set][0]!;
      });
      assert.equal(new Set(names).size, byPool.size);
      assert.ok(byPool.size >= 2, `several workers ran (${byPool.size})`);
      assert.deepEqual(await leftoversOf(postgres.adminUrl, runId), { databases: [], roles: [] });
    });
  });
}

describe('reset modes', () => {
  test("'never': a worker's database keeps what earlier tests and files wrote", async (t) => {
    const { lines } = await runRecords(t, { pool: 'forks', reset: 'never' });
    const seconds = lines.filter((line) => line.test === 'second');
    assert.ok(seconds.every((line) => line.countBefore >= 3), JSON.stringify(seconds));
    // Files that ran after another one in the same slot saw its rows.
    // Six files on three workers: some file ran after another in its slot, and saw its rows.
    assert.ok(lines.some((line) => line.test === 'first' && line.countBefore > 2), JSON.stringify(lines));
  });

  test("'file': every test file starts from the seed", async (t) => {
    const { lines } = await runRecords(t, { pool: 'forks', reset: 'file' });
    for (const line of lines) assert.equal(line.countBefore, line.test === 'first' ? 2 : 3, JSON.stringify(line));
  });

  test("'test': every test starts from the seed (threads pool)", async (t) => {
    const { lines, runId } = await runRecords(t, { pool: 'threads', reset: 'test' });
    for (const line of lines) assert.equal(line.countBefore, 2, JSON.stringify(line));
    assert.deepEqual(await leftoversOf(postgres.adminUrl, runId), { databases: [], roles: [] });
  });
});

test('two shards of one suite run at once on one state folder, each with databases of its own run, and leave nothing', async (t) => {
  const out = await tempDir(t);
  const env = { E2E_LANES_DATABASE_URL: postgres.adminUrl, E2E_LANES_STATE_DIR: join(out, 'state'), E2E_LANES_RUN_ID: '', FIXTURE_OUT: out, FIXTURE_TESTS: RECORD_FILES.join(','), FIXTURE_WORKERS: '2', FIXTURE_RESET: 'file' };
  const shards = await Promise.all([1, 2].map((shard) => runVitest(t, ['--config', SUITE_CONFIG, `--shard=${shard}/2`], env)));
  const runIds = shards.map((run) => {
    assert.equal(run.code, 0, run.output);
    return /\(run (\S+), a database per worker/.exec(run.output)?.[1];
  });
  assert.ok(runIds[0] && runIds[1] && runIds[0] !== runIds[1], `two runs: ${runIds.join(', ')}`);
  const lines = await recorded(out);
  // Every file ran once, in one of the shards, from the seed.
  assert.equal(lines.length, RECORD_FILES.length * 2);
  for (const line of lines) assert.equal(line.countBefore, line.test === 'first' ? 2 : 3, JSON.stringify(line));
  for (const runId of runIds) assert.deepEqual(await leftoversOf(postgres.adminUrl, runId!), { databases: [], roles: [] });
});
