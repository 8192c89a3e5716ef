/**
 * Part 8: the local loop. A developer runs the same spec file again and again; with option `reuse`
 * the second run takes the first run's warm lanes over instead of booting them. Measured: the demo
 * suite with one spec file and one project, run twice in a row; the SECOND run with `reuse` against
 * the second run without it (interleaved, medians): from process start to the first test starting
 * (the JSON reporter's start time of the earliest test), and the whole wall time.
 */
import { join } from 'node:path';
import { stateOf } from '../../src/cli/context.ts';
import { tearDownRuns } from '../../src/lanes/teardown/run-records.ts';
import type { BenchContext } from './context.ts';
import { fmtMs, fmtRange, fmtRatio, median, table, type PartResult } from './measure.ts';
import { allRunsPassed, ensureBuilt, reapLeftovers, runPlaywright, stopCurrentRun, type SuiteRun } from './playwright-run.ts';

const PORT_RANGE = '45000-45499';
const SELECTION = ['e2e/lane.spec.ts', '--project', 'alpha'];
const FIRST_TEST_TARGET = 3;
const WALL_TARGET = 1.5;

type Mode = 'plain' | 'reuse';
/** The informational variant: the same, with a frontend that takes this long to start (a framework dev server). */
const SLOW_START_MS = 6_000;

interface LoopRun extends SuiteRun {
  /** From process start to the first test done (its fixtures, the lane among them, and its body). */
  firstTestMs: number;
}

export async function runReuse(ctx: BenchContext): Promise<PartResult> {
  const reps = ctx.reps();
  const stateDirs: string[] = [];
  ctx.defer(async () => {
    await stopCurrentRun();
    for (const stateDir of stateDirs) {
      await down(stateDir).catch(() => undefined);
      await reapLeftovers(stateDir);
    }
  });
  await ensureBuilt();
  const runs: Record<Mode, LoopRun[]> = { plain: [], reuse: [] };
  const slow: Record<Mode, LoopRun[]> = { plain: [], reuse: [] };
  for (let rep = 0; rep < reps; rep++) {
    const modes: Mode[] = rep % 2 === 0 ? ['reuse', 'plain'] : ['plain', 'reuse'];
    for (const [mode, startMs] of [...modes.map((mode) => [mode, 0] as const), ...(rep === 0 ? modes.map((mode) => [mode, SLOW_START_MS] as const) : [])]) {
      const dir = await ctx.dir(`reuse-${mode}`);
      const stateDir = join(dir, 'state');
      stateDirs.push(stateDir);
      const env = { E2E_LANES_STATE_DIR: stateDir, E2E_LANES_PORT_RANGE: PORT_RANGE, DEMO_REUSE: mode === 'reuse' ? '1' : '0', DEMO_FRONTEND_START_MS: String(startMs), CI: '' };
      try {
        await loopRun(join(dir, 'first'), env); // the run the developer did a minute ago (not timed)
        const busy = await ctx.quiet();
        const run = await loopRun(join(dir, 'second'), env);
        if (busy !== undefined) run.busyBefore = busy;
        console.log(`  reuse ${mode}${startMs ? ` (frontend starting in ${fmtMs(startMs)})` : ''} run ${rep + 1}/${reps}: first test done at ${fmtMs(run.firstTestMs)}, wall ${fmtMs(run.wallMs)}, ${run.passed} passed, ${run.failed} failed${busy === undefined ? '' : `, CPU ${(busy * 100).toFixed(0)} % busy before`}`);
        (startMs ? slow : runs)[mode].push(run);
      } finally {
        await down(stateDir);
        await reapLeftovers(stateDir);
      }
    }
  }
  const first = (mode: Mode): number[] => runs[mode].map((run) => run.firstTestMs);
  const wall = (mode: Mode): number[] => runs[mode].map((run) => run.wallMs);
  const firstRatio = median(first('plain')) / median(first('reuse'));
  const wallRatio = median(wall('plain')) / median(wall('reuse'));
  const { allPassed } = allRunsPassed([...runs.plain, ...runs.reuse]);
  const setup = (mode: Mode): string => fmtMs(median(runs[mode].flatMap((run) => (run.setupMs === undefined ? [] : [run.setupMs]))));
  const boots = runs.plain.flatMap((run) => run.lanes.map((lane) => lane.bootMs));
  const rows = (['plain', 'reuse'] as const).map((mode) => [
    mode === 'plain' ? 'second run without `reuse`' : 'second run with `reuse` (lanes reused)',
    runs[mode].map((run) => `${run.passed} / ${run.failed}`).join(', '),
    fmtMs(median(first(mode))),
    fmtRange(first(mode)),
    fmtMs(median(wall(mode))),
    fmtRange(wall(mode)),
    setup(mode),
  ]);
  const markdown = [
    table(['run', 'tests passed / failed (each)', 'first test done (median)', 'min–max', 'wall (median)', 'min–max', 'global setup (median)'], rows),
    '',
    `${reps} pair(s) of runs of each, alternating; each pair: \`playwright test ${SELECTION.join(' ')}\` twice in a row (the demo's`,
    'backend and frontend, one lane), the second one timed. Without `reuse` the second run boots its lane again',
    `(median ${fmtMs(median(boots))}: ports, a ready database renamed in, both servers up and healthy); with \`reuse\` it takes the`,
    'first run\'s warm lane over: its servers are checked alive and healthy and its database is put back to the template.',
    '',
    'Where the rest of the reused run goes: starting Node and Playwright and loading the config (about a second, paid by any',
    '`playwright test`), global setup (taking the lane over and its reset, column above), starting a worker and the browser, the',
    'tests themselves, then teardown (with `reuse`, handing the lanes to the watchdog instead of stopping them). The demo\'s',
    'servers boot in about a second, and global setup boots the lane while Playwright starts its worker and the browser, so',
    'most of a second run is Playwright\'s own start either way. Informational, one pair: the same with a frontend that takes',
    `${fmtMs(SLOW_START_MS)} to start (\`DEMO_FRONTEND_START_MS\`, as a framework's dev server compiles first): without \`reuse\` the`,
    `first test is done at ${fmtMs(median(slow.plain.map((run) => run.firstTestMs)))}, with it at ${fmtMs(median(slow.reuse.map((run) => run.firstTestMs)))}`,
    `(${fmtRatio(median(slow.plain.map((run) => run.firstTestMs)) / median(slow.reuse.map((run) => run.firstTestMs)))}); wall ${fmtMs(median(slow.plain.map((run) => run.wallMs)))} vs ${fmtMs(median(slow.reuse.map((run) => run.wallMs)))}.`,
  ].join('\n');
  return {
    id: 'reuse',
    title: '8. The local loop: the second run of one spec file with `reuse` (warm lanes) vs without',
    markdown,
    targets: [
      {
        name: 'second run of one spec: first test done sooner with `reuse`',
        goal: `≥ ${FIRST_TEST_TARGET}×`,
        measured: `${fmtRatio(firstRatio)} (${fmtMs(median(first('plain')))} vs ${fmtMs(median(first('reuse')))})${allPassed ? '' : ', NOT all tests passed'}`,
        pass: firstRatio >= FIRST_TEST_TARGET && allPassed,
      },
      {
        name: 'second run of one spec: wall time with `reuse`',
        goal: `≥ ${WALL_TARGET}× shorter`,
        measured: `${fmtRatio(wallRatio)} (${fmtMs(median(wall('plain')))} vs ${fmtMs(median(wall('reuse')))})`,
        pass: wallRatio >= WALL_TARGET && allPassed,
      },
    ],
  };
}

async function loopRun(dir: string, env: Record<string, string>): Promise<LoopRun> {
  const run = await runPlaywright(dir, SELECTION, env);
  // The list reporter's first result line: the first test has had its lane and run its body. (The JSON
  // report's start time is before worker fixtures, the lane among them, and its duration leaves them out.)
  return { ...run, firstTestMs: run.firstResultAtMs ?? Number.NaN };
}

/** `e2e-lanes down --all` for the state folder: warm lanes and their watchdog go. */
async function down(stateDir: string): Promise<void> {
  const options = { stateDir };
  await tearDownRuns(await stateOf(options, {}), { all: true }, options);
}
