import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import type { SeedChildReport } from '../../../src/databases/template/seed-child.js';
import { tempDir } from '../../helpers/tmp.js';

const CHILD = fileURLToPath(new URL('../../../src/databases/template/seed-child.ts', import.meta.url));

/** Runs the seed's process on `module` (no module: none given); resolves its one report and exit code (at most 30 s). */
function runChild(module: string | undefined, env: NodeJS.ProcessEnv = {}): Promise<{ reports: SeedChildReport[]; code: number | null }> {
  return new Promise((resolve, reject) => {
    const child = fork(CHILD, module === undefined ? [] : [module], { execArgv: ['--import', 'tsx'], env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'ignore', 'ipc'] });
    const reports: SeedChildReport[] = [];
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error('the seed process did not exit within 30 s'));
    }, 30_000);
    child.on('message', (message) => reports.push(message as SeedChildReport));
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ reports, code });
    });
  });
}

describe("a seed's process", () => {
  it('calls the default export with the database it was started for, reports done and exits, whatever the seed left open', async (t) => {
    const dir = await tempDir(t);
    const seed = join(dir, 'seed.mjs');
    const out = join(dir, 'out.txt');
    await writeFile(seed, `import { writeFileSync } from 'node:fs';\nexport default async ({ databaseUrl }) => { writeFileSync(${JSON.stringify(out)}, databaseUrl); setInterval(() => {}, 1000); };\n`);
    const { reports, code } = await runChild(seed, { DATABASE_URL: 'postgres://u:p@127.0.0.1:1/e2e_tpl_build' });
    assert.deepEqual(reports, [{ outcome: 'done' }]);
    assert.equal(code, 0);
    assert.equal(await readFile(out, 'utf8'), 'postgres://u:p@127.0.0.1:1/e2e_tpl_build');
  });

  it('reports a seed that throws, one that cannot be loaded, an export that is not a function, and no module', async (t) => {
    const dir = await tempDir(t);
    const throws = join(dir, 'throws.mjs');
    await writeFile(throws, `export default async () => { throw new Error('no rows today'); };\n`);
    const notFunction = join(dir, 'object.mjs');
    await writeFile(notFunction, `export default { rows: 2 };\n`);
    const failed = await runChild(throws);
    assert.equal(failed.reports[0]?.outcome, 'failed');
    assert.match((failed.reports[0] as { message: string }).message, /no rows today/);
    assert.equal(failed.code, 1);
    assert.equal((await runChild(join(dir, 'missing.mjs'))).reports[0]?.outcome, 'unloadable');
    assert.deepEqual((await runChild(notFunction)).reports, [{ outcome: 'not-a-function', type: 'object' }]);
    assert.deepEqual((await runChild(undefined)).reports, [{ outcome: 'unloadable', message: 'no seed module was given' }]);
  });
});
