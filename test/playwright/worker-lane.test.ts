import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, test } from 'node:test';
import { laneDatabaseName } from '../../src/databases/sql/names.js';
import { isLanesError } from '../../src/errors.js';
import { LANE_NOT_READY_URL } from '../../src/postgres/app-env.js';
import { withDatabase } from '../../src/postgres/index.js';
import { LANE_DATABASES_ENV } from '../../src/env-vars.js';
import { adoptLaneDatabase, formatLaneDatabases, pointWorkerAtLane, WORKER_PRELOAD } from '../../src/playwright/worker-lane.js';
import { tempDir } from '../helpers/tmp.js';

const ADMIN = 'postgres://admin:pw@127.0.0.1:5433/postgres';
const IDENTITY = Symbol.for('e2e-lanes.worker-identity');
const STATE = Symbol.for('e2e-lanes.worker-database');
const holder = globalThis as unknown as Record<symbol, unknown>;
const NAMES = ['DATABASE_URL', 'PGHOST', 'PGPORT', 'PGDATABASE', 'PGUSER', 'PGPASSWORD', LANE_DATABASES_ENV, 'E2E_LANES_ISOLATION'];
let saved: Map<string, string | undefined>;

beforeEach(() => {
  saved = new Map(NAMES.map((name) => [name, process.env[name]]));
  process.env.DATABASE_URL = 'postgres://dev:devpw@127.0.0.1:5432/myapp_dev';
  process.env[LANE_DATABASES_ENV] = formatLaneDatabases({ baseUrl: ADMIN, prefix: 'e2e', runId: 'run-1234abcd' });
  delete holder[IDENTITY];
  delete holder[STATE];
});
afterEach(() => {
  for (const [name, value] of saved) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
  delete holder[IDENTITY];
  delete holder[STATE];
});

const laneUrl = (project: string, worker?: number): string =>
  withDatabase(ADMIN, laneDatabaseName('e2e', { runId: 'run-1234abcd', project, ...(worker !== undefined ? { worker } : {}) }));

test("points a worker that knows its project at its lane's database before spec files load", () => {
  holder[IDENTITY] = { projectId: 'beta', parallelIndex: 1 };
  pointWorkerAtLane({ projects: [{ name: 'alpha' }, { name: 'beta' }] }, {});
  assert.equal(process.env.DATABASE_URL, laneUrl('beta'));
  assert.equal(process.env.PGDATABASE, laneDatabaseName('e2e', { runId: 'run-1234abcd', project: 'beta' }));
});

test('a per-worker lane is named by the parallel index, from the project, the top-level use or the options', () => {
  holder[IDENTITY] = { projectId: 'alpha', parallelIndex: 3 };
  pointWorkerAtLane({ projects: [{ name: 'alpha', use: { laneIsolation: 'worker' } }] } as never, {});
  assert.equal(process.env.DATABASE_URL, laneUrl('alpha', 3));
  pointWorkerAtLane({ use: { laneIsolation: 'worker' }, projects: [{ name: 'alpha' }] } as never, {});
  assert.equal(process.env.DATABASE_URL, laneUrl('alpha', 3));
  pointWorkerAtLane({ projects: [{ name: 'alpha' }] }, { isolation: 'worker' });
  assert.equal(process.env.DATABASE_URL, laneUrl('alpha', 3));
  pointWorkerAtLane({ projects: [{ name: 'alpha', use: { laneIsolation: 'project' } }] } as never, { isolation: 'worker' });
  assert.equal(process.env.DATABASE_URL, laneUrl('alpha'));
});

test('repeated project names get the ids Playwright gives them', () => {
  holder[IDENTITY] = { projectId: 'same1', parallelIndex: 0 };
  pointWorkerAtLane({ projects: [{ name: 'same' }, { name: 'same', use: { laneIsolation: 'worker' } }] } as never, {});
  assert.equal(process.env.DATABASE_URL, laneUrl('same', 0));
});

test('without its identity or the published databases, a worker gets the not-ready address whatever .env said', () => {
  pointWorkerAtLane({ projects: [{ name: 'alpha' }] }, {});
  assert.equal(process.env.DATABASE_URL, LANE_NOT_READY_URL);
  assert.equal(process.env.PGHOST, 'e2e-lanes-lane-not-ready.invalid');
  holder[IDENTITY] = { projectId: 'alpha', parallelIndex: 0 };
  process.env[LANE_DATABASES_ENV] = 'not json';
  process.env.DATABASE_URL = 'postgres://dev@127.0.0.1/myapp_dev';
  pointWorkerAtLane({ projects: [{ name: 'alpha' }] }, {});
  assert.equal(process.env.DATABASE_URL, LANE_NOT_READY_URL);
});

test('lanes without databases leave the variables alone', () => {
  holder[IDENTITY] = { projectId: 'alpha', parallelIndex: 0 };
  pointWorkerAtLane({ projects: [{ name: 'alpha' }] }, { database: false });
  assert.equal(process.env.DATABASE_URL, 'postgres://dev:devpw@127.0.0.1:5432/myapp_dev');
});

test('the lane fixture refuses a DATABASE_URL changed after withLanes set it, and a lane other than the one spec files saw', () => {
  holder[IDENTITY] = { projectId: 'alpha', parallelIndex: 0 };
  pointWorkerAtLane({ projects: [{ name: 'alpha' }] }, {});
  adoptLaneDatabase({ project: 'alpha', databaseUrl: laneUrl('alpha') });
  assert.equal(process.env.DATABASE_URL, laneUrl('alpha'));

  process.env.DATABASE_URL = 'postgres://dev:devpw@127.0.0.1:5432/myapp_dev';
  assert.throws(
    () => adoptLaneDatabase({ project: 'alpha', databaseUrl: laneUrl('alpha') }),
    (error) => isLanesError(error, 'DATABASE_URL_CHANGED') && /changed to postgres:\/\/dev:\*\*\*@127\.0\.0\.1:5432\/myapp_dev/.test(error.message) && !error.message.includes('devpw'),
  );

  pointWorkerAtLane({ projects: [{ name: 'alpha' }] }, {});
  assert.throws(
    () => adoptLaneDatabase({ project: 'alpha', worker: 0, databaseUrl: laneUrl('alpha', 0) }),
    (error) => isLanesError(error, 'DATABASE_URL_CHANGED') && /laneIsolation/.test(error.hint ?? ''),
  );
});

test('after the not-ready address, the lane fixture points the worker at its lane', () => {
  pointWorkerAtLane({ projects: [{ name: 'alpha' }] }, {});
  adoptLaneDatabase({ project: 'alpha', databaseUrl: laneUrl('alpha') });
  assert.equal(process.env.DATABASE_URL, laneUrl('alpha'));
});

test("the preload notes the project of a forked Playwright worker from the runner's first message, and nothing elsewhere", async (t) => {
  const dir = await tempDir(t);
  const script = `process.on('message', (m) => { if (m === 'report') { process.send({ identity: globalThis[Symbol.for('e2e-lanes.worker-identity')] ?? null, listeners: process.listenerCount('message') }); process.exit(0); } });`;
  const worker = join(dir, 'node_modules/playwright/lib/worker/workerProcessEntry.js');
  await mkdir(join(worker, '..'), { recursive: true });
  await writeFile(worker, script);
  const other = join(dir, 'other.js');
  await writeFile(other, script);
  const ask = async (file: string): Promise<{ identity: unknown; listeners: number }> => {
    const child = fork(file, { execArgv: ['--import', WORKER_PRELOAD], stdio: 'pipe', timeout: 20_000 });
    const answer = new Promise<{ identity: unknown; listeners: number }>((resolve, reject) => {
      child.once('message', (message) => resolve(message as { identity: unknown; listeners: number }));
      child.once('exit', (code) => reject(new Error(`child exited (${code}) without answering`)));
    });
    child.send({ method: '__init__', params: { processParams: {}, runnerParams: { projectId: 'alpha', parallelIndex: 2, workerIndex: 7 } } });
    child.send('report');
    return answer;
  };
  assert.deepEqual(await ask(worker), { identity: { projectId: 'alpha', parallelIndex: 2 }, listeners: 1 });
  assert.deepEqual(await ask(other), { identity: null, listeners: 1 });
});
