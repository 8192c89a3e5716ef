import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { formatSeconds, progressIntervalMs, withinDeadline } from '../../../src/databases/template/deadline.js';
import { PROGRESS_INTERVAL_ENV } from '../../../src/env-vars.js';

const saved = process.env[PROGRESS_INTERVAL_ENV];
afterEach(() => {
  if (saved === undefined) delete process.env[PROGRESS_INTERVAL_ENV];
  else process.env[PROGRESS_INTERVAL_ENV] = saved;
});

describe('deadlines of template build steps', () => {
  it('pass on the value of work done in time, and its rejection', async () => {
    assert.deepEqual(await withinDeadline(Promise.resolve(7), 1_000, 'quick'), { done: true, value: 7 });
    await assert.rejects(withinDeadline(Promise.reject(new Error('broken')), 1_000, 'failing'), /broken/);
  });

  it('say the deadline passed while the work goes on', async () => {
    let finished = false;
    const work = sleep(400).then(() => {
      finished = true;
    });
    const started = performance.now();
    assert.deepEqual(await withinDeadline(work, 50, 'slow'), { done: false });
    assert.ok(performance.now() - started < 350, 'did not wait for the work');
    assert.equal(finished, false);
    await work;
  });

  it('print progress every 10 s unless the variable sets a positive interval', () => {
    delete process.env[PROGRESS_INTERVAL_ENV];
    assert.equal(progressIntervalMs(), 10_000);
    process.env[PROGRESS_INTERVAL_ENV] = '250';
    assert.equal(progressIntervalMs(), 250);
    process.env[PROGRESS_INTERVAL_ENV] = '-5';
    assert.equal(progressIntervalMs(), 10_000);
  });

  it('write durations in seconds, or whole minutes from two minutes', () => {
    assert.equal(formatSeconds(1_500), '1.5 s');
    assert.equal(formatSeconds(2_000), '2 s');
    assert.equal(formatSeconds(12_345), '12 s');
    assert.equal(formatSeconds(180_000), '3 min');
    assert.equal(formatSeconds(90_000), '90 s');
  });
});
