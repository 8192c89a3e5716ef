import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { importDefault } from '../src/user-module.js';
import { tempDir } from './helpers/tmp.js';

/**
 * Module sources by file name (distinct base names: tsx resolves `x.js` to `x.ts` when both exist);
 * each default export is a function returning a label.
 */
const ESM_SYNTAX = {
  'ts-seed.ts': "import { label } from './label';\nexport default async ({ databaseUrl }: { databaseUrl: string }): Promise<string> => `${label}:${databaseUrl}`;\n",
  'label.ts': "export const label: string = 'ts';\n",
  'mts-seed.mts': "export default (): string => 'mts';\n",
  'cts-seed.cts': "export default (): string => 'cts';\n",
  'cts-exports.cts': "module.exports = (): string => 'cts-module-exports';\n",
  'mjs-seed.mjs': "export default () => 'mjs';\n",
  'cjs-seed.cjs': "module.exports = () => 'cjs';\n",
  'cjs-named.cjs': "exports.default = () => 'cjs-exports-default';\n",
};

async function packageWith(t: Parameters<typeof tempDir>[0], type: 'module' | undefined, js: string): Promise<string> {
  const dir = join(await tempDir(t), 'app');
  await mkdir(dir);
  await writeFile(join(dir, 'package.json'), JSON.stringify({ name: 'app', private: true, ...(type ? { type } : {}) }));
  for (const [name, source] of Object.entries({ ...ESM_SYNTAX, 'js-seed.js': js })) await writeFile(join(dir, name), source);
  return dir;
}

async function call(path: string): Promise<unknown> {
  const value = await importDefault(path);
  assert.equal(typeof value, 'function', `${path} gave ${typeof value}`);
  return (value as (context: { databaseUrl: string }) => unknown)({ databaseUrl: 'url' });
}

for (const type of [undefined, 'module'] as const) {
  describe(`importDefault in a package ${type ? 'with "type": "module"' : 'without "type" (CommonJS)'}`, () => {
    it('returns the default export of .ts, .mts, .cts, .js, .mjs and .cjs files', async (t) => {
      const js = type ? "export default () => 'js';\n" : "module.exports = () => 'js';\n";
      const dir = await packageWith(t, type, js);
      assert.equal(await call(join(dir, 'ts-seed.ts')), 'ts:url');
      for (const [file, label] of [['mts-seed.mts', 'mts'], ['cts-seed.cts', 'cts'], ['cts-exports.cts', 'cts-module-exports'], ['js-seed.js', 'js'], ['mjs-seed.mjs', 'mjs'], ['cjs-seed.cjs', 'cjs'], ['cjs-named.cjs', 'cjs-exports-default']]) {
        assert.equal(await call(join(dir, file!)), label, file);
      }
    });
  });
}

it('loads a .js file with import/export syntax in a CommonJS package, as bundler-style apps write them', async (t) => {
  const dir = await packageWith(t, undefined, "import { label } from './label';\nexport default () => `js-${label}`;\n");
  assert.equal(await call(join(dir, 'js-seed.js')), 'js-ts');
});

it('takes a path relative to the current folder, as options give it', async (t) => {
  const dir = await packageWith(t, undefined, "module.exports = () => 'js';\n");
  assert.equal(await call(relative(process.cwd(), join(dir, 'ts-seed.ts'))), 'ts:url');
  assert.equal(await call(relative(process.cwd(), join(dir, 'js-seed.js'))), 'js');
});

it('rejects with the error of the module itself', async (t) => {
  const dir = await packageWith(t, undefined, "throw new Error('broken seed');\n");
  await assert.rejects(importDefault(join(dir, 'js-seed.js')), /broken seed/);
  await assert.rejects(importDefault(join(dir, 'missing.ts')), /Cannot find module/);
});
