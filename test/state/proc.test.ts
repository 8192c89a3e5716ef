import assert from 'node:assert/strict';
import { test } from 'node:test';
import { execa } from 'execa';
import { procStat } from '../../src/state/proc.js';

test('reads this process from /proc: its name, group, start time, and the CPU of its waited-for children', { skip: process.platform !== 'linux' ? 'Linux only' : false }, async () => {
  const before = procStat('self');
  assert.ok(before);
  assert.equal(before.comm, 'node');
  assert.ok(before.pgrp > 0);
  assert.ok(before.startTime > 0);
  // A child that burns ~0.3 s of CPU, then is waited for: its time lands in cutime/cstime.
  await execa(process.execPath, ['-e', 'const end = process.cpuUsage().user + 300_000; while (process.cpuUsage().user < end);']);
  const after = procStat('self')!;
  assert.ok(after.childrenCpuTicks - before.childrenCpuTicks >= 20, `children CPU grew by ${after.childrenCpuTicks - before.childrenCpuTicks} ticks`);
  assert.equal(procStat(2 ** 22 + 12345), undefined, 'a pid that does not exist');
});
