import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_IDLE_MS, resolveReuse } from '../../../src/lanes/options/reuse-options.js';

test('reuse is off by default and on CI unless forced, with a line that says so; bad values are INVALID_OPTION', () => {
  assert.equal(resolveReuse({}).enabled, false);
  assert.deepEqual(resolveReuse({ reuse: true }, false), { enabled: true, idleMs: 900_000 });
  const onCi = resolveReuse({ reuse: true }, true);
  assert.equal(onCi.enabled, false);
  assert.match(onCi.ignored!, /reuse is ignored on CI.*force: true/);
  assert.equal(resolveReuse({ reuse: { force: true, idleMs: 5_000 } }, true).enabled, true);
  for (const reuse of ['yes', { idleMs: 10 }, { idleMs: 1500.5 }, { force: 'no' }] as unknown[]) {
    assert.throws(() => resolveReuse({ reuse: reuse as never }), (error: Error & { code?: string }) => error.code === 'INVALID_OPTION' && /reuse/.test(error.message), JSON.stringify(reuse));
  }
});

test('idleMs and force are taken as given, within their bounds', () => {
  assert.deepEqual(resolveReuse({ reuse: { idleMs: 1_000 } }, false), { enabled: true, idleMs: 1_000 });
  assert.deepEqual(resolveReuse({ reuse: false }, false), { enabled: false, idleMs: DEFAULT_IDLE_MS });
  assert.throws(() => resolveReuse({ reuse: { idleMs: 8 * 24 * 3_600_000 } }, false), /reuse\.idleMs/);
});
