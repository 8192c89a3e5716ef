/**
 * Who uses the shared embedded server comes from live evidence, not from `embedded-postgres.json`
 * alone: with the users file truncated during a live run, a second run that comes and goes does
 * not stop the server under the first.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { chmodSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { reapEmbeddedPostgres } from '../../src/postgres/index.js';
import { runFixture } from '../helpers/processes.js';
import { tempDir } from '../helpers/tmp.js';

const HOLD = fileURLToPath(new URL('../fixtures/embedded/hold.ts', import.meta.url));
const ENV = { E2E_LANES_OWNER_PID: '', E2E_LANES_RUN_ID: '', E2E_LANES_QUIET: '1' };

/** The users file next to a data folder (wherever the layout put it). */
function usersFileNear(dataDir: string): string {
  const dir = dirname(dataDir);
  const name = readdirSync(dir).find((entry) => entry === 'embedded-postgres.json');
  assert.ok(name, `embedded-postgres.json next to ${dataDir} (found ${readdirSync(dir).join(', ')})`);
  return join(dir, name);
}

test("a truncated embedded-postgres.json during a live run: a second run comes and goes, and the first run's next query still works", { timeout: 120_000 }, async (t) => {
  const root = await tempDir(t);
  chmodSync(root, 0o755); // the server's own user (postgres, when run as root) must reach its data
  const dataDir = join(root, 'pg', 'data');
  const stateDir = join(root, 'state');
  t.after(async () => {
    await reapEmbeddedPostgres({ dataDir, stateDir }).catch(() => undefined);
  });
  // The first start runs initdb: on a loaded machine that may take longer than startFixture's 30 s.
  const first = spawn(process.execPath, ['--import', 'tsx', HOLD, JSON.stringify({ dataDir, stateDir, runId: 'run-first', mode: 'hold' })], { env: { ...process.env, ...ENV }, stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => void first.kill('SIGKILL'));
  let out = '';
  let err = '';
  first.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  first.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
  for (let waited = 0; !out.includes('\n'); waited += 100) {
    if (waited > 90_000 || first.exitCode !== null) throw new Error(`the first run did not hold the server: ${out}${err}`);
    await sleep(100);
  }
  const held = JSON.parse(out.slice(0, out.indexOf('\n'))) as { adminUrl: string; started: boolean };
  assert.equal(held.started, true, 'the first run started the server');

  writeFileSync(usersFileNear(dataDir), '{"kind":"e2e-lanes/embedded-postgres","vers');
  const second = JSON.parse((await runFixture(HOLD, [JSON.stringify({ dataDir, stateDir: join(root, 'state-2'), runId: 'run-second', mode: 'once' })], { env: ENV })).trim().split('\n')[0]!) as { started: boolean };
  assert.equal(second.started, false, 'the second run joined the running server');

  const client = new pg.Client({ connectionString: held.adminUrl, connectionTimeoutMillis: 5_000 });
  try {
    await client.connect();
    const { rows } = await client.query<{ one: number }>('SELECT 1 AS one');
    assert.equal(rows[0]?.one, 1);
  } finally {
    await client.end().catch(() => undefined);
  }
});
