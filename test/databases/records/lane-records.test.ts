import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pg from 'pg';
import { reaping } from '../../../src/databases/records/decisions.js';
import { FileRecords, type LaneRecords } from '../../../src/databases/records/lane-records.js';
import { DatabaseLedger } from '../../../src/databases/records/ledger.js';
import { newOwner } from '../../../src/state/index.js';
import { tempDir } from '../../helpers/tmp.js';

describe('lanes recorded in the state file only', () => {
  it('run each step on their own, never asking the server (the client given is not even connected)', async (t) => {
    const ledger = new DatabaseLedger({ stateDir: await tempDir(t), prefix: 'e2e', leaseMs: 60_000, shard: undefined });
    const records: LaneRecords = new FileRecords(ledger);
    const offline = new pg.Client({ host: '127.0.0.1', port: 1 });
    const steps: string[] = [];
    assert.equal(records.kind, 'file');
    assert.equal(records.ledger, ledger);
    await records.claim(offline, { key: { runId: 'r', project: 'p' }, databaseName: 'e2e_r_p', template: 'e2e_tpl_x' }, async () => void steps.push('create'));
    records.hold('e2e_r_p');
    await records.handOver(offline, ['e2e_r_p'], newOwner('r'));
    assert.deepEqual(await records.rows({ prefix: 'e2e' }), []);
    const entry = { runId: 'r', project: 'p', owner: newOwner('r'), databaseName: 'e2e_r_p', databaseUrl: 'postgres://u:***@h/e2e_r_p', template: 'e2e_tpl_x' };
    const dropped = await records.remove(offline, { databaseName: 'e2e_r_p', entry, reason: 'released', ledger: [entry] }, reaping(60_000), { wait: true }, async () => {
      steps.push('drop');
      return true;
    });
    assert.equal(dropped, true);
    await records.removeUnrecorded(offline, 'e2e_r_q', async () => void steps.push('drop unrecorded'));
    assert.deepEqual(steps, ['create', 'drop', 'drop unrecorded']);
  });

  it('pass on a failure of the step', async (t) => {
    const records = new FileRecords(new DatabaseLedger({ stateDir: await tempDir(t), prefix: 'e2e', leaseMs: 60_000, shard: undefined }));
    await assert.rejects(records.claim(new pg.Client(), { key: { runId: 'r', project: 'p' }, databaseName: 'e2e_r_p', template: 't' }, async () => Promise.reject(new Error('clone failed'))), /clone failed/);
  });
});
