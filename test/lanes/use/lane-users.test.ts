import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { isLanesError } from '../../../src/errors.js';
import { LaneUsers } from '../../../src/lanes/use/lane-users.js';

/** A live process standing for another worker. */
function otherWorker(t: TestContext): ChildProcess {
  const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)'], { stdio: 'ignore' });
  t.after(() => other.kill('SIGKILL'));
  return other;
}

/** Whether `promise` settled within `ms`. */
async function settles(promise: Promise<unknown>, ms = 100): Promise<boolean> {
  return Promise.race([promise.then(() => true, () => true), sleep(ms).then(() => false)]);
}

test('a reset is refused while another live test uses the lane, and allowed for the test alone on it', async (t) => {
  const other = otherWorker(t);
  const users = new LaneUsers();
  const me = { pid: process.pid, testId: 'mine' };
  await users.begin('lane', 'the lane of project "a"', me);
  users.claimReset('lane', 'the lane of project "a"', me).release();
  await users.begin('lane', 'the lane of project "a"', { pid: other.pid!, testId: 'theirs', title: 'spec › another test' });
  assert.throws(
    () => users.claimReset('lane', 'the lane of project "a"', me),
    (error) => isLanesError(error, 'LANE_RESET_CONFLICT') && /another test uses the lane right now \("spec › another test", worker pid \d+\)/.test(error.message) && /laneIsolation: 'worker'/.test(error.hint ?? ''),
  );
  assert.throws(() => users.claimReset('lane', 'the lane', undefined), (error) => isLanesError(error, 'LANE_RESET_CONFLICT'), 'a reset from a hook too');
  users.claimReset('other lane', 'another lane', me).release();
  users.end('lane', { pid: other.pid!, testId: 'theirs' });
  users.claimReset('lane', 'the lane of project "a"', me).release();
});

test('a test whose worker died does not block resets, nor tests that reset', async () => {
  const gone = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
  await once(gone, 'exit');
  const users = new LaneUsers();
  await users.begin('lane', 'the lane', { pid: gone.pid!, testId: 'crashed' });
  users.claimReset('lane', 'the lane', { pid: process.pid, testId: 'mine' }).release();
  assert.ok(await settles(users.begin('lane', 'the lane', { pid: process.pid, testId: 'mine' }, { exclusive: true })));
});

test('a test that resets waits until it is alone on the lane, and holds it alone until it ends', async (t) => {
  const other = otherWorker(t);
  const users = new LaneUsers();
  const theirs = { pid: other.pid!, testId: 'theirs' };
  const mine = { pid: process.pid, testId: 'mine' };
  await users.begin('lane', 'the lane', theirs);
  const entering = users.begin('lane', 'the lane', mine, { exclusive: true });
  assert.equal(await settles(entering), false, 'waits while another test uses the lane');
  users.end('lane', theirs);
  assert.equal(await settles(entering), true, 'enters when the other test ends');
  // Now it holds the lane: another test (resetting or not) waits, and no one else may reset.
  const later = users.begin('lane', 'the lane', theirs);
  assert.equal(await settles(later), false, 'a test that does not reset waits too');
  assert.throws(() => users.claimReset('lane', 'the lane', theirs), (error) => isLanesError(error, 'LANE_RESET_CONFLICT'));
  users.claimReset('lane', 'the lane', mine).release();
  users.end('lane', mine);
  assert.equal(await settles(later), true);
  assert.deepEqual(users.users('lane'), [theirs]);
});

test('no test enters a lane while a reset of it runs, and tests that share the lane enter together', async (t) => {
  const other = otherWorker(t);
  const users = new LaneUsers();
  const claim = users.claimReset('lane', 'the lane', undefined);
  const first = users.begin('lane', 'the lane', { pid: other.pid!, testId: 'a' });
  const second = users.begin('lane', 'the lane', { pid: process.pid, testId: 'b' });
  assert.equal(await settles(first), false, 'waits for the reset');
  claim.release();
  assert.equal(await settles(Promise.all([first, second])), true, 'both enter once it is done');
  assert.equal(users.users('lane').length, 2);
});

test("a worker's earlier test that never reported its end does not block its next test", async () => {
  const users = new LaneUsers();
  await users.begin('lane', 'the lane', { pid: process.pid, testId: 'first' });
  assert.equal(await settles(users.begin('lane', 'the lane', { pid: process.pid, testId: 'second' }, { exclusive: true })), true);
  assert.deepEqual(users.users('lane').map((user) => user.testId), ['second']);
});

test('a test stops waiting at its deadline with LANE_RESET_CONFLICT naming the holder, or when its worker goes away', async (t) => {
  const other = otherWorker(t);
  const users = new LaneUsers();
  await users.begin('lane', 'the lane of project "a"', { pid: other.pid!, testId: 'theirs', title: 'spec › slow test' });
  await assert.rejects(
    users.begin('lane', 'the lane of project "a"', { pid: process.pid, testId: 'mine' }, { exclusive: true, timeoutMs: 200 }),
    (error) => isLanesError(error, 'LANE_RESET_CONFLICT') && /the lane of project "a" stayed in use for 0 s by "spec › slow test"/.test(error.message),
  );
  const gone = new AbortController();
  const waiting = users.begin('lane', 'the lane', { pid: process.pid, testId: 'mine' }, { exclusive: true, signal: gone.signal });
  gone.abort();
  await assert.rejects(waiting, (error) => isLanesError(error, 'INTERRUPTED'));
  assert.deepEqual(users.users('lane').map((user) => user.testId), ['theirs'], 'neither waiting test was recorded');
});
