import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { buildSync } from 'esbuild';
import { PortAllocator, PORTS_FILE } from '../../src/ports/index.js';
import { tempDir } from '../helpers/tmp.js';

const FIXTURE = new URL('./fixtures/allocate-on-signal.ts', import.meta.url).pathname;

type Answer = { ok: true; lanes: Record<string, number>[] } | { ok: false; code?: string; message: string };
type Ledger = { entries: { project: string; ports: Record<string, number>; owner: { pid: number } }[] };

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

/**
 * Starts `processes` children (loaded, waiting), gives them the same signal to allocate `lanes`
 * lanes each in `range`, and resolves what they answered, with the state and host-wide folders.
 * The test process owns the run, as a Playwright runner owns its workers' lanes: the entries
 * outlive the children that asked for them.
 */
async function allocateAtOnce(t: TestContext, go: { processes: number; lanes: number; range: [number, number]; shared?: boolean }): Promise<{ results: Answer[]; stateDir: string; hostDir: string }> {
  const dir = await tempDir(t);
  const stateDir = join(dir, 'state');
  const hostDir = join(dir, 'host');
  // One bundle of the child, so that many processes start in plain Node instead of each compiling TypeScript.
  const bundle = join(dir, 'allocate-on-signal.cjs');
  buildSync({ entryPoints: [FIXTURE], bundle: true, platform: 'node', format: 'cjs', target: 'node20', outfile: bundle, logLevel: 'error' });

  const env = { ...process.env, E2E_LANES_OWNER_PID: String(process.pid), E2E_LANES_HOST_STATE_DIR: hostDir };
  const children = Array.from({ length: go.processes }, (_, index) => fork(bundle, [String(index)], { env, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] }));
  t.after(() => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const previousHost = process.env.E2E_LANES_HOST_STATE_DIR;
  process.env.E2E_LANES_HOST_STATE_DIR = hostDir;
  const allocator = new PortAllocator({ stateDir, runId: 'many', range: go.range });
  t.after(async () => {
    await allocator.releaseRun();
    if (previousHost === undefined) delete process.env.E2E_LANES_HOST_STATE_DIR;
    else process.env.E2E_LANES_HOST_STATE_DIR = previousHost;
  });

  await Promise.all(children.map((child) => nextMessage(child)));
  const answers = children.map((child) => nextMessage<Answer>(child));
  for (const child of children) child.send({ stateDir, runId: 'many', range: go.range, lanes: go.lanes, shared: go.shared === true });
  return { results: await Promise.all(answers), stateDir, hostDir };
}

function failures(results: readonly Answer[]): string[] {
  return results.flatMap((result, index) => (result.ok ? [] : [`process ${index}: [${result.code}] ${result.message}`]));
}

async function claimedPorts(hostDir: string): Promise<number[]> {
  return (await readdir(hostDir)).filter((name) => /^p\d+\.json$/.test(name)).map((name) => Number(name.slice(1, -5)));
}

test('answers every one of 100 processes allocating four lanes each at once, with no port twice, and records exactly what it handed out', { timeout: 180_000 }, async (t) => {
  const processes = 100;
  const lanes = 4;
  const { results, stateDir, hostDir } = await allocateAtOnce(t, { processes, lanes, range: [43_000, 43_999] });

  assert.deepEqual(failures(results), [], 'every process gets its ports');
  const handed = results.flatMap((result) => (result.ok ? result.lanes.flatMap((lane) => Object.values(lane)) : []));
  assert.equal(handed.length, processes * lanes * 2);
  const twice = handed.filter((port, index) => handed.indexOf(port) !== index);
  assert.deepEqual(twice, [], 'no port is handed out twice');

  const ledger = JSON.parse(await readFile(join(stateDir, PORTS_FILE), 'utf8')) as Ledger;
  assert.equal(ledger.entries.length, processes * lanes, 'one entry per lane');
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
  assert.deepEqual((await claimedPorts(hostDir)).sort(), [...handed].sort(), 'the host-wide claims are the ports handed out');
  assert.deepEqual(await readdir(stateDir), [PORTS_FILE]);
});

test('gives 24 processes asking for the same two lanes at once the same ports, recorded once', { timeout: 120_000 }, async (t) => {
  const { results, stateDir, hostDir } = await allocateAtOnce(t, { processes: 24, lanes: 2, range: [43_000, 43_099], shared: true });

  assert.deepEqual(failures(results), [], 'every process gets its ports');
  const first = results[0];
  assert.ok(first?.ok);
  assert.equal(new Set(first.lanes.flatMap((lane) => Object.values(lane))).size, 4, 'two lanes of two distinct ports');
  results.forEach((result, index) => assert.deepEqual(result.ok && result.lanes, first.lanes, `process ${index} got the same lanes`));

  const ledger = JSON.parse(await readFile(join(stateDir, PORTS_FILE), 'utf8')) as Ledger;
  assert.deepEqual(
    ledger.entries.map((entry) => [entry.project, entry.ports]),
    first.lanes.map((ports, lane) => [`shared-lane-${lane}`, ports]),
    'one entry per lane, with the ports every process got',
  );
  // The claims of the processes that lost the race were withdrawn; no request or note is left.
  const ports = first.lanes.flatMap((lane) => Object.values(lane));
  assert.deepEqual((await claimedPorts(hostDir)).sort(), [...ports].sort());
  assert.deepEqual(await readdir(stateDir), [PORTS_FILE]);
});
