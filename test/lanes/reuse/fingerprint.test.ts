import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { LanesOptions } from '../../../src/lanes/options/lane-options.js';
import { fingerprintChange, laneFingerprint } from '../../../src/lanes/reuse/fingerprint.js';

const options = (command: string[], env: Record<string, string> = {}): LanesOptions => ({ database: false, servers: [{ name: 'api', command, env }] });
const ports = { api: 3100 };

test('the same config and definitions give the same fingerprint: nothing changed', () => {
  const a = laneFingerprint(options(['node', 'a.js']), '/app/playwright.config.ts', { project: 'shop', ports });
  const b = laneFingerprint(options(['node', 'a.js']), '/app/playwright.config.ts', { project: 'shop', ports });
  assert.deepEqual(a, b);
  assert.equal(fingerprintChange(a, b), undefined);
  assert.equal(a.config, '/app/playwright.config.ts');
});

test('a changed command, env, port name or server list says what changed; values never appear', () => {
  const before = laneFingerprint(options(['node', 'a.js'], { TOKEN: 'secret-1' }), '', { project: 'shop', ports });
  assert.equal(fingerprintChange(before, laneFingerprint(options(['node', 'b.js'], { TOKEN: 'secret-1' }), '', { project: 'shop', ports })), "the api's command changed");
  const env = fingerprintChange(before, laneFingerprint(options(['node', 'a.js'], { TOKEN: 'secret-2' }), '', { project: 'shop', ports }));
  assert.equal(env, "the api's env changed");
  assert.doesNotMatch(JSON.stringify(before), /secret-1/);
  assert.equal(fingerprintChange(before, laneFingerprint(options(['node', 'a.js'], { TOKEN: 'secret-1' }), '', { project: 'shop', ports: { web: 3100 } })), 'its port names changed');
  const two: LanesOptions = { database: false, servers: [{ name: 'api', command: ['node', 'a.js'], env: { TOKEN: 'secret-1' } }, { name: 'web', command: ['node', 'w.js'], port: 'api' }] };
  assert.equal(fingerprintChange(before, laneFingerprint(two, '', { project: 'shop', ports })), 'a server was added ("web")');
  assert.equal(fingerprintChange(undefined, before), 'it was recorded without a fingerprint');
});
