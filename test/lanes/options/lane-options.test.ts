import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isLanesError } from '../../../src/errors.js';
import { baseServerName, keepLanes, keepMode, lanePortNames, validateLanesOptions } from '../../../src/lanes/options/lane-options.js';

const server = (name: string, extra: object = {}) => ({ name, command: ['node', `${name}.js`], ...extra });

test("a lane's port names are the option's, else its servers' (shared ports once), else backend and frontend", () => {
  assert.deepEqual(lanePortNames({ ports: ['a', 'b'] }), ['a', 'b']);
  assert.deepEqual(lanePortNames({ servers: [server('api'), server('worker', { port: 'api' }), server('web')] }), ['api', 'web']);
  assert.deepEqual(lanePortNames({}), ['backend', 'frontend']);
});

test("the base URL's server is the one named, else frontend, else the last with a health check", () => {
  assert.equal(baseServerName({ servers: [server('api'), server('frontend')] }), 'frontend');
  assert.equal(baseServerName({ servers: [server('api'), server('worker', { health: false })] }), 'api');
  assert.equal(baseServerName({ servers: [server('api'), server('web')], baseURLServer: 'api' }), 'api');
  assert.throws(() => baseServerName({ servers: [server('api')], baseURLServer: 'nope' }), (error) => isLanesError(error, 'INVALID_OPTION') && /baseURLServer "nope"/.test(error.message));
});

test('keep comes from the option, else from E2E_LANES_KEEP', (t) => {
  const before = process.env.E2E_LANES_KEEP;
  t.after(() => (before === undefined ? delete process.env.E2E_LANES_KEEP : (process.env.E2E_LANES_KEEP = before)));
  delete process.env.E2E_LANES_KEEP;
  assert.equal(keepMode({}), 'never');
  assert.equal(keepMode({ keep: 'on-failure' }), 'on-failure');
  process.env.E2E_LANES_KEEP = '1';
  assert.equal(keepMode({}), 'always');
  assert.equal(keepLanes({ keep: false }), false, 'the option wins');
  process.env.E2E_LANES_KEEP = 'on-failure';
  assert.equal(keepMode({}), 'on-failure');
});

test('options that cannot work are refused, naming the option', () => {
  const refused: Array<[object, RegExp]> = [
    [{ keep: 'yes' }, /keep/],
    [{ isolation: 'lane' }, /isolation/],
    [{ prefetch: -1 }, /prefetch/],
    [{ bootConcurrency: 0 }, /bootConcurrency 0/],
    [{ bootConcurrency: 1.5 }, /bootConcurrency 1\.5/],
    [{ keepLogs: 1.5 }, /keepLogs/],
    [{ servers: [server('api'), server('api')] }, /Two servers are named "api"/],
    [{ reuse: 'always' }, /reuse/],
  ];
  for (const [options, message] of refused) {
    assert.throws(() => validateLanesOptions(options as never), (error) => isLanesError(error, 'INVALID_OPTION') && message.test(error.message), JSON.stringify(options));
  }
  validateLanesOptions({ servers: [server('api')], keep: 'on-failure', prefetch: 0, bootConcurrency: 3 });
});
