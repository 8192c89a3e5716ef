import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { PortAllocator } from '../../src/ports/index.js';
import { newOwner } from '../../src/state/index.js';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

const CONFIG = 'test/fixtures/cli/lanes.config.ts';

/** A host-wide claims folder of this test only, for the allocators of this process and the CLI it runs. */
async function ownHostFolder(t: TestContext): Promise<string> {
  const folder = join(await tempDir(t), 'host');
  const before = process.env.E2E_LANES_HOST_STATE_DIR;
  process.env.E2E_LANES_HOST_STATE_DIR = folder;
  t.after(() => {
    if (before === undefined) delete process.env.E2E_LANES_HOST_STATE_DIR;
    else process.env.E2E_LANES_HOST_STATE_DIR = before;
  });
  return folder;
}

test('status in a folder with no lanes names the other state folders whose lanes run on this host, and how to look at them', async (t) => {
  const host = await ownHostFolder(t);
  const here = await tempDir(t);
  const elsewhere = await tempDir(t);
  const ports = new PortAllocator({ stateDir: elsewhere, runId: 'run-elsewhere', range: [34300, 34399] });
  await ports.allocatePortsForProject('checkout');
  await ports.allocatePortsForProject('search');
  t.after(() => ports.releaseRun().catch(() => undefined));

  const result = await runCli(['status', '--config', CONFIG, '--state-dir', here], { E2E_LANES_HOST_STATE_DIR: host });
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /No lanes\./);
  assert.ok(result.stdout.includes(`(state folder ${here})`), result.stdout);
  assert.match(result.stdout, /Lanes of other state folders run on this host:/);
  assert.ok(result.stdout.includes(`${elsewhere} (run run-elsewhere, 2 lanes)`), result.stdout);
  assert.ok(result.stdout.includes(`npx e2e-lanes status --state-dir ${elsewhere}`), result.stdout);

  const json = await runCli(['status', '--json', '--config', CONFIG, '--state-dir', here], { E2E_LANES_HOST_STATE_DIR: host });
  const body = JSON.parse(json.stdout) as { otherStateFolders?: unknown };
  assert.deepEqual(body.otherStateFolders, [{ stateDir: elsewhere, runs: [{ runId: 'run-elsewhere', lanes: 2 }] }]);
});

test('status leaves out the lanes of dead runs of other state folders, and says only "No lanes." when nothing runs elsewhere', async (t) => {
  const host = await ownHostFolder(t);
  const here = await tempDir(t);
  const elsewhere = await tempDir(t);
  // A pid that no process has: the claim's owner is dead.
  await new PortAllocator({ stateDir: elsewhere, runId: 'dead-run', range: [34400, 34499] }).allocatePortsForProject('checkout', {
    owner: newOwner('dead-run', 2 ** 22 + 7),
  });

  const result = await runCli(['status', '--config', CONFIG, '--state-dir', here], { E2E_LANES_HOST_STATE_DIR: host });
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stdout.trim(), 'No lanes.');
});
