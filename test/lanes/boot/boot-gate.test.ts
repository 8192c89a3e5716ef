import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { isLanesError } from '../../../src/errors.js';
import { BootGate, defaultBootConcurrency } from '../../../src/lanes/boot/boot-gate.js';
import { describeRunTimes } from '../../../src/lanes/boot/time-report.js';
import { LaneManager } from '../../../src/lanes/lane-manager.js';
import type { LanesOptions } from '../../../src/lanes/options/lane-options.js';
import { tempDir } from '../../helpers/tmp.js';

const SERVER = new URL('../../fixtures/servers/http-server.mjs', import.meta.url).pathname;

/** A promise and its resolve, to hold a gate's slot as long as a test wants. */
function held(): { promise: Promise<string[]>; done(): void } {
  let done!: () => void;
  // What a lane's start resolves: the servers it started (one here).
  const promise = new Promise<string[]>((resolve) => {
    done = () => resolve(['ok']);
  });
  return { promise, done };
}

/** Lanes `ids` asking `gate` in that order; each holds its slot until its `done()`. `order`: who got in, when. */
function queue(gate: BootGate, ids: string[]) {
  const order: string[] = [];
  const slots = new Map(ids.map((id) => [id, held()]));
  const runs = ids.map((id) =>
    gate.run(id, () => {
      order.push(id);
      return slots.get(id)!.promise;
    }),
  );
  return { gate, order, slots, runs };
}

describe('BootGate', () => {
  it('lets `limit` lanes in at a time, first come first served, and a lane a test waits for before lanes booted ahead', async () => {
    const { gate, order, slots, runs } = queue(new BootGate(1), ['a', 'b', 'c', 'd']);
    await sleep(10);
    assert.deepEqual(order, ['a'], 'one at a time');
    assert.equal(gate.active, 1);
    gate.hurry('d'); // a test waits for d
    slots.get('a')!.done();
    await sleep(10);
    assert.deepEqual(order, ['a', 'd'], 'the lane a test waits for goes first');
    gate.hurry('c');
    slots.get('d')!.done();
    await sleep(10);
    assert.deepEqual(order, ['a', 'd', 'c']);
    slots.get('c')!.done();
    await sleep(10);
    slots.get('b')!.done();
    assert.deepEqual(await Promise.all(runs), [['ok'], ['ok'], ['ok'], ['ok']]);
    assert.deepEqual(order, ['a', 'd', 'c', 'b']);
    const report = gate.report();
    assert.equal(report.peak, 1);
    assert.equal(report.timings.length, 4);
    assert.ok(report.timings.find((timing) => timing.id === 'b')!.waitedMs >= 25, 'b waited for three boots');
  });

  it('with a limit of 2 lets two in at once; open() lets every waiter in; a failed start frees its slot', async () => {
    const { gate, order, slots, runs } = queue(new BootGate(2), ['a', 'b', 'c', 'd']);
    await sleep(10);
    assert.deepEqual(order, ['a', 'b']);
    gate.open();
    await sleep(10);
    assert.deepEqual(order, ['a', 'b', 'c', 'd'], 'a run being torn down waits for nothing');
    for (const slot of slots.values()) slot.done();
    await Promise.all(runs);
    const failing = new BootGate(1);
    await assert.rejects(failing.run('x', () => Promise.reject(new Error('boom'))), /boom/);
    assert.equal(failing.active, 0, 'the slot is free again');
    assert.deepEqual(await failing.run('y', async () => ['y']), ['y']);
  });

  it('defaults to half the cores, at least one', () => {
    assert.equal(defaultBootConcurrency(1), 1);
    assert.equal(defaultBootConcurrency(2), 1);
    assert.equal(defaultBootConcurrency(8), 4);
  });
});

describe('describeRunTimes', () => {
  const timing = (id: string, bootMs: number, doneAtMs: number) => ({ id, servers: 2, waitedMs: 0, bootMs, doneAtMs });
  it('says how many boots took how long, how many at once on how many cores, and when the lanes were up', () => {
    const line = describeRunTimes({ timings: [timing('a', 1_500, 1_700), timing('b', 1_400, 3_200)], peak: 1, runMs: 20_000, reuse: false, ci: false, cores: 2 });
    assert.equal(line, 'time: 2 lane boots (4 servers, 1 at a time on 2 cores) took 2.9 s of server starts; the first lane was up at 1.7 s, the last at 3.2 s; the run: 20.0 s');
    assert.equal(describeRunTimes({ timings: [], peak: 0, runMs: 100, reuse: false, ci: false }), undefined);
  });
  it('names the lever when server boots were most of the run', () => {
    const local = describeRunTimes({ timings: [timing('a', 6_000, 6_100), timing('b', 5_000, 11_200)], peak: 1, runMs: 15_000, reuse: false, ci: false, cores: 2 });
    assert.match(local!, /`reuse: true` keeps the lanes warm/);
    const ci = describeRunTimes({ timings: [timing('a', 6_000, 6_100), timing('b', 5_000, 11_200)], peak: 2, runMs: 15_000, reuse: false, ci: true, cores: 4 });
    assert.match(ci!, /fewer lanes/);
    assert.doesNotMatch(ci!, /reuse/);
  });
});

/** The `start` and `listen` times a lane's server wrote. */
async function timesOf(file: string): Promise<{ start: number; listen: number }> {
  const lines = (await readFile(file, 'utf8')).trim().split('\n');
  const at = (event: string): number => Number(lines.find((line) => line.startsWith(`${event} `))?.split(' ')[1]);
  return { start: at('start'), listen: at('listen') };
}

/** Waits (at most 10 s) until `file` has a line starting with `event`. */
async function waitFor(file: string, event: string): Promise<void> {
  for (let attempt = 0; attempt < 200; attempt++) {
    if ((await readFile(file, 'utf8').catch(() => '')).includes(`${event} `)) return;
    await sleep(50);
  }
  throw new Error(`no "${event}" in ${file} after 10 s`);
}

describe('lanes boot their servers within bootConcurrency', () => {
  /** `listenDelayMs`: how long each server takes to start (long enough for the lanes asked meanwhile to reach the gate). */
  function options(stateDir: string, bootConcurrency: number, listenDelayMs = 400): LanesOptions & { runId: string } {
    return {
      runId: `gate-${Math.random().toString(36).slice(2, 8)}`,
      stateDir,
      portRange: [35_400, 35_499],
      database: false,
      bootConcurrency,
      servers: [{ name: 'web', command: [process.execPath, SERVER], health: '/health', env: ({ project }) => ({ LISTEN_DELAY_MS: String(listenDelayMs), TIMES_FILE: join(stateDir, `${project}.times`) }) }],
    };
  }

  it('one at a time: the second lane starts its server once the first is healthy; with 2, side by side', { timeout: 60_000 }, async (t) => {
    for (const limit of [1, 2]) {
      const stateDir = await tempDir(t);
      const manager = new LaneManager(options(stateDir, limit));
      t.after(() => manager.teardown({ keep: false }));
      await Promise.all([manager.ensureLane('first'), manager.ensureLane('second')]);
      const [a, b] = [await timesOf(join(stateDir, 'first.times')), await timesOf(join(stateDir, 'second.times'))];
      const [early, late] = a.start <= b.start ? [a, b] : [b, a];
      if (limit === 1) assert.ok(late.start >= early.listen, `one at a time: the second started at ${late.start}, the first listened at ${early.listen}`);
      else assert.ok(late.start < early.listen, `side by side: the second started at ${late.start}, before the first listened at ${early.listen}`);
      const times = manager.describeTimes();
      assert.match(times!, new RegExp(`^time: 2 lane boots \\(2 servers, ${limit} at a time on \\d+ cores?\\)`));
      await manager.teardown({ keep: false });
    }
  });

  it('a lane a test asks for boots before a lane booted ahead of need; a boot still waiting at teardown starts nothing', { timeout: 60_000 }, async (t) => {
    const stateDir = await tempDir(t);
    // (A slow first boot: the asked lane takes its ports and reaches the gate while it runs, even on a loaded machine.)
    const manager = new LaneManager(options(stateDir, 1, 1_500));
    t.after(() => manager.teardown({ keep: false }));
    manager.prefetchLane('ahead-1');
    manager.prefetchLane('ahead-2');
    await waitFor(join(stateDir, 'ahead-1.times'), 'start');
    const asked = manager.ensureLane('asked');
    await asked;
    const [first, second] = [await timesOf(join(stateDir, 'ahead-1.times')), await timesOf(join(stateDir, 'asked.times'))];
    assert.ok(second.start >= first.listen, 'the asked lane waited for the boot in progress');
    // ahead-2 was waiting before "asked" was: it boots only now.
    await waitFor(join(stateDir, 'ahead-2.times'), 'start');
    const third = await timesOf(join(stateDir, 'ahead-2.times'));
    assert.ok(third.start >= second.listen, `the lane booted ahead waited for the asked one (${third.start} vs ${second.listen})`);

    // A boot waiting for its turn when the run is torn down stops there.
    const laterDir = await tempDir(t);
    const later = new LaneManager(options(laterDir, 1));
    t.after(() => later.teardown({ keep: false }));
    const boots = ['one', 'two'].map((project) => later.ensureLane(project).then(() => 'up', (error: unknown) => (isLanesError(error, 'INTERRUPTED') ? 'interrupted' : String(error))));
    const started = async (project: string): Promise<boolean> => (await readFile(join(laterDir, `${project}.times`), 'utf8').catch(() => '')).includes('start ');
    for (let attempt = 0; attempt < 200 && !(await started('one')) && !(await started('two')); attempt++) await sleep(50);
    await later.teardown({ keep: false });
    const outcomes = await Promise.all(boots);
    assert.deepEqual([...outcomes].sort(), ['interrupted', 'up'], outcomes.join(', '));
    const waited = outcomes[0] === 'interrupted' ? 'one' : 'two';
    assert.equal(await started(waited), false, 'the lane that waited started no server');
  });
});
