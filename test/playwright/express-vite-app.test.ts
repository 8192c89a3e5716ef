import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { installCjsApp, runInApp } from '../helpers/cjs-app.js';
import { databasesStartingWith, useTestDatabases } from '../databases/helpers.js';
import { attachmentText, reportTests, serverProcesses, type JsonReport } from '../faults/helpers.ts';

const server = useTestDatabases('evapp');

/** An Express 4 backend (handlers without a catch) and a Vite 4 dev server, in a CommonJS package. */
const EXPRESS_VITE_APP = fileURLToPath(new URL('../fixtures/express-vite-app/', import.meta.url));

let app: { dir: string; remove(): Promise<void> } | undefined;
before(async () => {
  app = await installCjsApp({
    from: EXPRESS_VITE_APP,
    link: { '@playwright': '@playwright', pg: 'pg', express: 'express', vite: 'vite4' },
    bin: { vite: 'vite/bin/vite.js' },
  });
});
after(() => app?.remove());

interface Boot {
  test: string;
  pid: number;
  startedAt: string;
  slowReports: number;
}

/** One `npx playwright test` of the app, its JSON report's tests and the backend processes its tests saw. */
async function runApp(t: TestContext, env: NodeJS.ProcessEnv, args: string[] = []) {
  const dir = app!.dir;
  const runId = `evapp-${randomBytes(4).toString('hex')}`;
  const reportFile = join(dir, 'report.json');
  await rm(reportFile, { force: true });
  await rm(join(dir, 'boots.jsonl'), { force: true });
  t.after(() => {
    // Whatever happened, no lane server of the run outlives the test.
    for (const leftover of serverProcesses({ runIds: [runId] })) {
      try {
        process.kill(-leftover.pgid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  });
  const run = await runInApp(t, dir, 'node_modules/@playwright/test/cli.js', ['test', '--reporter=line,json', ...args], {
    env: { E2E_LANES_DATABASE_URL: server.adminUrl, EXPRESS_VITE_APP_PREFIX: server.prefix, E2E_LANES_RUN_ID: runId, PLAYWRIGHT_JSON_OUTPUT_NAME: reportFile, CI: '', ...env },
    timeoutMs: 150_000,
  });
  const report = await readFile(reportFile, 'utf8').catch(() => undefined);
  assert.ok(report, `the run wrote its report\n${run.output}`);
  const tests = reportTests(JSON.parse(report) as JsonReport);
  const result = (letter: string) => tests.find((item) => item.title.startsWith(`${letter}:`))?.results[0];
  const boots = (await readFile(join(dir, 'boots.jsonl'), 'utf8').catch(() => ''))
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Boot);
  const boot = (letter: string) => boots.find((item) => item.test === letter);
  return { runId, run, result, boot };
}

/** Checks that the run left no server process and no lane database (the template and its ready copies stay). */
async function assertNothingLeft(runId: string): Promise<void> {
  assert.deepEqual(serverProcesses({ runIds: [runId] }), []);
  const left = await databasesStartingWith(server.adminUrl, `${server.prefix}_`);
  assert.deepEqual(left.filter((name) => !name.startsWith(`${server.prefix}_tpl_`) && !name.startsWith(`${server.prefix}_pool_`)), []);
}

test('an Express + Vite 4 app: a reset under a running request keeps the backend alive, a crashed backend is restarted and only the test that crashed it fails', { timeout: 180_000 }, async (t) => {
  const { runId, run, result, boot } = await runApp(t, {});

  // The lane booted: the Vite 4 dev server answered its health check (`GET /`).
  assert.match(run.output, /lane project "app" of run \S+ up in \d+ ms: backend \d+, frontend \d+, database /, run.output);
  assert.notEqual(run.code, 0, run.output);
  assert.match(run.output, /\b1 failed\b/, run.output);
  assert.match(run.output, /\b3 passed\b/, run.output);
  assert.deepEqual(['A', 'B', 'C', 'D'].map((letter) => result(letter)?.status), ['passed', 'passed', 'failed', 'passed'], run.output);

  // B ran on the process that answered A, after the slow report A left running had finished there.
  const [a, b, c, d] = ['A', 'B', 'C', 'D'].map(boot);
  assert.ok(a && b && c && d, run.output);
  assert.deepEqual([b.pid, b.startedAt, b.slowReports], [a.pid, a.startedAt, 1]);
  assert.equal(c.pid, a.pid);
  assert.notEqual(d.pid, a.pid, 'D ran on the restarted backend');
  // No query was ended under a handler (the pool's listener may print an idle connection ended by a reset).
  assert.doesNotMatch(run.output, /\berror: terminating connection due to administrator command/);

  // C failed because its backend died, with what the backend printed while C ran.
  const failed = result('C')!;
  const messages = failed.errors.map((error) => error.message ?? '').join('\n');
  assert.match(messages, /\[SERVER_EXITED\] The lane of project "app" lost a server during the run: "backend" \(pid \d+\) exited with code 1 \(restarted since\)/, messages);
  const log = failed.attachments.find((attachment) => attachment.name === 'backend.log');
  assert.ok(log, `backend.log is attached (attachments: ${failed.attachments.map((attachment) => attachment.name).join(', ')})`);
  // It exited by itself, right after C's own reset: the hint does not blame the reset.
  // (Its hint lines only: the error's code frame quotes the source, where both hints are written.)
  const hints = messages.split('\n').filter((line) => line.trim().startsWith('Hint:')).join('\n');
  assert.match(hints, /The server died on its own/, `${messages}\n--- backend.log:\n${await attachmentText(log)}`);
  assert.doesNotMatch(hints, /after the lane's database was swapped/, `${messages}\n--- backend.log:\n${await attachmentText(log)}`);
  assert.match(await attachmentText(log), /^\S+Z GET \/api\/crash\n\S+Z crash requested: exiting with code 1$/m);
  assert.match(run.output, /server "backend" of project "app" of run \S+ restarted on the same ports \(pid \d+; restart 1 of at most 3 in this run\)/);

  await assertNothingLeft(runId);
});

test('without the reset grace (resetGraceMs 0) the same reset kills the backend under the slow report', { timeout: 120_000 }, async (t) => {
  const { runId, run, result } = await runApp(t, { EXPRESS_VITE_APP_RESET_GRACE_MS: '0' }, ['--grep', '\\b[AB]: ']);
  assert.deepEqual(['A', 'B'].map((letter) => result(letter)?.status), ['passed', 'failed'], run.output);
  const failed = result('B')!;
  const messages = failed.errors.map((error) => error.message ?? '').join('\n');
  assert.match(messages, /\[SERVER_EXITED\] The lane of project "app" lost a server during the run: "backend"/);
  // Its log shows the session the reset ended: the hint names the reset first.
  assert.match(messages.split('\n').filter((line) => line.trim().startsWith('Hint:')).join('\n'), /after the lane's database was swapped/, messages);
  const log = failed.attachments.find((attachment) => attachment.name === 'backend.log');
  assert.ok(log, run.output);
  // The slow report's query, ended by the reset, rejected in the handler, which has no catch.
  assert.match(await attachmentText(log), /error: terminating connection due to administrator command\n(?:\S+Z .*\n)*?\S+Z\s+at async \S*server\/index\.js:\d+/);
  await assertNothingLeft(runId);
});
