import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { importsOf, layerChecker } from '../helpers/layers.js';

const DATABASES = new URL('../../src/databases/', import.meta.url).pathname;

/**
 * The groups of src/databases, top first (docs/how-it-works.md): a module imports only from its own
 * folder and the groups below it; `types.ts` imports no module of databases.
 */
const LAYERS = ['index.ts database-allocator.ts claim.ts removal.ts prepare.ts lane-urls.ts options.ts', 'fresh', 'template', 'records', 'sql', 'types.ts'];
const { layerOf, wrongImports } = layerChecker(DATABASES, LAYERS, /\/src\/(ports|servers|lanes|playwright|cli|vitest)\//);

test('no module of src/databases imports from a group above it, nor from the folders of src above databases', () => {
  assert.deepEqual(wrongImports(), []);
});

test('the groups are checked: a module of a lower group importing a higher one is found', () => {
  assert.ok(layerOf(join(DATABASES, 'sql/catalog.ts')) > layerOf(join(DATABASES, 'template/build.ts')));
  assert.ok(layerOf(join(DATABASES, 'types.ts')) > layerOf(join(DATABASES, 'sql/names.ts')));
  assert.ok(importsOf(join(DATABASES, 'fresh/truncate-reset.ts')).some((target) => target.endsWith('/template/snapshot.ts')), 'imports are read');
});
