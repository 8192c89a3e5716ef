import assert from 'node:assert/strict';
import { test } from 'node:test';
import { killRunStragglers, killRunStragglersNow } from '../../../src/lanes/teardown/stragglers.js';
import { isPidAlive } from '../../../src/state/index.js';
import { startMarked, until } from '../../helpers/marked.js';

const linux = process.platform === 'linux';

test("killing a run's stragglers ends the processes with its marks (of its owner), and no other", { skip: !linux && 'needs /proc' }, async (t) => {
  const runId = `strag-${process.pid}`;
  const mine = await startMarked(t, { server: 'api', runId, ownerPid: 21 });
  const otherOwner = await startMarked(t, { server: 'api', runId, ownerPid: 22 });
  const otherRun = await startMarked(t, { server: 'api', runId: `${runId}-x`, ownerPid: 21 });
  assert.deepEqual(await killRunStragglers(runId, { ownerPid: 21, timeout: 2_000 }), [mine]);
  await until('the straggler is gone', () => !isPidAlive(mine));
  assert.ok(isPidAlive(otherOwner) && isPidAlive(otherRun), 'processes of another owner or run live on');
  assert.deepEqual(await killRunStragglers(`${runId}-none`), [], 'a run without processes has none to kill');
});

test('the synchronous last resort SIGKILLs every process of the run and owner', { skip: !linux && 'needs /proc' }, async (t) => {
  const runId = `strag-now-${process.pid}`;
  const mine = await startMarked(t, { server: 'api', runId, ownerPid: 31 });
  const spared = await startMarked(t, { server: 'api', runId, ownerPid: 32 });
  killRunStragglersNow(runId, 31);
  await until('the process is gone', () => !isPidAlive(mine));
  assert.ok(isPidAlive(spared));
});
