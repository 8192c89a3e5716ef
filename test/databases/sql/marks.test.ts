import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DatabaseEntry } from '../../../src/databases/index.js';
import { laneMark, markToEntry, MARK_TOOLKIT, parseMark } from '../../../src/databases/sql/marks.js';

const entry: DatabaseEntry = {
  runId: 'r1',
  project: 'chromium',
  worker: 3,
  owner: { runId: 'r1', pid: 4242, pidStart: 777, host: 'ci-7', createdAt: '2026-01-01T00:00:00.000Z', heartbeatAt: '2026-01-01T00:01:00.000Z' },
  databaseName: 'e2e_r1_chromium_0123abcd_w3',
  databaseUrl: 'postgres://u:***@127.0.0.1:5432/e2e_r1_chromium_0123abcd_w3',
  template: 'e2e_tpl_0123456789ab',
};

describe('lane marks', () => {
  it('name the lane and its owner, and read back as an entry of that lane and owner', () => {
    const mark = laneMark(entry);
    assert.deepEqual(mark, { toolkit: MARK_TOOLKIT, kind: 'lane', runId: 'r1', project: 'chromium', worker: 3, host: 'ci-7', pid: 4242, pidStart: 777, created: '2026-01-01T00:00:00.000Z' });
    assert.deepEqual(parseMark(JSON.stringify(mark)), mark);
    const back = markToEntry(entry.databaseName, mark, 'postgres://u:secret@127.0.0.1:5432/postgres');
    assert.deepEqual(back, {
      runId: 'r1',
      project: 'chromium',
      worker: 3,
      owner: { runId: 'r1', pid: 4242, pidStart: 777, host: 'ci-7', createdAt: '2026-01-01T00:00:00.000Z', heartbeatAt: '2026-01-01T00:00:00.000Z' },
      databaseName: entry.databaseName,
      databaseUrl: 'postgres://u:***@127.0.0.1:5432/e2e_r1_chromium_0123abcd_w3',
      template: '',
    });
  });

  it('say kept when the entry is kept, or when asked', () => {
    assert.equal(laneMark(entry).kept, undefined);
    assert.equal(laneMark(entry, true).kept, true);
    assert.equal(laneMark({ ...entry, owner: { ...entry.owner, kept: true } }).kept, true);
  });

  it('without a lane or owner read back as nothing', () => {
    const { pid: _pid, ...withoutPid } = laneMark(entry);
    assert.equal(markToEntry(entry.databaseName, withoutPid, 'postgres://127.0.0.1/postgres'), undefined);
    assert.equal(markToEntry(entry.databaseName, { toolkit: MARK_TOOLKIT, kind: 'lane', created: '2026-01-01T00:00:00.000Z' }, 'postgres://127.0.0.1/postgres'), undefined);
  });
});
