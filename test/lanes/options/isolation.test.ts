import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isLanesError } from '../../../src/errors.js';
import { resolveLaneIsolation } from '../../../src/lanes/options/isolation.js';

test('a project gets one lane unless it asks for one per worker', () => {
  assert.deepEqual(resolveLaneIsolation({ project: 'a', isolation: undefined, laneReset: undefined, workers: 4 }), { isolation: 'project' });
  assert.deepEqual(resolveLaneIsolation({ project: 'a', isolation: 'worker', laneReset: undefined, workers: 4 }), { isolation: 'worker' });
  assert.deepEqual(resolveLaneIsolation({ project: 'a', isolation: 'project', laneReset: 'test', workers: 1 }), { isolation: 'project' }, 'one worker never shares');
});

test("laneReset 'test' on several workers gets a lane per worker (with a notice), and refuses isolation 'project'", () => {
  const resolved = resolveLaneIsolation({ project: 'a', isolation: undefined, laneReset: 'test', workers: 2 });
  assert.equal(resolved.isolation, 'worker');
  assert.match(resolved.notice!, /one lane per worker/);
  assert.deepEqual(resolveLaneIsolation({ project: 'a', isolation: 'worker', laneReset: 'test', workers: 2 }), { isolation: 'worker' });
  assert.throws(() => resolveLaneIsolation({ project: 'a', isolation: 'project', laneReset: 'test', workers: 2 }), (error) => isLanesError(error, 'INVALID_OPTION') && /laneIsolation: 'project'/.test(error.message));
  assert.throws(() => resolveLaneIsolation({ project: 'a', isolation: 'project', laneReset: 'test', workers: 2, isolationSource: 'isolation' }), (error) => isLanesError(error, 'INVALID_OPTION') && /isolation option 'project'/.test(error.message));
});
