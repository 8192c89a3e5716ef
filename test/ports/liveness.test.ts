import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { splitLive } from '../../src/ports/liveness.js';
import { judgeOwner, newOwner, type LedgerEntry } from '../../src/state/index.js';

test('judges every lane as judgeOwner does, each owner process once: dead and recycled pids, old heartbeats, kept, warm and other hosts', () => {
  const now = Date.now();
  const at = (ago: number): string => new Date(now - ago).toISOString();
  // A pid that existed and is gone now.
  const gone = spawnSync(process.execPath, ['-e', '']).pid!;
  const mine = newOwner('run');
  const entries: LedgerEntry[] = [];
  const variants = [
    {},
    { heartbeatAt: at(120_000) },
    { pid: gone },
    { pid: gone, kept: true },
    { heartbeatAt: at(120_000), kept: true },
    { pidStart: (mine.pidStart ?? 0) + 1 },
    { warmUntil: new Date(now + 60_000).toISOString(), heartbeatAt: at(120_000) },
    { warmUntil: new Date(now - 1_000).toISOString() },
    { pid: gone, warmUntil: new Date(now + 60_000).toISOString() },
    { host: 'elsewhere.example', pid: gone },
    { host: 'elsewhere.example', heartbeatAt: at(120_000) },
  ];
  // Each variant several times with heartbeats of their own, as a run's lanes have.
  variants.forEach((variant, index) => {
    for (let copy = 0; copy < 3; copy++) {
      entries.push({ runId: 'run', project: `p${index}-${copy}`, owner: { ...mine, heartbeatAt: at(copy * 1_000), ...variant } });
    }
  });
  const expected = { live: [] as LedgerEntry[], stale: [] as { entry: LedgerEntry; reason: string }[] };
  for (const entry of entries) {
    const verdict = judgeOwner(entry.owner, 60_000, now);
    if (verdict.alive) expected.live.push(entry);
    else expected.stale.push({ entry, reason: verdict.reason });
  }
  assert.deepEqual(splitLive(entries, 60_000, now), expected);
  assert.ok(expected.live.length > 0 && expected.stale.length > 0, 'both kinds are there');
});
