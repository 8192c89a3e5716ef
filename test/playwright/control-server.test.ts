import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { LaneManager } from '../../src/lanes/lane-manager.js';
import { isLanesError } from '../../src/errors.js';
import { reportTest, requestLane } from '../../src/playwright/control-client.js';
import { CONTROL_TOKEN_ENV, CONTROL_URL_ENV } from '../../src/env-vars.js';
import { startControlServer, type ControlServer } from '../../src/playwright/control-server.js';
import { PRIVATE_RUNNER_ENV } from '../../src/servers/index.js';
import { installWorkerTokens } from '../../src/playwright/worker-tokens.js';
import { tempDir } from '../helpers/tmp.js';

const SERVER = new URL('../fixtures/servers/http-server.mjs', import.meta.url).pathname;

async function service(t: TestContext, extra: ConstructorParameters<typeof LaneManager>[0] = {}): Promise<{ manager: LaneManager; control: ControlServer }> {
  const manager = new LaneManager({ stateDir: await tempDir(t), runId: `control-${process.pid}-${Math.random().toString(36).slice(2, 6)}`, portRange: [35_500, 35_599], servers: [], database: false, ...extra });
  t.after(() => manager.teardown({ keep: false }));
  const control = await startControlServer(manager, { projects: ['alpha', 'beta'], workers: 2 });
  t.after(() => control.close());
  return { manager, control };
}

async function post(control: ControlServer, body: string): Promise<{ status: number; error?: { code: string; message: string; hint?: string }; lane?: { project: string } }> {
  const response = await fetch(`${control.url}/lanes`, { method: 'POST', headers: { authorization: `Bearer ${control.token}`, 'content-type': 'application/json' }, body });
  return { status: response.status, ...((await response.json()) as object) };
}

test('the lane service refuses bodies that are not a lane request with 400, saying what it expects', async (t) => {
  const { manager, control } = await service(t);
  for (const body of ['not json', '[1]', '"alpha"', '{"project": 3}', '{"project": "alpha", "worker": 2}', '{"project": "alpha", "worker": -1}', '{"project": "alpha", "worker": 0.5}', '{"project": "alpha", "extra": 1}']) {
    const answer = await post(control, body);
    assert.equal(answer.status, 400, body);
    assert.equal(answer.error?.code, 'LANE_REQUEST_INVALID', body);
    assert.ok(answer.error?.hint, `${body}: a hint`);
  }
  assert.match((await post(control, 'not json')).error!.message, /not JSON: "not json"/);
  assert.match((await post(control, '{"project": "alpha", "worker": 2}')).error!.message, /worker 2; this run has 2 worker\(s\) \(0 to 1\)/);
  const huge = await post(control, JSON.stringify({ project: 'alpha', pad: 'x'.repeat(40_000) }));
  assert.equal(huge.status, 413);
  assert.deepEqual(await manager.lanes(), [], 'no lane was booted');
});

test('the lane service answers 404 for a project outside the run, naming the known ones, and boots nothing', async (t) => {
  const { manager, control } = await service(t);
  const answer = await post(control, '{"project": "nonexistent-xyz"}');
  assert.equal(answer.status, 404);
  assert.equal(answer.error?.code, 'LANE_NOT_FOUND');
  assert.match(answer.error!.message, /Project "nonexistent-xyz" is not a project of this run \(known: "alpha", "beta"\)/);
  assert.deepEqual(await manager.lanes(), []);
  const ok = await post(control, '{"project": "beta", "worker": 1}');
  assert.equal(ok.status, 200);
  assert.equal(ok.lane?.project, 'beta');
  assert.equal((await manager.lanes()).length, 1);
});

test("lane servers never see the runner's private variables: the lane service's URL and token, the admin URL", { timeout: 60_000 }, async (t) => {
  const saved = Object.fromEntries(PRIVATE_RUNNER_ENV.map((name) => [name, process.env[name]]));
  t.after(() => {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  });
  const { manager, control } = await service(t, { servers: [{ name: 'backend', command: [process.execPath, SERVER], health: '/health' }] });
  process.env[CONTROL_URL_ENV] = control.url;
  process.env[CONTROL_TOKEN_ENV] = control.token;
  process.env.E2E_LANES_DATABASE_URL = 'postgres://admin:secret@127.0.0.1:1/postgres';
  assert.ok(PRIVATE_RUNNER_ENV.includes(CONTROL_URL_ENV) && PRIVATE_RUNNER_ENV.includes(CONTROL_TOKEN_ENV));
  const lane = await manager.ensureLane('alpha');
  const env = (await (await fetch(`${lane.urls.backend}/env`)).json()) as Record<string, string>;
  assert.equal(env.E2E_LANES_SERVER, 'backend', 'this is the lane server');
  for (const name of PRIVATE_RUNNER_ENV) assert.equal(env[name], undefined, `${name} reached the server`);
  assert.equal(env.PATH, process.env.PATH, 'the rest of the environment is inherited');
});

async function postTo(control: ControlServer, path: string, body: unknown): Promise<{ status: number; error?: { code: string; message: string; hint?: string }; reset?: unknown }> {
  const response = await fetch(`${control.url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${control.token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: response.status, ...((await response.json()) as object) };
}

test('reset and test reports are checked like lane requests, and a lane without a database cannot be reset', async (t) => {
  const { control } = await service(t);
  assert.equal((await postTo(control, '/lanes/reset', { project: 'alpha', strategy: 'wipe' })).error?.code, 'LANE_REQUEST_INVALID');
  assert.equal((await postTo(control, '/lanes/test', { project: 'alpha', phase: 'begin' })).error?.code, 'LANE_REQUEST_INVALID', 'a phase needs a user');
  assert.equal((await postTo(control, '/lanes/test', { project: 'alpha', phase: 'later', user: { pid: 1, testId: 'x' } })).error?.code, 'LANE_REQUEST_INVALID');
  assert.equal((await postTo(control, '/lanes/test', { project: 'alpha', phase: 'begin', user: { pid: 'one', testId: 'x' } })).error?.code, 'LANE_REQUEST_INVALID');
  assert.equal((await postTo(control, '/lanes/reset', { project: 'nonexistent' })).error?.code, 'LANE_NOT_FOUND');
  const noDatabase = await postTo(control, '/lanes/test', { project: 'alpha', phase: 'begin', reset: true, user: { pid: process.pid, testId: 't1' } });
  assert.equal(noDatabase.error?.code, 'INVALID_OPTION');
  assert.match(noDatabase.error!.message, /no database/);
  assert.equal((await postTo(control, '/lanes/test', { project: 'alpha', phase: 'end', user: { pid: process.pid, testId: 't1' } })).status, 200);
});

test('a worker gets the error of the lane service with its parts: code, short message and hint, the code shown once', async (t) => {
  const { control } = await service(t);
  const saved = { url: process.env[CONTROL_URL_ENV], token: process.env[CONTROL_TOKEN_ENV] };
  t.after(() => {
    for (const [name, value] of [[CONTROL_URL_ENV, saved.url], [CONTROL_TOKEN_ENV, saved.token]] as const) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  });
  process.env[CONTROL_URL_ENV] = control.url;
  process.env[CONTROL_TOKEN_ENV] = control.token;

  const refused = await requestLane({ project: 'nonexistent-xyz' }).then(() => assert.fail('no lane'), (error: unknown) => error);
  assert.ok(isLanesError(refused, 'LANE_NOT_FOUND'));
  assert.match(refused.shortMessage, /^Project "nonexistent-xyz" is not a project of this run/);
  assert.equal(refused.message, `[LANE_NOT_FOUND] ${refused.shortMessage}\nHint: ${refused.hint}`);

  // An error of the lane manager (HTTP 500), whose hint travels apart from its message.
  const failed = await reportTest({ project: 'alpha', phase: 'begin', reset: true, user: { pid: process.pid, testId: 't1' } }).then(() => assert.fail('no reset'), (error: unknown) => error);
  assert.ok(isLanesError(failed, 'INVALID_OPTION'));
  assert.ok(failed.hint);
  assert.doesNotMatch(failed.shortMessage, /Hint:/);
  assert.equal(failed.message, `[INVALID_OPTION] ${failed.shortMessage}\nHint: ${failed.hint}`);

  process.env[CONTROL_TOKEN_ENV] = 'wrong';
  const unauthorized = await requestLane({ project: 'alpha' }).then(() => assert.fail('no lane'), (error: unknown) => error);
  assert.ok(isLanesError(unauthorized, 'UNAUTHORIZED'));
  assert.equal(unauthorized.message, '[UNAUTHORIZED] bad token');
});

/** A stand-in for Playwright's worker entry: on `__init__`, asks the lane service with its own token and reports the answers. */
const FAKE_WORKER = `
const ask = async (body) => {
  const response = await fetch(process.env.E2E_LANES_CONTROL_URL + '/lanes', { method: 'POST', headers: { authorization: 'Bearer ' + process.env.E2E_LANES_CONTROL_TOKEN, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const answer = await response.json();
  return { status: response.status, code: answer.error?.code, message: answer.error?.message, project: answer.lane?.project };
};
process.on('message', async (message) => {
  if (message?.method !== '__init__') return;
  const answers = [];
  for (const body of message.asks) answers.push(await ask(body));
  process.send({ answers, token: process.env.E2E_LANES_CONTROL_TOKEN, adminUrl: process.env.E2E_LANES_DATABASE_URL ?? null });
  process.disconnect();
});
process.send({ ready: true });
`;

test("each forked worker gets a token of its own that opens only its project's lanes (its own slot's per-worker lane), and no admin URL; any other lane is UNAUTHORIZED", { timeout: 60_000 }, async (t) => {
  const { control } = await service(t);
  installWorkerTokens();
  const dir = await tempDir(t);
  const entry = join(dir, 'node_modules/playwright/lib/worker/workerProcessEntry.js');
  await mkdir(dirname(entry), { recursive: true });
  await writeFile(entry, FAKE_WORKER);
  const worker = async (runnerParams: { projectId: string; parallelIndex: number } | undefined, asks: unknown[]): Promise<{ answers: Array<{ status: number; code?: string; message?: string; project?: string }>; token: string; adminUrl: string | null }> => {
    const env = { ...process.env, E2E_LANES_CONTROL_URL: control.url, E2E_LANES_CONTROL_TOKEN: control.token, E2E_LANES_DATABASE_URL: 'postgres://admin:secret@127.0.0.1:5432/postgres' };
    const child = fork(entry, { env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    t.after(() => child.kill('SIGKILL'));
    await once(child, 'message');
    // Playwright's first message names the worker's project and slot; `asks` rides along for the stand-in.
    child.send({ method: '__init__', params: runnerParams ? { processParams: {}, runnerParams } : {}, asks });
    const [report] = (await once(child, 'message')) as [{ answers: Array<{ status: number; code?: string; project?: string }>; token: string; adminUrl: string | null }];
    return report;
  };

  const alpha = await worker({ projectId: 'alpha', parallelIndex: 1 }, [{ project: 'alpha' }, { project: 'alpha', worker: 1 }, { project: 'beta' }, { project: 'alpha', worker: 0 }]);
  assert.notEqual(alpha.token, control.token, "the runner's own token never reaches a worker");
  assert.equal(alpha.adminUrl, null, 'the admin URL stays in the runner');
  assert.deepEqual(alpha.answers.map((answer) => answer.status), [200, 200, 403, 403]);
  assert.deepEqual(alpha.answers.map((answer) => answer.project ?? answer.code), ['alpha', 'alpha', 'UNAUTHORIZED', 'UNAUTHORIZED']);
  assert.match(alpha.answers[2]!.message!, /This worker's token opens the lanes of project "alpha" \(its per-worker lane: worker 1\) only; it asked for the lane of project "beta"/);

  // A second worker, of beta: another token; alpha's token, once its worker is gone, opens nothing.
  const beta = await worker({ projectId: 'beta', parallelIndex: 0 }, [{ project: 'beta' }, { project: 'alpha' }]);
  assert.notEqual(beta.token, alpha.token);
  assert.deepEqual(beta.answers.map((answer) => answer.status), [200, 403]);
  await waitUntil(async () => (await fetch(`${control.url}/lanes`, { method: 'POST', headers: { authorization: `Bearer ${alpha.token}` }, body: '{"project":"alpha"}' })).status === 401);

  // A worker that Playwright has not told its project yet opens nothing.
  const unbound = await worker(undefined, [{ project: 'alpha' }]);
  assert.equal(unbound.answers[0]!.status, 401);
  assert.equal(unbound.answers[0]!.code, 'UNAUTHORIZED');
});

async function waitUntil(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail('timed out');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
