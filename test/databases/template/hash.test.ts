import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { computeTemplateHash } from '../../../src/databases/template/hash.js';
import { isLanesError } from '../../../src/errors.js';
import { tempDir } from '../../helpers/tmp.js';

async function project(dir: string): Promise<{ migrations: string; seed: string; extra: string }> {
  const migrations = join(dir, 'migrations');
  await mkdir(join(migrations, '20260101000000_init'), { recursive: true });
  await writeFile(join(migrations, '20260101000000_init', 'migration.sql'), 'CREATE TABLE item (id int);\n');
  const seed = join(dir, 'seed.ts');
  await writeFile(seed, 'export default async () => {};\n');
  const extra = join(dir, 'extra');
  await mkdir(join(extra, 'nested'), { recursive: true });
  await writeFile(join(extra, 'nested', 'a.sql'), 'SELECT 1;\n');
  return { migrations, seed, extra };
}

describe('the hash of a template', () => {
  it('is 12 hex characters, the same for the same inputs in another folder', async (t) => {
    const a = await project(await tempDir(t));
    const b = await project(await tempDir(t));
    const hashA = await computeTemplateHash({ ...a, hashInputs: [a.extra], serverVersion: 160_004 });
    assert.match(hashA, /^[0-9a-f]{12}$/);
    assert.equal(await computeTemplateHash({ ...b, hashInputs: [b.extra], serverVersion: 160_009 }), hashA, 'paths and minor versions do not count');
  });

  it('changes with a migration, the seed, an extra input, the major version, or lane roles', async (t) => {
    const p = await project(await tempDir(t));
    const base = { migrations: p.migrations, seed: p.seed, hashInputs: [p.extra], serverVersion: 160_000 };
    const seen = new Set([await computeTemplateHash(base)]);
    seen.add(await computeTemplateHash({ ...base, serverVersion: 170_000 }));
    seen.add(await computeTemplateHash({ ...base, laneRoles: true, adminRole: 'admin' }));
    seen.add(await computeTemplateHash({ ...base, seed: { command: 'npm run seed' } }));
    seen.add(await computeTemplateHash({ ...base, migrations: false }));
    await writeFile(join(p.extra, 'nested', 'a.sql'), 'SELECT 2;\n');
    seen.add(await computeTemplateHash(base));
    await writeFile(join(p.seed), 'export default async () => { /* changed */ };\n');
    seen.add(await computeTemplateHash(base));
    await writeFile(join(p.migrations, '20260101000000_init', 'migration.sql'), 'CREATE TABLE item (id bigint);\n');
    seen.add(await computeTemplateHash(base));
    assert.equal(seen.size, 8);
  });

  it('refuses a seed or an extra input that cannot be read, naming the option', async (t) => {
    const dir = await tempDir(t);
    await assert.rejects(computeTemplateHash({ migrations: false, seed: join(dir, 'missing.ts'), serverVersion: 160_000 }), (error) => isLanesError(error, 'INVALID_OPTION') && /option `seed`/.test(error.message));
    await assert.rejects(computeTemplateHash({ migrations: false, hashInputs: [join(dir, 'missing')], serverVersion: 160_000 }), (error) => isLanesError(error, 'INVALID_OPTION') && /hashInputs/.test(error.hint ?? ''));
  });
});
