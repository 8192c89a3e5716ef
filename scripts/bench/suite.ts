/**
 * Part 4: the demo E2E suite with lanes (the repo's playwright.config.ts: one lane per project,
 * fullyParallel, the next project's lane booted ahead) against the same specs on ONE shared server
 * and database with `workers: 1` (scripts/bench/shared.config.ts): wall and CPU time of each
 * `playwright test`, lane boots, and (full mode, once each) the lanes config with `prefetch: 0`
 * and with `eager: true` (scripts/bench/variant.config.ts).
 */
import { cpus } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { applyMigrations, readMigrations } from '../../src/databases/index.ts';
import { PortAllocator } from '../../src/index.ts';
import { DEMO, type BenchContext } from './context.ts';
import { fmtMs, fmtRange, fmtRatio, median, Samples, table, timed, type PartResult } from './measure.ts';
import { allRunsPassed, ensureBuilt, reapLeftovers, runPlaywright, stopCurrentRun, type SuiteRun } from './playwright-run.ts';
import { sharedEnv, SUITE_PROJECTS } from './shared-mode.ts';

const LANES_PORT_RANGE = '42000-42999';
const SHARED_PORT_RANGE: [number, number] = [43000, 43999];
const TARGET = 1.5;

type Mode = 'lanes' | 'shared' | 'lazy' | 'eager';
type LanesMode = Exclude<Mode, 'shared'>;

const LABELS: Record<Mode, string> = {
  lanes: 'lanes: playwright.config.ts (one lane per project, the next one booted ahead)',
  shared: 'shared: one server + one database (scripts/bench/shared.config.ts)',
  lazy: 'lanes, `prefetch: 0`: each lane booted when first asked for (informational, one run)',
  eager: 'lanes, `eager: true`: every lane booted in global setup (informational, one run)',
};

export async function runSuite(ctx: BenchContext): Promise<PartResult> {
  const reps = ctx.reps();
  const cores = cpus().length;
  const stateDirs: string[] = [];
  ctx.defer(async () => {
    await stopCurrentRun();
    for (const stateDir of stateDirs) await reapLeftovers(stateDir);
  });
  await ensureBuilt();

  const runs: Record<Mode, SuiteRun[]> = { lanes: [], shared: [], lazy: [], eager: [] };
  for (let rep = 0; rep < reps; rep++) {
    const modes: Mode[] = rep % 2 === 0 ? ['lanes', 'shared'] : ['shared', 'lanes'];
    if (rep === 0 && !ctx.options.quick) modes.push('lazy', 'eager'); // informational, once
    for (const mode of modes) {
      const busy = await ctx.quiet();
      const run = mode === 'shared' ? await sharedRun(ctx) : await lanesRun(ctx, mode, stateDirs);
      if (busy !== undefined) run.busyBefore = busy;
      const cpu = run.cpuMs === undefined ? '' : ` (CPU ${fmtMs(run.cpuMs)})`;
      console.log(`  suite ${mode} run ${rep + 1}/${reps}: ${fmtMs(run.wallMs)}${cpu}, ${run.passed} passed, ${run.failed} failed, ${run.flaky} flaky${busy === undefined ? '' : `, CPU ${(busy * 100).toFixed(0)} % busy before`}`);
      runs[mode].push(run);
    }
  }
  const modes = (Object.keys(runs) as Mode[]).filter((mode) => runs[mode].length > 0);
  const walls = (mode: Mode): number[] => runs[mode].map((run) => run.wallMs);
  const cpu = (mode: Mode): number => median(runs[mode].flatMap((run) => (run.cpuMs === undefined ? [] : [run.cpuMs])));
  const sharedWall = median(walls('shared'));
  const ratio = sharedWall / median(walls('lanes'));
  const { expected, allPassed } = allRunsPassed([...runs.lanes, ...runs.shared]);
  const rows = modes.map((mode) => [
    LABELS[mode],
    runs[mode].map((run) => run.workers ?? '?').join(', '),
    runs[mode].map((run) => `${run.passed} / ${run.failed} / ${run.flaky}`).join(', '),
    fmtMs(median(walls(mode))),
    fmtRange(walls(mode)),
    Number.isFinite(cpu(mode)) ? fmtMs(cpu(mode)) : '?',
    Number.isFinite(cpu(mode)) ? (cpu(mode) / median(walls(mode))).toFixed(2) : '?',
    fmtRatio(sharedWall / median(walls(mode))),
  ]);

  const boots = new Samples();
  const lanesModes = modes.filter((mode): mode is LanesMode => mode !== 'shared');
  for (const mode of lanesModes) {
    for (const run of runs[mode]) {
      for (const lane of run.lanes) {
        boots.add(`${mode}/boot/${lane.project}`, lane.bootMs);
        boots.add(`${mode}/up/${lane.project}`, lane.upAtMs);
      }
      if (run.testsStartAtMs !== undefined) boots.add(`${mode}/tests`, run.testsStartAtMs);
    }
  }
  const variants = lanesModes.filter((mode) => mode !== 'lanes');
  const bootRows = SUITE_PROJECTS.map((project) => [
    project,
    fmtMs(boots.median(`lanes/boot/${project}`)),
    fmtRange(boots.get(`lanes/boot/${project}`)),
    fmtMs(boots.median(`lanes/up/${project}`)),
    ...variants.map((mode) => fmtMs(boots.median(`${mode}/up/${project}`))),
  ]);
  const phase = (key: 'setupMs' | 'teardownMs'): number => median(runs.lanes.flatMap((run) => (run[key] === undefined ? [] : [run[key]])));
  const lanesCpu = cpu('lanes');
  const floor = lanesCpu / cores;
  const markdown = [
    table(['mode', 'workers', 'tests passed / failed / flaky (each run)', 'wall (median)', 'min–max', 'CPU (median)', 'cores busy', 'shared ÷ mode'], rows),
    '',
    '- **CPU**: user + system time of every process the run started and waited for (runner, workers, browsers, servers; not the',
    '  shared PostgreSQL), read from the bench\'s own `cutime`/`cstime` (/proc/self/stat) around the run. **cores busy** = CPU ÷ wall.',
    '',
    ...(Number.isFinite(floor)
      ? [
          `**The ceiling on this machine.** The lanes run needs ${fmtMs(lanesCpu)} of CPU; on ${cores} cores it cannot take less than`,
          `${fmtMs(floor)} however its work is scheduled, so it cannot beat the shared run (${fmtMs(sharedWall)}, ${fmtMs(cpu('shared'))} of CPU) by more than`,
          `**${fmtRatio(sharedWall / floor)}** here. Lanes trade CPU for isolation and parallelism: ${SUITE_PROJECTS.length} backends and frontends instead of one each,`,
          'and a worker (and browser) per project and parallel slot instead of one per project. Where the shared run leaves',
          'cores idle (more cores, or tests that wait on I/O rather than the CPU) the same trade wins by more.',
          '',
        ]
      : []),
    '**Lanes per project** (from the `[e2e-lanes] lane … up in N ms` lines: ports, database clone, backend + frontend started and',
    'healthy; "up at" is when the line appeared, counted from the start of `playwright test`):',
    '',
    table(['project', 'boot (median)', 'min–max', 'up at (median)', ...variants.map((mode) => `up at, ${mode === 'lazy' ? '`prefetch: 0`' : '`eager`'}`)], bootRows),
    '',
    `Lanes runs, medians: global setup (Postgres joined, template ${runs.lanes.map((run) => run.template ?? '?').join(' / ')}, lane service) ` +
      `${fmtMs(phase('setupMs'))}; Playwright started the tests at ${fmtMs(boots.median('lanes/tests'))}` +
      `${runs.eager.length > 0 ? ` (eager: ${fmtMs(boots.median('eager/tests'))}, after booting every lane)` : ''}; teardown of all lanes ` +
      `(servers stopped, databases dropped, ports released) ${fmtMs(phase('teardownMs'))}.`,
    '',
    `CPU use of the machine in the second before each run (other processes; the bench waits a while for it to fall below 35 %, see "This run"): ` +
      modes.map((mode) => `${mode} ${runs[mode].map((run) => (run.busyBefore === undefined ? '?' : `${(run.busyBefore * 100).toFixed(0)} %`)).join(', ')}`).join('; ') +
      '.',
    '',
    `${reps} run(s) of lanes and shared, alternating${variants.length > 0 ? `; one run of ${variants.join(' and ')}` : ''}. What was compared:`,
    '',
    `- Every mode runs the same specs (e2e/isolation.spec.ts, e2e/lane.spec.ts) in the projects ${SUITE_PROJECTS.join(', ')}, with`,
    '  every assertion enabled, including "starts from exactly the seed" and "never sees rows another project wrote". Left out of',
    '  all: the `per-worker` project (per-worker lanes have no shared-server equivalent) and the one test that reads the toolkit\'s',
    '  state files (`allocated-ports.json`), which do not exist without the toolkit.',
    '- **lanes**: `playwright test` with the repo\'s playwright.config.ts (withLanes, fullyParallel, its `workers`): Postgres and the',
    '  cached template in global setup, which also starts the first project\'s lane; each project\'s first request for its lane',
    '  starts the next project\'s (`prefetch: 1`, the default); teardown at the end.',
    '- **shared**: what teams do to stay correct without lanes: ONE backend + frontend started by Playwright\'s `webServer` on',
    '  fixed free ports against ONE database, `workers: 1`. For the specs to hold, the database is reset (TRUNCATE of every table,',
    '  then the same seed) whenever a worker starts, which with one worker is once per project; projects run one after another.',
    '  The wall time includes creating and migrating that database before Playwright starts (Playwright starts `webServer` before',
    '  `globalSetup`, so it cannot be done inside the run).',
    '- Wall time is the whole `playwright test` process as a user waits for it (config load, servers, browsers, tests, teardown).',
  ].join('\n');

  return {
    id: 'suite',
    title: '4. Whole suite: lanes (fullyParallel) vs one shared server with workers: 1',
    markdown,
    targets: [
      {
        name: 'demo suite with lanes vs shared server workers: 1, every assertion passing',
        goal: `≥ ${TARGET}× and all pass`,
        measured:
          `${fmtRatio(ratio)}, ${allPassed ? `all ${expected} tests passed in every run` : 'NOT all tests passed'}` +
          (Number.isFinite(floor) ? `; ceiling here ${fmtRatio(sharedWall / floor)} (lanes CPU ÷ ${cores} cores)` : ''),
        pass: ratio >= TARGET && allPassed,
      },
    ],
  };
}

async function lanesRun(ctx: BenchContext, mode: LanesMode, stateDirs: string[]): Promise<SuiteRun> {
  const dir = await ctx.dir(`suite-${mode}`);
  const stateDir = join(dir, 'state');
  stateDirs.push(stateDir);
  const config = mode === 'lanes' ? 'playwright.config.ts' : 'scripts/bench/variant.config.ts';
  try {
    return await runPlaywright(dir, ['--config', config, ...SUITE_PROJECTS.flatMap((project) => ['--project', project])], {
      E2E_LANES_STATE_DIR: stateDir,
      E2E_LANES_PORT_RANGE: LANES_PORT_RANGE,
      ...(mode === 'lanes' ? {} : { BENCH_LANES_VARIANT: mode }),
    });
  } finally {
    await reapLeftovers(stateDir);
  }
}

async function sharedRun(ctx: BenchContext): Promise<SuiteRun> {
  const dir = await ctx.dir('suite-shared');
  const ports = new PortAllocator({ stateDir: join(dir, 'state'), runId: ctx.fresh('s'), range: SHARED_PORT_RANGE });
  const database = ctx.fresh('s');
  try {
    const { backend, frontend } = (await ports.allocatePortsForProject('shared')).ports as { backend: number; frontend: number };
    const prep = await timed(async () => {
      await ctx.admin.query(`CREATE DATABASE ${pg.escapeIdentifier(database)}`);
      await applyMigrations(ctx.url(database), await readMigrations(DEMO.migrations));
    });
    const run = await runPlaywright(dir, ['--config', 'scripts/bench/shared.config.ts'], sharedEnv({ databaseUrl: ctx.url(database), backendPort: backend, frontendPort: frontend }));
    return { ...run, wallMs: run.wallMs + prep.ms };
  } finally {
    await ports.releaseRun();
    await ctx.dropDatabasesStartingWith(database);
  }
}
