import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  SUITES_DIR,
  assertNothingLeft,
  attachmentText,
  expectExit,
  reportTests,
  sandbox,
  startPlaywright,
  suite,
  useSharedPostgres,
} from './helpers.ts';

// Ports 6200-6299: this file's block.
const PORTS = [6200, 6299] as const;

useSharedPostgres();

test('a backend that crashes mid-run: the failing test says the server died and carries its log and lane.json, the next test passes on the restarted backend; teardown still cleans up', async (t) => {
  const box = await sandbox(t, { ports: PORTS });
  const steps = join(box.dir, 'steps.txt');
  const run = startPlaywright(box, { config: suite('crash'), reporter: `list,json,${join(SUITES_DIR, 'steps-reporter.ts')}`, env: { FAULTS_STEPS_FILE: steps } });
  const exit = await run.exit;
  expectExit(exit, 1, run.output());

  const tests = reportTests(await run.report());
  const before = tests.find((item) => item.title === 'the backend answers before it crashes');
  const failing = tests.find((item) => item.title === 'a request after the crash fails');
  assert.equal(before?.results[0]?.status, 'passed');
  const result = failing?.results[0];
  assert.equal(result?.status, 'failed', run.output());
  const after = tests.find((item) => item.title === 'the next test runs on the restarted backend');
  assert.equal(after?.results[0]?.status, 'passed', `the test after the crash runs on the restarted backend\n${run.output()}`);

  const log = result.attachments.find((attachment) => attachment.name === 'backend.log');
  assert.ok(log, `backend.log is attached (attachments: ${result.attachments.map((a) => a.name).join(', ')})`);
  const text = await attachmentText(log);
  // The lines the server wrote while this test ran, with their times, and where the whole log is.
  // The log of the process that died, kept beside the restarted one's.
  assert.match(text, /^\(lines written while this test ran; whole log: .*backend\.died-1\.log\)\n/);
  assert.match(text, /^\S+Z backend: crashing on purpose \(GET \/crash\)$/m, 'the log holds the last line printed before the crash');
  assert.doesNotMatch(text, /backend: listening on \d+/, "the server's start, before this test, is not in this test's slice");

  const facts = result.attachments.find((attachment) => attachment.name === 'lane.json');
  assert.ok(facts, 'lane.json is attached');
  const lane = JSON.parse(await attachmentText(facts)) as { project: string; ports: Record<string, number>; databaseName: string; databaseUrl: string; servers: Array<{ name: string; alive: boolean; exit?: { code: number } }> };
  assert.equal(lane.project, 'crashy');
  assert.ok(lane.ports.backend! > 0);
  assert.match(lane.databaseUrl, /^postgres:\/\/[^:]+:\*\*\*@/, 'no password in lane.json');
  // The process that died; the restarted one, when its restart was done by then, is listed alive.
  assert.deepEqual(lane.servers.filter((server) => !server.alive).map((server) => [server.name, server.exit?.code]), [['backend', 3]]);
  // The lane's boot is a titled step of the report and the trace.
  assert.match(await readFile(steps, 'utf8'), /^lane "crashy": backend \d+, database faults_[a-z0-9_]+, ready in \d+\.\d s$/m);

  const messages = result.errors.map((error) => error.message ?? '').join('\n');
  assert.match(messages, /\[SERVER_EXITED\] The lane of project "crashy" lost a server during the run: "backend" \(pid \d+\) exited with code 3/);
  assert.match(messages, /See the attached backend\.log/);
  assert.match(run.output(), /warning: server "backend" of project "crashy" of run \S+ \(pid \d+\) died during the run: exited with code 3\. Log: .*\. Restarting it/);
  assert.match(run.output(), /server "backend" of project "crashy" of run \S+ restarted on the same ports \(pid \d+; restart 1 of at most 3 in this run\)/);

  await assertNothingLeft(box, [run.runId]);
});
