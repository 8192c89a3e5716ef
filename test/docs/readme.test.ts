import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { runFixture } from '../helpers/processes.js';
import { tempDir } from '../helpers/tmp.js';

const root = new URL('../../', import.meta.url).pathname;

/** The ```ts blocks of the README, in order. */
async function readmeSnippets(): Promise<string[]> {
  const readme = await readFile(join(root, 'README.md'), 'utf8');
  return [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((match) => match[1]!);
}

test('the README snippets are the example files that the test suites run', async () => {
  const [config, spec, allocators] = await readmeSnippets();
  assert.equal(config, await readFile(join(root, 'examples/minimal/playwright.config.ts'), 'utf8'));
  assert.equal(spec, await readFile(join(root, 'examples/minimal/e2e/posts.spec.ts'), 'utf8'));
  assert.equal(allocators, await readFile(join(root, 'examples/allocators.ts'), 'utf8'));
});

test('the README names the two Quickstart commands that package.json defines', async () => {
  const readme = await readFile(join(root, 'README.md'), 'utf8');
  const scripts = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')).scripts as Record<string, string>;
  assert.match(readme, /npm ci && npm run demo/);
  assert.match(readme, /npm ci && npm test/);
  assert.ok(scripts.demo && scripts.test);
});

test('the allocators snippet runs and releases everything it allocated', { timeout: 120_000 }, async (t) => {
  const stateDir = await tempDir(t);
  await runFixture(join(root, 'examples/allocators.ts'), [], {
    env: { E2E_LANES_STATE_DIR: stateDir, E2E_LANES_PORT_RANGE: '33100-33199', E2E_LANES_RUN_ID: 'readme-example' },
    timeoutMs: 110_000,
  });
  for (const file of ['allocated-ports.json', 'allocated-databases.json']) {
    const doc = JSON.parse(await readFile(join(stateDir, file), 'utf8')) as { entries: Array<{ runId: string }> };
    assert.deepEqual(doc.entries.filter((entry) => entry.runId === 'readme-example'), [], file);
  }
});
