import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';

const DATABASES = new URL('../../src/databases/', import.meta.url).pathname;

/**
 * The groups of src/databases, top first (docs/how-it-works.md): a module imports only from its own
 * folder and the groups below it; `types.ts` imports no module of databases.
 */
const LAYERS = ['index.ts database-allocator.ts claim.ts removal.ts prepare.ts lane-urls.ts options.ts', 'fresh', 'template', 'records', 'sql', 'types.ts'];

function layerOf(path: string): number {
  const first = relative(DATABASES, path).split('/')[0]!;
  const index = LAYERS.findIndex((layer) => layer.split(' ').includes(first));
  assert.ok(index >= 0, `${relative(DATABASES, path)} belongs to a group`);
  return index;
}

function modules(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => (entry.isDirectory() ? modules(join(dir, entry.name)) : entry.name.endsWith('.ts') ? [join(dir, entry.name)] : []));
}

function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/(?:^|\n)\s*(?:import|export)[^'"]*?from\s+'(\.[^']+)'/g), ...text.matchAll(/import\('(\.[^']+)'\)/g), ...text.matchAll(/(?:^|\n)import\s+'(\.[^']+)'/g)].map((match) => resolve(dirname(file), match[1]!.replace(/\.js$/, '.ts')));
}

test('no module of src/databases imports from a group above it, nor from the folders of src above databases', () => {
  const wrong: string[] = [];
  for (const file of modules(DATABASES)) {
    for (const target of importsOf(file)) {
      const name = `${relative(DATABASES, file)} → ${relative(DATABASES, target)}`;
      if (!target.startsWith(DATABASES)) {
        if (/\/src\/(ports|servers|lanes|playwright|cli|vitest)\//.test(target)) wrong.push(name);
        continue;
      }
      const from = layerOf(file);
      const to = layerOf(target);
      // Above it, or beside it in another folder of the same group.
      if (to < from || (to === from && dirname(file) !== dirname(target))) wrong.push(name);
    }
  }
  assert.deepEqual(wrong, []);
});

test('the groups are checked: a module of a lower group importing a higher one is found', () => {
  assert.ok(layerOf(join(DATABASES, 'sql/catalog.ts')) > layerOf(join(DATABASES, 'template/build.ts')));
  assert.ok(layerOf(join(DATABASES, 'types.ts')) > layerOf(join(DATABASES, 'sql/names.ts')));
  assert.ok(importsOf(join(DATABASES, 'fresh/truncate-reset.ts')).some((target) => target.endsWith('/template/snapshot.ts')), 'imports are read');
});
