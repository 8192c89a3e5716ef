import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LaneManager } from '../../src/lanes/lane-manager.js';
import { requestLane } from '../../src/playwright/control-client.js';
import { CONTROL_TOKEN_ENV, CONTROL_URL_ENV } from '../../src/env-vars.js';
import { startControlServer } from '../../src/playwright/control-server.js';
import { LanePrefetcher } from '../../src/playwright/prefetch.js';
import { tempDir } from '../helpers/tmp.js';

/** The projects whose lanes are booting or up, once every boot under way has settled. */
async function booted(manager: LaneManager): Promise<string[]> {
  return (await manager.lanes()).map((lane) => `${lane.project}${lane.worker === undefined ? '' : `/w${lane.worker}`}`).sort();
}

test('the lane service boots the first project ahead, then the next one whenever a project first asks', async (t) => {
  const manager = new LaneManager({ stateDir: await tempDir(t), runId: `prefetch-${process.pid}`, portRange: [35_400, 35_499], servers: [], database: false });
  t.after(() => manager.teardown({ keep: false }));
  const prefetcher = new LanePrefetcher(manager, ['a', 'b', 'c'], 1);
  const control = await startControlServer(manager, { projects: ['a', 'b', 'c', 'other'], workers: 2, prefetcher });
  t.after(() => control.close());
  const saved = { url: process.env[CONTROL_URL_ENV], token: process.env[CONTROL_TOKEN_ENV] };
  process.env[CONTROL_URL_ENV] = control.url;
  process.env[CONTROL_TOKEN_ENV] = control.token;
  t.after(() => {
    for (const [name, value] of [[CONTROL_URL_ENV, saved.url], [CONTROL_TOKEN_ENV, saved.token]] as const) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  });

  assert.deepEqual(await booted(manager), []);
  prefetcher.start();
  assert.deepEqual(await booted(manager), ['a'], 'before any test: the first project only');
  const a = await requestLane({ project: 'a' });
  assert.deepEqual(await booted(manager), ['a', 'b'], "a's first request boots b ahead");
  assert.deepEqual(await requestLane({ project: 'a' }), a, 'the lane booted ahead is the one a gets');
  await requestLane({ project: 'b', worker: 0 });
  assert.deepEqual(await booted(manager), ['a', 'b', 'b/w0'], 'a per-worker request boots nothing ahead');
  await requestLane({ project: 'b' });
  await requestLane({ project: 'c' });
  await requestLane({ project: 'other' });
  assert.deepEqual(await booted(manager), ['a', 'b', 'b/w0', 'c', 'other'], 'nothing after the last project, nothing for a project outside the order');
});

test('boots as many projects ahead as asked', async (t) => {
  const manager = new LaneManager({ stateDir: await tempDir(t), runId: `prefetch2-${process.pid}`, portRange: [35_400, 35_499], servers: [], database: false });
  t.after(() => manager.teardown({ keep: false }));
  const prefetcher = new LanePrefetcher(manager, ['a', 'b', 'c', 'd'], 2);
  prefetcher.start();
  assert.deepEqual(await booted(manager), ['a', 'b']);
  prefetcher.asked('b');
  assert.deepEqual(await booted(manager), ['a', 'b', 'c', 'd']);
});
