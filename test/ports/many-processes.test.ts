import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { buildSync } from 'esbuild';
import { PortAllocator, PORTS_FILE } from '../../src/ports/index.js';
import { tempDir } from '../helpers/tmp.js';

const FIXTURE = new URL('./fixtures/allocate-on-signal.ts', import.meta.url).pathname;
const PROCESSES = 100;
const LANES = 4;
const RANGE: [number, number] = [43_000, 43_999];

type Answer = { ok: true; lanes: Record<string, number>[] } | { ok: false; code?: string; message: string };

/** The next message of `child`, or a rejection when it exits first. */
function nextMessage<T>(child: ChildProcess): Promise<T> {
  return new Promise((resolve, reject) => {
    const onExit = (code: number | null, signal: string | null): void => reject(new Error(`child ${child.pid} exited (${code ?? signal}) before answering`));
    child.once('exit', onExit);
    child.once('message', (message: T) => {
      child.off('exit', onExit);
      resolve(message);
    });
  });
}

test('answers every one of 100 processes allocating four lanes each at once, with no port twice, and records exactly what it handed out', { timeout: 180_000 }, async (t) => {
  const dir = await tempDir(t);
  const stateDir = join(dir, 'state');
  const hostDir = join(dir, 'host');
  // One bundle of the child, so that 100 processes start in plain Node instead of each compiling TypeScript.
  const bundle = join(dir, 'allocate-on-signal.cjs');
  buildSync({ entryPoints: [FIXTURE], bundle: true, platform: 'node', format: 'cjs', target: 'node20', outfile: bundle, logLevel: 'error' });

  // The test process owns the run, as a Playwright runner owns its workers' lanes: the entries
  // outlive the children that asked for them.
  const env = { ...process.env, E2E_LANES_OWNER_PID: String(process.pid), E2E_LANES_HOST_STATE_DIR: hostDir };
  const children = Array.from({ length: PROCESSES }, (_, index) => fork(bundle, [String(index)], { env, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] }));
  t.after(() => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const previousHost = process.env.E2E_LANES_HOST_STATE_DIR;
  process.env.E2E_LANES_HOST_STATE_DIR = hostDir;
  const allocator = new PortAllocator({ stateDir, runId: 'many', range: RANGE });
  t.after(async () => {
    await allocator.releaseRun();
    if (previousHost === undefined) delete process.env.E2E_LANES_HOST_STATE_DIR;
    else process.env.E2E_LANES_HOST_STATE_DIR = previousHost;
  });

  await Promise.all(children.map((child) => nextMessage(child)));
  const answers = children.map((child) => nextMessage<Answer>(child));
  for (const child of children) child.send({ stateDir, runId: 'many', range: RANGE, lanes: LANES });
  const results = await Promise.all(answers);

  const failed = results.flatMap((result, index) => (result.ok ? [] : [`process ${index}: [${result.code}] ${result.message}`]));
  assert.deepEqual(failed, [], 'every process gets its ports');
  const handed = results.flatMap((result) => (result.ok ? result.lanes.flatMap((lane) => Object.values(lane)) : []));
  assert.equal(handed.length, PROCESSES * LANES * 2);
  const twice = handed.filter((port, index) => handed.indexOf(port) !== index);
  assert.deepEqual(twice, [], 'no port is handed out twice');

  const ledger = JSON.parse(await readFile(join(stateDir, PORTS_FILE), 'utf8')) as { entries: { project: string; ports: Record<string, number>; owner: { pid: number } }[] };
  assert.equal(ledger.entries.length, PROCESSES * LANES, 'one entry per lane');
  const recorded = ledger.entries.flatMap((entry) => Object.values(entry.ports));
  assert.deepEqual([...recorded].sort(), [...handed].sort(), 'the ledger holds exactly the ports handed out');
  results.forEach((result, index) => {
    if (!result.ok) return;
    result.lanes.forEach((ports, lane) => {
      assert.deepEqual(ledger.entries.find((entry) => entry.project === `proc-${index}-lane-${lane}`)?.ports, ports, `lane ${lane} of process ${index}`);
    });
  });
  assert.ok(ledger.entries.every((entry) => entry.owner.pid === process.pid));

  // One host-wide claim per port handed out, and nothing else left behind in the state folder.
  const claims = (await readdir(hostDir)).filter((name) => /^p\d+\.json$/.test(name)).map((name) => Number(name.slice(1, -5)));
  assert.deepEqual(claims.sort(), [...handed].sort(), 'the host-wide claims are the ports handed out');
  assert.deepEqual(await readdir(stateDir), [PORTS_FILE]);
});
