import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { isPidAlive } from '../../src/state/index.js';
import { announcedLanes, assertNothingLeft, expectExit, reportTests, sandbox, startPlaywright, suite, useSharedPostgres } from './helpers.ts';

// Ports 7400-7499: this file's block (7499 is the leftover webServer's).
const PORTS = [7400, 7489] as const;
const WEBSERVER_PORT = 7499;

useSharedPostgres();

describe('the lane service and lane boots', { concurrency: false }, () => {
  test('--project alpha: lanes of alpha and its dependency only; lane servers lack the service token; the service refuses other projects and bad bodies', async (t) => {
    const box = await sandbox(t, { ports: PORTS });
    const run = startPlaywright(box, { config: suite('service'), args: ['--project', 'alpha'] });
    const exit = await run.exit;
    expectExit(exit, 0, run.output());
    const tests = reportTests(await run.report());
    assert.deepEqual(tests.map((item) => `${item.project}:${item.results[0]?.status}`).sort(), ['alpha:passed', 'setup:passed'], run.output());
    assert.deepEqual(announcedLanes(run).map((lane) => lane.project).sort(), ['alpha', 'setup'], `no lane booted for a project outside the run:\n${run.output()}`);
    await assertNothingLeft(box, [run.runId], { output: run.output() });
  });

  test('a server answering HTTP 500: the run learns it in seconds, once, and every later test gets the remembered error at once', async (t) => {
    const box = await sandbox(t, { ports: PORTS });
    // Before: 30 s of timeout for every test (each new worker booted the lane again). The deadline keeps a regression bounded.
    const run = startPlaywright(box, { config: suite('unhealthy'), timeoutMs: 60_000 });
    const exit = await run.exit;
    expectExit(exit, 1, run.output());
    assert.ok(exit.ms < 30_000, `the run took ${exit.ms} ms`);
    const results = reportTests(await run.report()).map((item) => ({ title: item.title, result: item.results[0]! }));
    assert.equal(results.length, 3);
    const messages = results.map(({ result }) => result.errors.map((error) => error.message ?? '').join('\n'));
    assert.ok(results.every(({ result }) => result.status === 'failed'), messages.join('\n---\n'));
    assert.match(messages[0]!, /\[SERVER_UNHEALTHY\] Server "backend" for project "broken" answered GET http:\/\/localhost:\d+\/health with nothing but 5xx for 5(\.\d)? s \(\d+ polls\); last answer: HTTP 500, body "\{\\"error\\":\\"health check failing on purpose \(500\)\\"\}"/);
    assert.doesNotMatch(messages[0]!, /remembered/);
    for (const message of messages.slice(1)) {
      assert.match(message, /\[SERVER_UNHEALTHY\] The lane of project "broken" of run \S+ failed to boot at \d\d:\d\d:\d\d UTC and is not booted again in this run; this is the remembered error of that first boot:/);
      assert.match(message, /last answer: HTTP 500/);
    }
    assert.equal(run.output().match(/SERVER_START_TIMEOUT/g), null);
    await assertNothingLeft(box, [run.runId], { output: run.output() });
  });

  test('a server that ignores SIGTERM and starts a child in its own session: the run exits 0 and the child is gone', async (t) => {
    const box = await sandbox(t, { ports: PORTS });
    const pidFile = join(box.dir, 'child.pid');
    const run = startPlaywright(box, { config: suite('escape'), env: { FAULTS_CHILD_PID_FILE: pidFile } });
    let child: number | undefined;
    t.after(() => {
      try {
        if (child) process.kill(child, 'SIGKILL');
      } catch {
        // gone
      }
    });
    expectExit(await run.exit, 0, run.output());
    child = Number(await readFile(pidFile, 'utf8'));
    assert.ok(Number.isInteger(child) && child > 0, `the child wrote its pid: ${child}`);
    assert.equal(isPidAlive(child), false, 'the child that left the server\'s process group survived the run');
    await assertNothingLeft(box, [run.runId], { output: run.output() });
  });

  test('a leftover webServer is refused with CONFIG_INVALID and the fix; allowWebServer lets it run', async (t) => {
    const box = await sandbox(t, { ports: PORTS });
    const env = { FAULTS_WEBSERVER_PORT: String(WEBSERVER_PORT) };
    const refused = startPlaywright(box, { config: suite('webserver'), env });
    const exit = await refused.exit;
    expectExit(exit, 1, refused.output());
    assert.match(refused.output(), /\[CONFIG_INVALID\] The Playwright config has a `webServer` \(".*leftover.*"\) besides the lanes/);
    assert.match(refused.output(), /Hint: Move it into the `servers` option of withLanes .* set `allowWebServer: true`/);
    assert.doesNotMatch(refused.output(), /passed/);
    await assertNothingLeft(box, [refused.runId], { output: refused.output() });

    const allowed = startPlaywright(box, { config: suite('webserver'), env: { ...env, FAULTS_ALLOW_WEBSERVER: '1' } });
    expectExit(await allowed.exit, 0, allowed.output());
    await assertNothingLeft(box, [allowed.runId], { output: allowed.output() });
  });
});
