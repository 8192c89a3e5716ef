import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { test } from 'node:test';
import { isLanesError } from '../../src/errors.js';
import { LaneUsers } from '../../src/lanes/lane-users.js';

test('a reset is refused while another live test uses the lane, and allowed for the test alone on it', async (t) => {
  const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)'], { stdio: 'ignore' });
  t.after(() => other.kill('SIGKILL'));
  const users = new LaneUsers();
  const me = { pid: process.pid, testId: 'mine' };
  users.begin('lane', me);
  users.assertAlone('lane', 'the lane of project "a"', me);
  users.begin('lane', { pid: other.pid!, testId: 'theirs', title: 'spec › another test' });
  assert.throws(
    () => users.assertAlone('lane', 'the lane of project "a"', me),
    (error) => isLanesError(error, 'LANE_RESET_CONFLICT') && /another test uses the lane right now \("spec › another test", worker pid \d+\)/.test(error.message) && /laneIsolation: 'worker'/.test(error.hint ?? ''),
  );
  users.assertAlone('other lane', 'another lane', me);
  users.end('lane', { pid: other.pid!, testId: 'theirs' });
  users.assertAlone('lane', 'the lane of project "a"', me);
});

test('a test whose worker died does not block resets', async () => {
  const gone = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
  await once(gone, 'exit');
  const users = new LaneUsers();
  users.begin('lane', { pid: gone.pid!, testId: 'crashed' });
  users.assertAlone('lane', 'the lane', { pid: process.pid, testId: 'mine' });
});
