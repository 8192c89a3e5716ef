import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatLanesMessage, isLanesError, LANES_ERROR_CODES, LanesError } from '../src/errors.js';

test('a LanesError keeps its parts and composes its message of them: the short message, then the hint', () => {
  const error = new LanesError('PORT_RANGE_EXHAUSTED', 'No free port in 3100-3101.', { hint: 'Widen the range.', details: { range: [3100, 3101] } });
  assert.equal(error.shortMessage, 'No free port in 3100-3101.');
  assert.equal(error.hint, 'Widen the range.');
  assert.equal(error.message, 'No free port in 3100-3101.\nHint: Widen the range.');
  assert.ok(error.stack?.startsWith('LanesError: No free port in 3100-3101.\nHint: Widen the range.\n    at '), error.stack);
  const bare = new LanesError('INTERRUPTED', 'Stopped.');
  assert.equal(bare.message, 'Stopped.');
  assert.equal(formatLanesMessage(error, { withCode: true }), '[PORT_RANGE_EXHAUSTED] No free port in 3100-3101.\nHint: Widen the range.');
  assert.equal(formatLanesMessage(bare, { withCode: true }), '[INTERRUPTED] Stopped.');
});

test('showCode puts the code in front of the message once, in the stack too, and leaves the parts alone', () => {
  const fresh = new LanesError('SERVER_EXITED', 'Server "api" exited with code 3.', { hint: 'Read its log.' });
  assert.equal(fresh.showCode(), fresh);
  fresh.showCode();
  assert.equal(fresh.message, '[SERVER_EXITED] Server "api" exited with code 3.\nHint: Read its log.');
  assert.ok(fresh.stack?.startsWith(`LanesError: ${fresh.message}\n    at `), fresh.stack);
  assert.equal(fresh.shortMessage, 'Server "api" exited with code 3.');
  assert.equal(formatLanesMessage(fresh, { withCode: true }), fresh.message, 'the code is never shown twice');

  const read = new LanesError('SERVER_EXITED', 'Server "web" exited.');
  void read.stack; // formatted with the message as it was then
  read.showCode();
  assert.ok(read.stack?.startsWith('LanesError: [SERVER_EXITED] Server "web" exited.\n    at '), read.stack);
});

test('toJSON gives the parts and fromJSON makes the same error of them', () => {
  const error = new LanesError('LANE_NOT_FOUND', 'Project "x" is not a project of this run.', { hint: 'Use a known project.', details: { project: 'x' }, cause: new Error('inner') });
  const json = JSON.parse(JSON.stringify(error));
  assert.deepEqual(json, { name: 'LanesError', code: 'LANE_NOT_FOUND', message: 'Project "x" is not a project of this run.', hint: 'Use a known project.', details: { project: 'x' } });
  const back = LanesError.fromJSON(json);
  assert.ok(isLanesError(back, 'LANE_NOT_FOUND'));
  assert.equal(back.message, error.message);
  assert.equal(back.hint, error.hint);
  assert.deepEqual(back.details, error.details);
  assert.deepEqual(new LanesError('INTERRUPTED', 'Stopped.').toJSON(), { name: 'LanesError', code: 'INTERRUPTED', message: 'Stopped.' });
});

test('fromJSON turns what is not a LanesError into an INTERNAL error that shows it', () => {
  for (const value of [null, 'text', { code: 'NO_SUCH_CODE', message: 'm' }, { code: 'INTERRUPTED' }, { message: 'm' }]) {
    const error = LanesError.fromJSON(value);
    assert.equal(error.code, 'INTERNAL', JSON.stringify(value));
    assert.ok(error.message.includes(JSON.stringify(value)), error.message);
  }
});

test('every code is listed once', () => {
  assert.equal(new Set(LANES_ERROR_CODES).size, LANES_ERROR_CODES.length);
});

test('isLanesError recognises a LanesError made by a second copy of the module, which instanceof does not', async () => {
  // A query string makes the module loader evaluate the file again: a second LanesError class, as
  // when Playwright's loader and Node's each load the toolkit.
  const copy = (await import(`../src/errors.ts?copy=${Date.now()}`)) as typeof import('../src/errors.js');
  assert.notStrictEqual(copy.LanesError, LanesError);
  const foreign = new copy.LanesError('LANE_NOT_FOUND', 'No lane.');
  assert.equal(foreign instanceof LanesError, false);
  assert.ok(isLanesError(foreign));
  assert.ok(isLanesError(foreign, 'LANE_NOT_FOUND'));
  assert.equal(isLanesError(foreign, 'INTERNAL'), false);
  assert.ok(copy.isLanesError(new LanesError('INTERNAL', 'x'), 'INTERNAL'));
  assert.equal(isLanesError(new Error('plain')), false);
  assert.equal(isLanesError({ code: 'INTERNAL' }), false);
});
