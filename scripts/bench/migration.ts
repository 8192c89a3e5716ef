/**
 * Part 7: the suite of examples/vite-prisma (a Vite + Prisma 7 app, 4 specs in 2 projects) the way
 * docs/migrating.md starts from, against the same suite with lanes. The old way
 * (migration-old.config.ts): ONE backend and ONE Vite server (`webServer`), ONE database,
 * `workers: 1`, and before every test the database dropped, created, migrated and seeded again (what
 * `prisma migrate reset` does). Lanes: the example's own playwright.config.ts (a lane per project,
 * side by side, `laneReset: 'test'`), three ways: template cached (warm), template rebuilt (cold,
 * `E2E_LANES_REBUILD=1`), and the second of two runs with `reuse` (migration-reuse.config.ts).
 * Per `playwright test`, interleaved: when the first test was done, wall and CPU time; and the old
 * way's reset per test.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stateOf } from '../../src/cli/context.ts';
import { PortAllocator } from '../../src/index.ts';
import { tearDownRuns } from '../../src/lanes/teardown/run-records.ts';
import type { BenchContext } from './context.ts';
import { fmtMs, fmtRange, fmtRatio, median, percentile, table, timed, type PartResult } from './measure.ts';
import { migrateReset, oldWayEnv, type OldWaySettings } from './migration-old.ts';
import { allRunsPassed, ensureBuilt, reapLeftovers, runPlaywright, stopCurrentRun, type SuiteRun } from './playwright-run.ts';

const LANES_PORT_RANGE = '44000-44499';
const OLD_PORT_RANGE: [number, number] = [44500, 44999];
const LANES_CONFIG = 'examples/vite-prisma/playwright.config.ts';
const REUSE_CONFIG = 'scripts/bench/migration-reuse.config.ts';
/** Whole suite, old ÷ lanes (template cached). */
const TARGET = 1.5;
/** First test done, old ÷ lanes: no later than the old way. */
const FIRST_TEST_TARGET = 1;

type Mode = 'old' | 'cold' | 'warm' | 'reuse';
/** The order of the first repetition; each next one starts one further (cold first: the template exists for warm). */
const ORDER: readonly Mode[] = ['cold', 'old', 'warm', 'reuse'];
/** The order of the table. */
const MODES: readonly Mode[] = ['old', 'cold', 'warm', 'reuse'];

const LABELS: Record<Mode, string> = {
  old: 'old way: one server pair, one database, `workers: 1`, drop + migrate + seed before each test',
  cold: 'lanes cold: template rebuilt (`E2E_LANES_REBUILD=1`), lanes booted',
  warm: 'lanes warm: template cached, lanes booted',
  reuse: 'lanes with `reuse`: the second run, taking the first run\'s warm lanes over',
};

interface MigrationRun extends SuiteRun {
  /** From the start (the old way: of its database preparation) to the first test's result. */
  firstTestMs: number;
}

export async function runMigration(ctx: BenchContext): Promise<PartResult> {
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

  const runs: Record<Mode, MigrationRun[]> = { old: [], cold: [], warm: [], reuse: [] };
  const resets: number[] = [];
  for (let rep = 0; rep < reps; rep++) {
    const modes = ORDER.map((_, index) => ORDER[(index + rep) % ORDER.length]!);
    for (const mode of modes) {
      const run = mode === 'old' ? await oldRun(ctx, resets) : await lanesRun(ctx, stateDirs, mode);
      const cpu = run.cpuMs === undefined ? '' : ` (CPU ${fmtMs(run.cpuMs)})`;
      const busy = run.busyBefore === undefined ? '' : `, CPU ${(run.busyBefore * 100).toFixed(0)} % busy before`;
      console.log(`  migration ${mode} run ${rep + 1}/${reps}: first test done at ${fmtMs(run.firstTestMs)}, wall ${fmtMs(run.wallMs)}${cpu}, ${run.passed} passed, ${run.failed} failed, ${run.flaky} flaky${busy}`);
      runs[mode].push(run);
    }
  }
  const walls = (mode: Mode): number[] => runs[mode].map((run) => run.wallMs);
  const firsts = (mode: Mode): number[] => runs[mode].map((run) => run.firstTestMs);
  const cpu = (mode: Mode): number => median(runs[mode].flatMap((run) => (run.cpuMs === undefined ? [] : [run.cpuMs])));
  const oldWall = median(walls('old'));
  const oldFirst = median(firsts('old'));
  const wallRatio = (mode: Mode): number => oldWall / median(walls(mode));
  const firstRatio = (mode: Mode): number => oldFirst / median(firsts(mode));
  const { expected, allPassed } = allRunsPassed(MODES.flatMap((mode) => runs[mode]));
  const rows = MODES.map((mode) => [
    LABELS[mode],
    runs[mode].map((run) => `${run.passed} / ${run.failed} / ${run.flaky}`).join(', '),
    fmtMs(median(firsts(mode))),
    fmtRange(firsts(mode)),
    fmtMs(median(walls(mode))),
    fmtRange(walls(mode)),
    Number.isFinite(cpu(mode)) ? fmtMs(cpu(mode)) : '?',
    fmtRatio(firstRatio(mode)),
    fmtRatio(wallRatio(mode)),
  ]);
  const boots = (mode: Mode): number[] => runs[mode].flatMap((run) => run.lanes.map((lane) => lane.bootMs));
  const setup = (mode: Mode): string => fmtMs(median(runs[mode].flatMap((run) => (run.setupMs === undefined ? [] : [run.setupMs]))));
  const templates = (mode: Mode): string => runs[mode].map((run) => run.template ?? '?').join(' / ');
  const timeLines = (['cold', 'warm', 'reuse'] as const).map((mode) => {
    const line = runs[mode].find((run) => run.timeLine !== undefined)?.timeLine;
    return `- ${mode === 'reuse' ? 'lanes with `reuse`' : `lanes ${mode}`}: ${line === undefined ? 'none printed (no lane was booted: every lane was taken over warm)' : `\`[e2e-lanes] ${line}\``}`;
  });
  const markdown = [
    table(
      ['mode', 'tests passed / failed / flaky (each run)', 'first test done (median)', 'min–max', 'wall (median)', 'min–max', 'CPU (median)', 'old ÷ mode (first test)', 'old ÷ mode (wall)'],
      rows,
    ),
    '',
    `${reps} run(s) of each, interleaved (the order rotated each repetition), each after waiting for a quiet CPU. "First test done":`,
    'from the start of `playwright test` (the old way: of its database preparation, which comes first) until Playwright printed',
    'the first test\'s result. "Wall": the same start until `playwright test` exited, its teardown included.',
    '',
    `The old way's reset before each test (drop, create, migrate, seed): median ${fmtMs(median(resets))}, p90 ${fmtMs(percentile(resets, 90))}, ` +
      `over ${resets.length} resets; the lanes put a lane's database back in milliseconds (a ready copy renamed in, part 6). ` +
      `A lane's boot (ports, database, backend and Vite dev server up): median ${fmtMs(median(boots('warm')))} (${fmtRange(boots('warm'))}) warm, ` +
      `${fmtMs(median(boots('cold')))} cold. Global setup (median): cold ${setup('cold')} (template ${templates('cold')}), ` +
      `warm ${setup('warm')} (template ${templates('warm')}), with \`reuse\` ${setup('reuse')} (template ${templates('reuse')}).`,
    '',
    'Where the time went, as the lanes print it at the end of a run (one run of each):',
    '',
    ...timeLines,
    '',
    'What was compared:',
    '',
    '- All run the same specs (examples/vite-prisma/e2e/tasks.spec.ts: 4 tests, each in the projects `desktop` and `mobile`) against',
    '  the same app: a Node backend on Prisma 7 (`@prisma/adapter-pg`) and a Vite dev server proxying `/api` to it. The specs insert',
    '  rows with the app\'s Prisma client and assert exactly "the seed plus my own rows", so every way must start every test from the seed.',
    '- **old way** (scripts/bench/migration-old.config.ts): what the app did before lanes (docs/migrating.md, "Before"): Playwright\'s',
    '  `webServer` starts ONE backend and ONE Vite server, against ONE database, `workers: 1`; before every test the database is',
    '  dropped (`WITH (FORCE)`: the servers\' clients reconnect), created, migrated (prisma/migrations, by the toolkit\'s runner) and',
    '  seeded by the seed command of the example\'s prisma.config.ts (a process of its own, as Prisma runs it). That is what',
    '  `prisma migrate reset --force` does, less the start of the Prisma CLI and its schema engine (which cannot run here), so the',
    '  real old way is slower than measured. Its times include creating and migrating the database before Playwright starts.',
    '- **lanes warm**: `playwright test` with the example\'s own config (docs/migrating.md, "After") in a fresh state folder: the',
    '  two projects side by side (`workers: 2`, one per project), each in its own lane (ports, a database cloned from the template,',
    '  backend and Vite booted), `laneReset: \'test\'`; the template (migrations and seed) is already built and cached on the server, as on every run after the first.',
    '- **lanes cold**: the same with `E2E_LANES_REBUILD=1`: the template is dropped and built again (migrations and seed) in global',
    '  setup, as on the first run or after a migration changed.',
    `- **lanes with \`reuse\`**: the same config with \`reuse: { force: true }\` (${REUSE_CONFIG}), run twice in a row in one`,
    '  fresh state folder; the first run (not timed) boots the lanes and leaves them warm, the second (timed) takes them over: their',
    '  servers checked alive and healthy and their databases put back to the seed. Its CPU column leaves out the warm servers, which',
    '  the first run started. The warm lanes are stopped after each pair.',
  ].join('\n');

  const warmPassed = allPassed ? `all ${expected} tests passed in every run` : 'NOT all tests passed';
  return {
    id: 'migration',
    title: '7. Migrating a suite: the Vite + Prisma example with lanes vs the old way (webServer, workers: 1, migrate reset per test)',
    markdown: [
      markdown,
      '',
      `Informational (no target): lanes cold, first test done ${fmtRatio(firstRatio('cold'))} (${fmtMs(oldFirst)} vs ${fmtMs(median(firsts('cold')))}), ` +
        `whole suite ${fmtRatio(wallRatio('cold'))} (${fmtMs(oldWall)} vs ${fmtMs(median(walls('cold')))}), old ÷ lanes cold.`,
    ].join('\n'),
    targets: [
      {
        name: 'example suite with lanes (template cached) + `laneReset: \'test\'` vs the old way, every test passing',
        goal: `≥ ${TARGET}× and all pass`,
        measured: `${fmtRatio(wallRatio('warm'))} (${fmtMs(oldWall)} vs ${fmtMs(median(walls('warm')))}), ${warmPassed}`,
        pass: wallRatio('warm') >= TARGET && allPassed,
      },
      {
        name: 'example suite: first test done with lanes (template cached) no later than the old way',
        goal: `≥ ${FIRST_TEST_TARGET.toFixed(1)}× (old ÷ lanes)`,
        measured: `${fmtRatio(firstRatio('warm'))} (${fmtMs(oldFirst)} vs ${fmtMs(median(firsts('warm')))})${allPassed ? '' : ', NOT all tests passed'}`,
        pass: firstRatio('warm') >= FIRST_TEST_TARGET && allPassed,
      },
      {
        name: 'example suite: first test done with lanes and `reuse` (second run) no later than the old way',
        goal: `≥ ${FIRST_TEST_TARGET.toFixed(1)}× (old ÷ lanes)`,
        measured: `${fmtRatio(firstRatio('reuse'))} (${fmtMs(oldFirst)} vs ${fmtMs(median(firsts('reuse')))})${allPassed ? '' : ', NOT all tests passed'}`,
        pass: firstRatio('reuse') >= FIRST_TEST_TARGET && allPassed,
      },
    ],
  };
}

/** One lanes run of `mode` in a fresh state folder, measured after waiting for a quiet CPU; nothing of it is left running. */
async function lanesRun(ctx: BenchContext, stateDirs: string[], mode: Exclude<Mode, 'old'>): Promise<MigrationRun> {
  const dir = await ctx.dir(`migration-${mode}`);
  const stateDir = join(dir, 'state');
  stateDirs.push(stateDir);
  const env: Record<string, string> = { E2E_LANES_STATE_DIR: stateDir, E2E_LANES_PORT_RANGE: LANES_PORT_RANGE };
  if (mode === 'cold') env.E2E_LANES_REBUILD = '1';
  const config = mode === 'reuse' ? REUSE_CONFIG : LANES_CONFIG;
  try {
    if (mode === 'reuse') {
      // The run the developer did a minute ago (not timed): it leaves its lanes warm.
      const first = await runPlaywright(join(dir, 'first'), ['--config', config], env);
      console.log(`  migration reuse, first run (not timed): wall ${fmtMs(first.wallMs)}, ${first.passed} passed, ${first.failed} failed, ${first.flaky} flaky`);
    }
    const busy = await ctx.quiet();
    const run = await runPlaywright(join(dir, mode === 'reuse' ? 'second' : 'run'), ['--config', config], env);
    if (busy !== undefined) run.busyBefore = busy;
    return { ...run, firstTestMs: run.firstResultAtMs ?? Number.NaN };
  } finally {
    if (mode === 'reuse') await down(stateDir);
    await reapLeftovers(stateDir);
  }
}

/** One old-way run, measured after waiting for a quiet CPU: its database prepared, then `playwright test`. */
async function oldRun(ctx: BenchContext, resets: number[]): Promise<MigrationRun> {
  const dir = await ctx.dir('migration-old');
  const ports = new PortAllocator({ stateDir: join(dir, 'state'), runId: ctx.fresh('m'), range: OLD_PORT_RANGE });
  const database = ctx.fresh('m');
  try {
    const { backend, frontend } = (await ports.allocatePortsForProject('old')).ports as { backend: number; frontend: number };
    const settings: OldWaySettings = { adminUrl: ctx.postgres.adminUrl, database, backendPort: backend, frontendPort: frontend, resetLog: join(dir, 'resets.log') };
    const busy = await ctx.quiet();
    // The database the developer's .env names exists before `playwright test` starts its webServer.
    const prep = await timed(() => migrateReset(settings));
    const run = await runPlaywright(dir, ['--config', 'scripts/bench/migration-old.config.ts'], oldWayEnv(settings));
    if (busy !== undefined) run.busyBefore = busy;
    const logged = (await readFile(settings.resetLog, 'utf8').catch(() => '')).split('\n').filter(Boolean).map(Number);
    resets.push(...logged.slice(1)); // the first line is the preparation above
    return { ...run, wallMs: run.wallMs + prep.ms, firstTestMs: prep.ms + (run.firstResultAtMs ?? Number.NaN) };
  } finally {
    await ports.releaseRun();
    await ctx.dropDatabasesStartingWith(database);
  }
}

/** `e2e-lanes down --all` for the state folder: warm lanes and their watchdog go. */
async function down(stateDir: string): Promise<void> {
  const options = { stateDir };
  await tearDownRuns(await stateOf(options, {}), { all: true }, options);
}
