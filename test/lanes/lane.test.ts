import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isLanesError, LanesError } from '../../src/errors.js';
import { formatPorts, keyOfId, laneId, rememberedFailure } from '../../src/lanes/lane.js';

test("a lane's id gives back its key, with and without a worker", () => {
  assert.deepEqual(keyOfId('run', laneId({ runId: 'run', project: 'shop' })), { runId: 'run', project: 'shop' });
  assert.deepEqual(keyOfId('run', laneId({ runId: 'run', project: 'a"b', worker: 2 })), { runId: 'run', project: 'a"b', worker: 2 });
  assert.notEqual(laneId({ runId: 'r', project: 'shop' }), laneId({ runId: 'r', project: 'shop', worker: 0 }));
});

test("a remembered boot failure keeps the first error's code and hint and says it is remembered", () => {
  const at = new Date('2026-01-02T03:04:05Z');
  const first = new LanesError('SERVER_START_TIMEOUT', 'Server api did not answer.', { hint: 'Check its health route.' });
  const remembered = rememberedFailure({ runId: 'r', project: 'shop' }, first, at);
  assert.ok(isLanesError(remembered, 'SERVER_START_TIMEOUT'));
  assert.equal(remembered.hint, 'Check its health route.');
  assert.match(remembered.message, /failed to boot at 03:04:05 UTC and is not booted again[\s\S]*Server api did not answer/);
  assert.equal(remembered.details?.remembered, true);
  const plain = rememberedFailure({ runId: 'r', project: 'shop' }, new Error('boom'), at);
  assert.match(plain.message, /remembered error of that first boot:\nboom/);
});

test('ports read as name and number', () => {
  assert.equal(formatPorts({ backend: 3100, frontend: 3101 }), 'backend 3100, frontend 3101');
});
