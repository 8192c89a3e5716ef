import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import pg from 'pg';
import { ensureTemplate, runSeed } from '../../src/databases/index.js';
import type { LanesError } from '../../src/errors.js';
import { withDatabase } from '../../src/postgres/index.js';
import { CJS_APP, installCjsApp } from '../helpers/cjs-app.js';
import { tempDir } from '../helpers/tmp.js';
import { query, useTestDatabases } from './helpers.js';

const server = useTestDatabases('cjsseed');
const SEEDED = [{ body: 'seeded by a CommonJS package' }];

/** The rows of a clone of `template` (a sealed template takes no connections itself). */
async function notesOf(template: string, clone: string): Promise<unknown[]> {
  await query(server.adminUrl, `CREATE DATABASE ${pg.escapeIdentifier(clone)} TEMPLATE ${pg.escapeIdentifier(template)}`);
  return query(withDatabase(server.adminUrl, clone), 'SELECT "body" FROM "Note"');
}

describe('a TypeScript seed with `export default` in a CommonJS package', () => {
  let app: { dir: string; remove(): Promise<void> } | undefined;
  before(async () => {
    app = await installCjsApp();
  });
  after(() => app?.remove());

  it('builds the template in this process', async () => {
    const prefix = `${server.prefix}_a`;
    const template = await ensureTemplate({ adminUrl: server.adminUrl, prefix, migrations: join(CJS_APP, 'prisma/migrations'), seed: join(CJS_APP, 'prisma/seed.ts') });
    assert.equal(template.built, true);
    assert.deepEqual(await notesOf(template.name, `${prefix}_check`), SEEDED);
  });

  it('builds the template in a plain Node process, as under the Playwright runner (no tsx loaded)', async () => {
    const prefix = `${server.prefix}_b`;
    // The installed build, from the app's folder, with relative paths as a config gives them.
    const script = `
      const { ensureTemplate } = await import('./node_modules/e2e-lanes/dist/databases/index.js');
      const template = await ensureTemplate({ adminUrl: process.env.ADMIN_URL, prefix: process.env.PREFIX, migrations: 'prisma/migrations', seed: 'prisma/seed.ts' });
      console.log(JSON.stringify(template));`;
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], {
      cwd: app!.dir,
      env: { ...process.env, ADMIN_URL: server.adminUrl, PREFIX: prefix },
      timeout: 60_000,
    });
    const template = JSON.parse(stdout.trim().split('\n').at(-1) ?? '') as { name: string; built: boolean };
    assert.equal(template.built, true);
    assert.deepEqual(await notesOf(template.name, `${prefix}_check`), SEEDED);
  });
});

describe('a seed module of a CommonJS package that cannot be used', () => {
  it('fails with SEED_FAILED carrying the import error, and a hint that does not blame tsx', async (t) => {
    const dir = await tempDir(t);
    await writeFile(join(dir, 'package.json'), '{ "name": "app", "private": true }');
    await writeFile(join(dir, 'seed.ts'), "import { nothing } from 'no-such-package-e2e-lanes';\nexport default async () => nothing;\n");
    await assert.rejects(runSeed(join(dir, 'seed.ts'), 'postgres://nobody@127.0.0.1:1/none'), (error: LanesError) => {
      assert.equal(error.code, 'SEED_FAILED');
      assert.match(error.message, /seed\.ts could not be loaded: .*no-such-package-e2e-lanes/);
      assert.doesNotMatch(error.hint ?? '', /tsx/);
      return true;
    });
  });

  it('fails with SEED_FAILED when module.exports is not a function', async (t) => {
    const dir = await tempDir(t);
    await writeFile(join(dir, 'package.json'), '{ "name": "app", "private": true }');
    await writeFile(join(dir, 'seed.js'), 'module.exports = { rows: [] };\n');
    await assert.rejects(runSeed(join(dir, 'seed.js'), 'postgres://nobody@127.0.0.1:1/none'), (error: LanesError) => {
      assert.equal(error.code, 'SEED_FAILED');
      assert.match(error.message, /has no default export function/);
      assert.match(error.hint ?? '', /module\.exports = /);
      return true;
    });
  });
});
