import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeExit } from '../../src/lanes/server-status.js';

test('an exit reads as its code, or as the signal that killed the server', () => {
  assert.equal(describeExit({ code: 3, signal: null }), 'exited with code 3');
  assert.equal(describeExit({ code: null, signal: 'SIGKILL' }), 'was killed by SIGKILL');
});
