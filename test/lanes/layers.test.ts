import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';

const LANES = new URL('../../src/lanes/', import.meta.url).pathname;

/**
 * The layers of src/lanes, top first (docs/how-it-works.md): a module imports only from its own
 * folder and the layers below it; `lane.ts` and `server-status.ts` import no folder of lanes.
 */
const LAYERS = ['lane-manager.ts lane-table.ts', 'boot', 'reuse', 'teardown', 'reaping', 'records', 'use options', 'lane.ts server-status.ts'];

function layerOf(path: string): number {
  const first = relative(LANES, path).split('/')[0]!;
  const index = LAYERS.findIndex((layer) => layer.split(' ').includes(first));
  assert.ok(index >= 0, `${relative(LANES, path)} belongs to a layer`);
  return index;
}

function modules(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => (entry.isDirectory() ? modules(join(dir, entry.name)) : entry.name.endsWith('.ts') ? [join(dir, entry.name)] : []));
}

function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/(?:^|\n)\s*(?:import|export)[^'"]*?from\s+'(\.[^']+)'/g), ...text.matchAll(/import\('(\.[^']+)'\)/g), ...text.matchAll(/(?:^|\n)import\s+'(\.[^']+)'/g)].map((match) => resolve(dirname(file), match[1]!.replace(/\.js$/, '.ts')));
}

test('no module of src/lanes imports from a layer above it, nor from the Playwright or CLI folders', () => {
  const wrong: string[] = [];
  for (const file of modules(LANES)) {
    for (const target of importsOf(file)) {
      const name = `${relative(LANES, file)} → ${relative(LANES, target)}`;
      if (!target.startsWith(LANES)) {
        if (/\/src\/(playwright|cli|vitest)\//.test(target)) wrong.push(name);
        continue;
      }
      const from = layerOf(file);
      const to = layerOf(target);
      // Above it, or beside it in another folder of the same layer.
      if (to < from || (to === from && dirname(file) !== dirname(target))) wrong.push(name);
    }
  }
  assert.deepEqual(wrong, []);
});

test('the layers are checked: a module of a lower layer importing a higher one is found', () => {
  assert.ok(layerOf(join(LANES, 'boot/boot.ts')) < layerOf(join(LANES, 'reaping/orphans.ts')));
  assert.ok(importsOf(join(LANES, 'lane-manager.ts')).some((target) => target.endsWith('/boot/boot.ts')), 'imports are read');
});
