import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { getTestPostgres } from '../helpers/postgres.ts';
import { tempDir } from '../helpers/tmp.ts';
import { freshRunId, leftoversOf, runVitest } from './helpers.ts';

// examples/vitest-prisma run as a user runs it: `vitest run` with its config, several workers.
const CONFIG = new URL('../../examples/vitest-prisma/vitest.config.ts', import.meta.url).pathname;

let postgres: Awaited<ReturnType<typeof getTestPostgres>>;
before(async () => {
  postgres = await getTestPostgres();
});
after(() => postgres.release());

async function runExample(t: test.TestContext, env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; output: string; runId: string }> {
  const runId = freshRunId();
  const run = await runVitest(t, ['--config', CONFIG], { E2E_LANES_DATABASE_URL: postgres.adminUrl, E2E_LANES_STATE_DIR: join(await tempDir(t), 'state'), E2E_LANES_RUN_ID: runId, ...env });
  return { ...run, runId };
}

for (const strategy of ['truncate', 'swap'] as const) {
  test(`the example's dozen tests pass with reset: 'test' on several workers (${strategy}${strategy === 'truncate' ? ', the default' : ': Prisma reconnects after every reset'}), and leave no database or role behind`, async (t) => {
    const run = await runExample(t, { EXAMPLE_STRATEGY: strategy, DEBUG: 'e2e-lanes:vitest' });
    assert.equal(run.code, 0, run.output);
    assert.match(run.output, /Tests\s+12 passed \(12\)/, run.output);
    assert.ok(new Set(run.output.match(/database \S+_w\d/g)).size >= 2, `several workers had a database each:\n${run.output}`);
    // Every test's reset used the strategy (one test also resets in its middle).
    const resets = run.output.match(/vitest reset \S+ \((\w+) from/g) ?? [];
    assert.ok(resets.length >= 12, `a reset before every test:\n${run.output}`);
    assert.ok(resets.every((line) => line.includes(`(${strategy} from`)), resets.join('\n'));
    assert.deepEqual(await leftoversOf(postgres.adminUrl, run.runId), { databases: [], roles: [] });
  });
}

test('the same suite fails without the resets: its tests see each other\'s rows', async (t) => {
  const run = await runExample(t, { EXAMPLE_RESET: 'never' });
  assert.equal(run.code, 1, run.output);
  assert.match(run.output, /Tests\s+\d+ failed \| \d+ passed \(12\)/, run.output);
  assert.deepEqual(await leftoversOf(postgres.adminUrl, run.runId), { databases: [], roles: [] });
});
