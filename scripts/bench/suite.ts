/**
 * Part 4: the demo E2E suite with lanes (the repo's playwright.config.ts: one lane per project,
 * fullyParallel, workers 4) against the same specs on ONE shared server and database with
 * `workers: 1` (scripts/bench/shared.config.ts): wall time of each `playwright test`, lane boots,
 * and (full mode, once) the same lanes config with `eager: true` (scripts/bench/eager.config.ts).
 */
import { cpus } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { applyMigrations, PortAllocator, readMigrations } from '../../src/index.ts';
import { DEMO, type BenchContext } from './context.ts';
import { fmtMs, fmtRange, fmtRatio, median, Samples, table, timed, type PartResult } from './measure.ts';
import { ensureBuilt, reapLeftovers, runPlaywright, stopCurrentRun, type SuiteRun } from './playwright-run.ts';
import { locate } from './report.ts';
import { sharedEnv, SUITE_PROJECTS } from './shared-mode.ts';

const LANES_PORT_RANGE = '42000-42999';
const SHARED_PORT_RANGE: [number, number] = [43000, 43999];
const TARGET = 1.5;

type Mode = 'lanes' | 'shared' | 'eager';

export async function runSuite(ctx: BenchContext): Promise<PartResult> {
  const reps = ctx.reps();
  const stateDirs: string[] = [];
  ctx.defer(async () => {
    await stopCurrentRun();
    for (const stateDir of stateDirs) await reapLeftovers(stateDir);
  });
  await ensureBuilt();

  const runs: Record<Mode, SuiteRun[]> = { lanes: [], shared: [], eager: [] };
  for (let rep = 0; rep < reps; rep++) {
    const modes: Mode[] = rep % 2 === 0 ? ['lanes', 'shared'] : ['shared', 'lanes'];
    if (rep === 0 && !ctx.options.quick) modes.push('eager'); // informational, once
    for (const mode of modes) {
      const busy = await ctx.quiet();
      const run = mode === 'shared' ? await sharedRun(ctx) : await lanesRun(ctx, mode, stateDirs);
      if (busy !== undefined) run.busyBefore = busy;
      console.log(`  suite ${mode} run ${rep + 1}/${reps}: ${fmtMs(run.wallMs)}, ${run.passed} passed, ${run.failed} failed, ${run.flaky} flaky${busy === undefined ? '' : `, CPU ${(busy * 100).toFixed(0)} % busy before`}`);
      runs[mode].push(run);
    }
  }

  const walls = (mode: Mode): number[] => runs[mode].map((run) => run.wallMs);
  const ratio = median(walls('shared')) / median(walls('lanes'));
  const expected = runs.lanes[0]?.passed ?? 0;
  const allPassed = expected > 0 && [...runs.lanes, ...runs.shared].every((run) => run.failed === 0 && run.flaky === 0 && run.passed === expected);
  const row = (mode: Mode, label: string, workers: number): string[] => [
    label,
    String(workers),
    runs[mode].map((run) => `${run.passed} / ${run.failed} / ${run.flaky}`).join(', '),
    fmtMs(median(walls(mode))),
    fmtRange(walls(mode)),
    fmtRatio(median(walls('shared')) / median(walls(mode))),
  ];
  const rows = [
    row('lanes', 'lanes: playwright.config.ts (one lane per project, booted on first use)', 4),
    row('shared', 'shared: one server + one database (scripts/bench/shared.config.ts)', 1),
  ];
  if (runs.eager.length > 0) rows.push(row('eager', 'lanes, `eager: true` (scripts/bench/eager.config.ts), one run, informational', 4));

  const boots = new Samples();
  for (const mode of ['lanes', 'eager'] as const) {
    for (const run of runs[mode]) {
      for (const lane of run.lanes) {
        boots.add(`${mode}/boot/${lane.project}`, lane.bootMs);
        boots.add(`${mode}/up/${lane.project}`, lane.upAtMs);
      }
      if (run.testsStartAtMs !== undefined) boots.add(`${mode}/tests`, run.testsStartAtMs);
    }
  }
  const phase = (key: 'setupMs' | 'teardownMs'): number => median(runs.lanes.flatMap((run) => (run[key] === undefined ? [] : [run[key]])));
  const bootRows = SUITE_PROJECTS.map((project) => [
    project,
    fmtMs(boots.median(`lanes/boot/${project}`)),
    fmtRange(boots.get(`lanes/boot/${project}`)),
    fmtMs(boots.median(`lanes/up/${project}`)),
    ...(runs.eager.length > 0 ? [fmtMs(boots.median(`eager/up/${project}`))] : []),
  ]);

  const upAt = SUITE_PROJECTS.map((project) => boots.median(`lanes/up/${project}`)).filter(Number.isFinite);
  const meanBoot = median(SUITE_PROJECTS.map((project) => boots.median(`lanes/boot/${project}`)).filter(Number.isFinite));
  const serialized = upAt.length > 1 && Math.max(...upAt) - Math.min(...upAt) > 1.5 * meanBoot;
  const markdown = [
    table(['mode', 'workers', 'tests passed / failed / flaky (each run)', 'wall (median)', 'min–max', 'shared ÷ mode'], rows),
    '',
    '**Lanes per project** (from the `[e2e-lanes] lane … up in N ms` lines: ports, database clone, backend + frontend started and',
    'healthy; "up at" is when the line appeared, counted from the start of `playwright test`):',
    '',
    table(['project', 'boot (median)', 'min–max', 'up at (median)', ...(runs.eager.length > 0 ? ['up at, eager'] : [])], bootRows),
    '',
    `Lanes runs, medians: global setup (Postgres joined, template ${runs.lanes.map((run) => run.template ?? '?').join(' / ')}, lane service) ` +
      `${fmtMs(phase('setupMs'))}; Playwright started the tests at ${fmtMs(boots.median('lanes/tests'))}` +
      `${runs.eager.length > 0 ? ` (eager: ${fmtMs(boots.median('eager/tests'))}, after booting every lane)` : ''}; teardown of all lanes ` +
      `(servers stopped, databases dropped, ports released) ${fmtMs(phase('teardownMs'))}.`,
    '',
    `CPU use of the machine in the second before each run (other processes; the bench waits a while for it to fall below 35 %, see "This run"): ` +
      (['lanes', 'shared', 'eager'] as const)
        .filter((mode) => runs[mode].length > 0)
        .map((mode) => `${mode} ${runs[mode].map((run) => (run.busyBefore === undefined ? '?' : `${(run.busyBefore * 100).toFixed(0)} %`)).join(', ')}`)
        .join('; ') +
      '.',
    '',
    `${reps} run(s) of each mode, alternating. What was compared:`,
    '',
    `- Both modes run the same specs (e2e/isolation.spec.ts, e2e/lane.spec.ts) in the projects ${SUITE_PROJECTS.join(', ')}, with`,
    '  every assertion enabled, including "starts from exactly the seed" and "never sees rows another project wrote". Left out of',
    '  both: the `per-worker` project (per-worker lanes have no shared-server equivalent) and the one test that reads the toolkit\'s',
    '  state files (`allocated-ports.json`), which do not exist without the toolkit.',
    '- **lanes**: `playwright test` with the repo\'s playwright.config.ts (withLanes, fullyParallel, 4 workers): Postgres and the',
    '  cached template in global setup, one lane per project (ports, cloned database, backend + frontend) booted when the',
    '  project\'s first worker asks for it, teardown at the end.',
    '- **shared**: what teams do to stay correct without lanes: ONE backend + frontend started by Playwright\'s `webServer` on',
    '  fixed free ports against ONE database, `workers: 1`. For the specs to hold, the database is reset (TRUNCATE of every table,',
    '  then the same seed) whenever a worker starts, which with one worker is once per project; projects run one after another.',
    '  The wall time includes creating and migrating that database before Playwright starts (Playwright starts `webServer` before',
    '  `globalSetup`, so it cannot be done inside the run).',
    '- Wall time is the whole `playwright test` process as a user waits for it (config load, servers, browsers, tests, teardown).',
    '',
    ...(serialized ? whySerialized() : ['The lanes of the projects came up together (their "up at" times lie within about one boot).']),
    ...(ratio < 1
      ? [
          '',
          `**Lanes were slower than one shared server here** (${cpus().length} CPU cores). The demo's tests are short and spend their time`,
          'in Chromium and the Node servers, i.e. on the CPU: 4 workers, 4 browsers and 8 lane servers share the same cores that',
          '1 worker, 1 browser and 2 servers have to themselves in shared mode, and every project switch starts 4 workers instead',
          'of 1. Parallel lanes pay off where there are cores to spare or tests wait on I/O; measure on the machines that run the suite.',
        ]
      : []),
  ].join('\n');

  return {
    id: 'suite',
    title: '4. Whole suite: lanes (fullyParallel) vs one shared server with workers: 1',
    markdown,
    targets: [
      {
        name: 'demo suite with lanes vs shared server workers: 1, every assertion passing',
        goal: `≥ ${TARGET}× and all pass`,
        measured: `${fmtRatio(ratio)}, ${allPassed ? `all ${expected} tests passed in every run` : 'NOT all tests passed'}`,
        pass: ratio >= TARGET && allPassed,
      },
    ],
  };
}

/** The explanation printed when the lanes of a lazy run came up one after another. */
function whySerialized(): string[] {
  return [
    '**Why the lanes came up one after another.** Playwright hands its workers the tests in project order, and a worker serves',
    'one project; so all four workers start on one project, and the next project gets workers (and asks for its lane) only',
    'when the first one runs out of tests. A lazily booted lane therefore sits on the critical path once per project: the',
    '"up at" column grows by about one lane boot plus one round of worker start-up per project. Booting every selected lane',
    'at once in global setup (`eager: true`, already an option) takes the boots off that path. Proposed: make it the default',
    `when a config has more than one lane-per-project project (\`${locate('src/lanes/options.ts', 'eager?: boolean;')}\`, used at`,
    `\`${locate('src/playwright/global-setup.ts', 'if (options.eager)')}\`), or set \`eager: true\` in playwright.config.ts.`,
  ];
}

async function lanesRun(ctx: BenchContext, mode: 'lanes' | 'eager', stateDirs: string[]): Promise<SuiteRun> {
  const dir = await ctx.dir(`suite-${mode}`);
  const stateDir = join(dir, 'state');
  stateDirs.push(stateDir);
  const config = mode === 'eager' ? 'scripts/bench/eager.config.ts' : 'playwright.config.ts';
  try {
    return await runPlaywright(dir, ['--config', config, ...SUITE_PROJECTS.flatMap((project) => ['--project', project])], {
      E2E_LANES_STATE_DIR: stateDir,
      E2E_LANES_PORT_RANGE: LANES_PORT_RANGE,
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
