import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { importsOf, layerChecker } from '../helpers/layers.js';

const LANES = new URL('../../src/lanes/', import.meta.url).pathname;

/**
 * The layers of src/lanes, top first (docs/how-it-works.md): a module imports only from its own
 * folder and the layers below it; `lane.ts` and `server-status.ts` import no folder of lanes.
 */
const LAYERS = ['lane-manager.ts lane-table.ts', 'boot', 'reuse', 'teardown', 'reaping', 'records', 'use options', 'lane.ts server-status.ts'];

const { layerOf, wrongImports } = layerChecker(LANES, LAYERS, /\/src\/(playwright|cli|vitest)\//);

test('no module of src/lanes imports from a layer above it, nor from the Playwright or CLI folders', () => {
  assert.deepEqual(wrongImports(), []);
});

test('the layers are checked: a module of a lower layer importing a higher one is found', () => {
  assert.ok(layerOf(join(LANES, 'boot/boot.ts')) < layerOf(join(LANES, 'reaping/orphans.ts')));
  assert.ok(importsOf(join(LANES, 'lane-manager.ts')).some((target) => target.endsWith('/boot/boot.ts')), 'imports are read');
});
