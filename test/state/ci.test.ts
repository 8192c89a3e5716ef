import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, it } from 'node:test';
import { isLanesError } from '../../src/errors.js';
import { laneDatabaseName } from '../../src/databases/index.js';
import { CI_VENDORS_WITH_RUN_IDS, ciRunId, composeRunId, parseShard, resolveShard, validateRunId } from '../../src/state/index.js';

const OWNER = fileURLToPath(new URL('../../src/state/owner.ts', import.meta.url));
const PLAYWRIGHT = ['/usr/bin/node', '/repo/node_modules/.bin/playwright', 'test'];

const GITHUB = { GITHUB_ACTIONS: 'true', GITHUB_RUN_ID: '12345678901', GITHUB_RUN_ATTEMPT: '2', GITHUB_JOB: 'e2e' };
const GITLAB = { GITLAB_CI: 'true', CI_PIPELINE_ID: '987654', CI_JOB_ID: '123456789' };

/** `resolveRunId()` in a fresh process whose only environment is `env` (so ci-info detects from it). */
async function runIdIn(env: Record<string, string>, argv: string[] = []): Promise<string> {
  const script = `import(${JSON.stringify(OWNER)}).then((m) => console.log(m.resolveRunId(), process.env.E2E_LANES_RUN_ID))`;
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '-e', script, '--', ...argv], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
  });
  const [id, exported] = stdout.trim().split(' ');
  assert.equal(exported, id, 'the id is exported to E2E_LANES_RUN_ID for the workers');
  return id!;
}

describe('run ids from CI', () => {
  it('builds a GitHub Actions id from the job, run id, attempt and shard', () => {
    assert.equal(ciRunId({ vendor: 'GITHUB_ACTIONS', env: GITHUB, argv: [...PLAYWRIGHT, '--shard=3/4'] }), 'gh-e2e-12345678901-2-s3of4');
    assert.equal(ciRunId({ vendor: 'GITHUB_ACTIONS', env: GITHUB, argv: [...PLAYWRIGHT, '--shard', '3/4'] }), 'gh-e2e-12345678901-2-s3of4');
    assert.equal(ciRunId({ vendor: 'GITHUB_ACTIONS', env: { GITHUB_RUN_ID: '7' }, argv: PLAYWRIGHT }), 'gh-7-1');
  });

  it('builds a GitLab id from the pipeline and job ids, with the shard from E2E_LANES_SHARD', () => {
    assert.equal(ciRunId({ vendor: 'GITLAB', env: { ...GITLAB, E2E_LANES_SHARD: '2/3' }, argv: PLAYWRIGHT }), 'gl-987654-123456789-s2of3');
    assert.equal(ciRunId({ vendor: 'GITLAB', env: GITLAB, argv: PLAYWRIGHT }), 'gl-987654-123456789');
  });

  it('gives no id outside CI, on vendors it does not know, or when the run variables are missing', () => {
    assert.equal(ciRunId({ vendor: null, env: GITHUB, argv: PLAYWRIGHT }), undefined);
    assert.equal(ciRunId({ vendor: 'HEROKU', env: GITHUB, argv: PLAYWRIGHT }), undefined);
    assert.equal(ciRunId({ vendor: 'GITHUB_ACTIONS', env: {}, argv: PLAYWRIGHT }), undefined);
  });

  it('differs between shards, attempts, jobs and runs, and agrees with itself', () => {
    const id = (env: Record<string, string>, shard = '1/2') => ciRunId({ vendor: 'GITHUB_ACTIONS', env, argv: [...PLAYWRIGHT, `--shard=${shard}`] });
    const ids = [id(GITHUB), id(GITHUB, '2/2'), id({ ...GITHUB, GITHUB_RUN_ATTEMPT: '3' }), id({ ...GITHUB, GITHUB_JOB: 'e2e-admin' }), id({ ...GITHUB, GITHUB_RUN_ID: '12345678902' })];
    assert.equal(new Set(ids).size, ids.length, ids.join(' '));
    assert.equal(id(GITHUB), ids[0]);
    // …and so do the database names of the same project in those runs.
    assert.equal(new Set(ids.map((runId) => laneDatabaseName('e2e', { runId: runId!, project: 'chromium' }))).size, ids.length);
  });

  it('keeps every id valid: at most 64 characters of [A-Za-z0-9._-], hashed when it had to be cut or cleaned', () => {
    const uuid = (n: number) => `0190c9a4-7b1e-7c3d-9e8f-${String(n).padStart(12, '0')}`;
    const long = ciRunId({ vendor: 'BUILDKITE', env: { BUILDKITE_BUILD_ID: uuid(1), BUILDKITE_JOB_ID: uuid(2) }, argv: [...PLAYWRIGHT, '--shard=12/16'] })!;
    const other = ciRunId({ vendor: 'BUILDKITE', env: { BUILDKITE_BUILD_ID: uuid(1), BUILDKITE_JOB_ID: uuid(3) }, argv: [...PLAYWRIGHT, '--shard=12/16'] })!;
    for (const id of [long, other]) {
      assert.ok(id.length <= 64, `${id} has ${id.length} characters`);
      assert.match(id, /^bk-0190c9a4-[A-Za-z0-9._-]*-[0-9a-f]{12}-s12of16$/);
      assert.equal(validateRunId(id), id);
    }
    assert.notEqual(long, other);
    // Characters outside the set are replaced, and a hash keeps `a/b` and `a_b` apart.
    const slash = composeRunId('jk', ['jenkins-shop/main-41']);
    assert.match(slash, /^jk-jenkins-shop_main-41-[0-9a-f]{12}$/);
    assert.notEqual(slash, composeRunId('jk', ['jenkins-shop_main-41']));
    assert.equal(composeRunId('x', ['y'.repeat(200)]).length, 64);
    // Every vendor's id is valid, whatever its variables hold.
    const wild = new Proxy({}, { get: (_, name) => (typeof name === 'string' && name.endsWith('TOTAL') ? '3' : `{${String(name)}/ü 😀 ${'z'.repeat(80)}}`) });
    for (const vendor of CI_VENDORS_WITH_RUN_IDS) {
      const id = ciRunId({ vendor, env: wild, argv: [...PLAYWRIGHT, '--shard=1/1'] });
      assert.ok(id !== undefined, vendor);
      assert.equal(validateRunId(id), id, vendor);
    }
  });

  it('detects the vendor with ci-info in a fresh process, unique per invocation, and keeps a random id outside CI', async () => {
    // Each invocation gets a random part too: one CI job may start several runs at once.
    assert.match(await runIdIn(GITHUB, ['--shard=2/4']), /^gh-e2e-12345678901-2-[0-9a-f]{6}-s2of4$/);
    assert.match(await runIdIn({ ...GITLAB, CI: 'true' }), /^gl-987654-123456789-[0-9a-f]{6}$/);
    const twice = await Promise.all([runIdIn(GITHUB), runIdIn(GITHUB)]);
    assert.notEqual(twice[0], twice[1]);
    assert.match(await runIdIn({}), /^r\d{8}t\d{6}-[0-9a-f]{6}$/);
    // CI=false turns detection off; an explicit E2E_LANES_RUN_ID (what workers inherit) always wins.
    assert.match(await runIdIn({ ...GITHUB, CI: 'false' }), /^r\d{8}t/);
    assert.equal(await runIdIn({ ...GITHUB, E2E_LANES_RUN_ID: 'from-the-runner' }, ['--shard=2/4']), 'from-the-runner');
  });
});

describe('shards', () => {
  it('parses current/total and rejects shards out of range', () => {
    assert.deepEqual(parseShard('2/4'), { current: 2, total: 4 });
    assert.deepEqual(parseShard(' 1 / 1 '), { current: 1, total: 1 });
    for (const bad of ['0/4', '5/4', '2/', '/4', 'two/four', '2/4/6', '-1/4', '']) assert.equal(parseShard(bad), undefined, bad);
  });

  it('reads --shard from the command line first, then E2E_LANES_SHARD', () => {
    assert.deepEqual(resolveShard([...PLAYWRIGHT, '--shard=3/8'], { E2E_LANES_SHARD: '1/2' }), { current: 3, total: 8 });
    assert.deepEqual(resolveShard([...PLAYWRIGHT, '--project', 'chromium'], { E2E_LANES_SHARD: '1/2' }), { current: 1, total: 2 });
    assert.equal(resolveShard([...PLAYWRIGHT, '--', '--shard=3/8'], {}), undefined);
    assert.equal(resolveShard(PLAYWRIGHT, {}), undefined);
  });

  it('rejects a malformed E2E_LANES_SHARD naming the variable', () => {
    assert.throws(() => resolveShard(PLAYWRIGHT, { E2E_LANES_SHARD: '5/4' }), (error) => isLanesError(error, 'INVALID_OPTION') && /E2E_LANES_SHARD/.test(error.message));
  });
});
