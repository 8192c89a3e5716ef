import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RoundTracker } from '../../../src/lanes/use/rounds.js';
import { deadPid } from '../../helpers/marked.js';

test("a lane's first worker starts no round; a new worker while an earlier one lives is the same round", () => {
  const rounds = new RoundTracker();
  assert.equal(rounds.starts('lane', process.pid), false);
  assert.equal(rounds.starts('lane', process.pid), false);
  assert.equal(rounds.starts('lane', process.ppid), false, 'the first worker still runs');
});

test('a worker that starts using a lane whose earlier workers are all gone starts a new round, once; lanes are apart', async () => {
  const rounds = new RoundTracker();
  const gone = await deadPid();
  assert.equal(rounds.starts('lane', gone), false);
  assert.equal(rounds.starts('other', gone), false);
  assert.equal(rounds.starts('lane', process.pid), true);
  assert.equal(rounds.starts('lane', process.pid), false, 'the same worker again is the same round');
});
