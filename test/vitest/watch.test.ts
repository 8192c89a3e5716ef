import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile, utimes } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import { exitReaperDone } from '../helpers/exit-reaper.ts';
import { killGroupsAfter } from '../helpers/processes.ts';
import { getTestPostgres } from '../helpers/postgres.ts';
import { tempDir } from '../helpers/tmp.ts';
import { freshRunId, leftoversOf, SUITE_CONFIG, VITEST_BIN } from './helpers.ts';

const SPEC = new URL('./fixtures/suite/tests/record-a.spec.ts', import.meta.url).pathname;

let postgres: Awaited<ReturnType<typeof getTestPostgres>>;
before(async () => {
  postgres = await getTestPostgres();
});
after(() => postgres.release());

/** Waits (bounded) until `check` holds. */
async function until(what: string, check: () => boolean | Promise<boolean>, output: () => string): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (await check()) return;
    await sleep(50);
  }
  assert.fail(`${what} within 30 s:\n${output()}`);
}

test("a watch-mode re-run starts from the seed (reset: 'never'), and what a SIGINT left is dropped as Vitest exits", async (t) => {
  const out = await tempDir(t);
  const runId = freshRunId();
  const child = spawn(process.execPath, [VITEST_BIN, '--watch', '--config', SUITE_CONFIG], {
    env: { ...process.env, NO_COLOR: '1', E2E_LANES_DATABASE_URL: postgres.adminUrl, E2E_LANES_STATE_DIR: join(out, 'state'), E2E_LANES_RUN_ID: runId, FIXTURE_OUT: out, FIXTURE_TESTS: 'record-a', FIXTURE_WORKERS: '1', FIXTURE_RESET: 'never' },
    stdio: ['pipe', 'pipe', 'pipe'],
    detached: true,
  });
  killGroupsAfter(t, () => [child.pid!]);
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const file = join(out, 'record-a.jsonl');
  const lines = async (): Promise<Array<{ test: string; countBefore: number }>> => (existsSync(file) ? (await readFile(file, 'utf8')).trim().split('\n').map((line) => JSON.parse(line) as { test: string; countBefore: number }) : []);
  await until('the first run recorded both tests', async () => (await lines()).length === 2 && /Waiting for file changes/.test(output), () => output);
  assert.deepEqual((await lines()).map((line) => line.countBefore), [2, 3]);
  // A change to the test file: Vitest runs it again.
  const now = new Date();
  await utimes(SPEC, now, now);
  await until('the re-run recorded both tests', async () => (await lines()).length === 4, () => output);
  assert.deepEqual((await lines()).map((line) => line.countBefore), [2, 3, 2, 3], 'the re-run started from the seed');
  // A SIGINT (not a key press in a terminal) makes Vitest exit at once, without its global
  // teardown: the process its exit hook starts drops what the run made, with no `gc`.
  child.kill('SIGINT');
  const ended = await Promise.race([new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code))), sleep(30_000).then(() => 'timeout' as const)]);
  assert.notEqual(ended, 'timeout', output);
  const log = await exitReaperDone(join(out, 'state'), runId, () => output);
  assert.match(log, new RegExp(`run ${runId} ended without its teardown \\(owner pid ${child.pid} is gone\\): tore down 0 server process\\(es\\), 1 database\\(s\\)`));
  assert.deepEqual(await leftoversOf(postgres.adminUrl, runId), { databases: [], roles: [] });
});
