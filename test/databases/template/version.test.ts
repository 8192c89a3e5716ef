import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { toolkitVersion } from '../../../src/databases/template/version.js';

test("the toolkit's version is the one in its package.json", async () => {
  const pkg = JSON.parse(await readFile(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  assert.equal(toolkitVersion(), pkg.version);
  assert.equal(toolkitVersion(), toolkitVersion());
});
