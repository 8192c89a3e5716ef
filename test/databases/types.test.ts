import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DATABASES_FILE, databasesSpec, RESET_STRATEGIES } from '../../src/databases/types.js';
import { StateFile } from '../../src/state/index.js';
import { tempDir } from '../helpers/tmp.js';

describe('the shared types of databases', () => {
  it('read the ledger file, and set aside a ledger whose entry lacks a database name', async (t) => {
    const dir = await tempDir(t);
    const path = join(dir, DATABASES_FILE);
    assert.equal(DATABASES_FILE, 'allocated-databases.json');
    const file = new StateFile(path, databasesSpec);
    assert.deepEqual((await file.read()).entries, []);
    const owner = { runId: 'r', pid: 4242, host: 'h', createdAt: '2026-01-01T00:00:00.000Z', heartbeatAt: '2026-01-01T00:00:00.000Z' };
    const entry = { runId: 'r', project: 'p', owner, databaseName: 'e2e_r_p', databaseUrl: 'postgres://u:***@h/e2e_r_p', template: 'e2e_tpl_x' };
    await writeFile(path, JSON.stringify({ kind: 'e2e-lanes/databases', version: 1, entries: [entry] }));
    assert.deepEqual((await file.read()).entries.map((item) => item.databaseName), ['e2e_r_p']);
    const { databaseName: _name, ...withoutName } = entry;
    await writeFile(path, JSON.stringify({ kind: 'e2e-lanes/databases', version: 1, entries: [withoutName] }));
    assert.deepEqual((await file.read()).entries, [], 'a damaged ledger reads as empty');
  });

  it('name the two reset strategies', () => {
    assert.deepEqual(RESET_STRATEGIES, ['swap', 'truncate']);
  });
});
