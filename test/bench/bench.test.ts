import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { execa } from 'execa';
import pg from 'pg';
import { getTestPostgres } from '../helpers/postgres.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const DOCS = fileURLToPath(new URL('../../docs/performance.md', import.meta.url));

let server: Awaited<ReturnType<typeof getTestPostgres>>;
before(async () => {
  server = await getTestPostgres();
});
after(() => server?.release());

// The bench is a script, not a test of speed: this only checks that it still runs end to end,
// reports its target, writes nothing without --write-docs and leaves nothing behind.
test('npm run bench -- --only floor --quick runs, reports the target and leaves nothing behind', { timeout: 240_000 }, async () => {
  const docsBefore = await readFile(DOCS, 'utf8');
  const run = await execa(process.execPath, ['--import', 'tsx', 'scripts/bench.ts', '--only', 'floor', '--quick'], {
    cwd: ROOT,
    env: { E2E_LANES_DATABASE_URL: server.adminUrl },
    all: true,
    reject: false,
    timeout: 200_000,
  });
  assert.equal(run.exitCode, 0, run.all);
  const id = /\bid (bench[0-9a-f]{4})\b/.exec(run.stdout)?.[1];
  assert.ok(id, run.stdout);
  assert.match(run.stdout, /## 2\. Clone floor/);
  assert.match(run.stdout, /\| toolkit per-lane database time vs clone floor +\| [^|]+\| \d+(\.\d+)?× \([^)]+\) +\| (PASS|MISS) +\|/);
  assert.equal(await readFile(DOCS, 'utf8'), docsBefore, 'docs/performance.md is only written with --write-docs');

  const client = new pg.Client({ connectionString: server.adminUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ datname: string }>('SELECT datname FROM pg_database WHERE datname LIKE $1', [`${id}%`]);
    assert.deepEqual(rows, [], 'databases the bench created');
  } finally {
    await client.end();
  }
});
