import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { laneLedger, LANES_FILE, type LaneEntry } from '../../../src/lanes/records/lane-ledger.js';
import { newOwner } from '../../../src/state/index.js';
import { tempDir } from '../../helpers/tmp.js';

const entry = (project: string): LaneEntry => ({ runId: 'ledger-run', project, owner: newOwner('ledger-run'), status: 'up', ports: { api: 3100 }, servers: [{ name: 'api', pid: 123, logFile: '/x/api.log' }], logDir: '/x' });

test("the lanes ledger is allocated-lanes.json of the state folder: entries written are read back", async (t) => {
  const stateDir = await tempDir(t);
  const ledger = laneLedger(stateDir);
  assert.deepEqual((await ledger.read()).entries, []);
  await ledger.update((doc) => void doc.entries.push(entry('shop'), entry('admin')));
  assert.deepEqual((await laneLedger(stateDir).read()).entries.map((one) => one.project), ['shop', 'admin']);
  const raw = JSON.parse(await readFile(join(stateDir, LANES_FILE), 'utf8')) as { kind: string };
  assert.equal(raw.kind, 'e2e-lanes/lanes');
});

test('an entry without its servers is not a lane entry: the file is not trusted', async (t) => {
  const stateDir = await tempDir(t);
  const bad = { ...entry('shop'), servers: undefined };
  await laneLedger(stateDir).update((doc) => void doc.entries.push(entry('shop')));
  const raw = JSON.parse(await readFile(join(stateDir, LANES_FILE), 'utf8')) as { entries: unknown[] };
  raw.entries = [bad];
  await writeFile(join(stateDir, LANES_FILE), JSON.stringify(raw));
  const read = await laneLedger(stateDir).read().then((doc) => doc.entries, (error: unknown) => error);
  assert.ok(!(Array.isArray(read) && read.length === 1 && (read[0] as LaneEntry).servers === undefined), 'the entry is never handed out without servers');
});

test("a lane's entry is replaced as a whole, and a restarted server's record points at its new process", async (t) => {
  const { recordLane, recordServerProcess } = await import('../../../src/lanes/records/lane-ledger.js');
  const stateDir = await tempDir(t);
  const ledger = laneLedger(stateDir);
  await recordLane(ledger, { ...entry('shop'), status: 'starting', servers: [] });
  await recordLane(ledger, entry('shop'));
  await recordLane(ledger, entry('admin'));
  await recordServerProcess(ledger, { runId: 'ledger-run', project: 'shop' }, { name: 'api', pid: 456, logFile: '/x/api.2.log' });
  await recordServerProcess(ledger, { runId: 'ledger-run', project: 'shop' }, { name: 'none', pid: 789, logFile: '' });
  const entries = (await ledger.read()).entries;
  assert.deepEqual(entries.map((one) => [one.project, one.status]), [['shop', 'up'], ['admin', 'up']]);
  assert.deepEqual(entries[0]!.servers, [{ name: 'api', pid: 456, logFile: '/x/api.2.log' }]);
  assert.equal(entries[1]!.servers[0]!.pid, 123, "another lane's record is left alone");
});
