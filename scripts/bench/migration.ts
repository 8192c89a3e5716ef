/**
 * Part 7: the suite of examples/vite-prisma (a Vite + Prisma 7 app, 4 specs in 2 projects) the way
 * docs/migrating.md starts from, against the same suite with lanes. The old way
 * (migration-old.config.ts): ONE backend and ONE Vite server (`webServer`), ONE database,
 * `workers: 1`, and before every test the database dropped, created, migrated and seeded again (what
 * `prisma migrate reset` does). Lanes: the example's own playwright.config.ts (a lane per project,
 * side by side, `laneReset: 'test'`). Wall and CPU time of each `playwright test`, interleaved, and the
 * old way's reset per test.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PortAllocator } from '../../src/index.ts';
import type { BenchContext } from './context.ts';
import { fmtMs, fmtRange, fmtRatio, median, percentile, table, timed, type PartResult } from './measure.ts';
import { migrateReset, oldWayEnv, type OldWaySettings } from './migration-old.ts';
import { allRunsPassed, ensureBuilt, reapLeftovers, runPlaywright, stopCurrentRun, type SuiteRun } from './playwright-run.ts';

const LANES_PORT_RANGE = '44000-44499';
const OLD_PORT_RANGE: [number, number] = [44500, 44999];
const LANES_CONFIG = 'examples/vite-prisma/playwright.config.ts';
const TARGET = 1.5;

type Mode = 'old' | 'lanes';

const LABELS: Record<Mode, string> = {
  old: 'old way: one server pair, one database, `workers: 1`, drop + migrate + seed before each test',
  lanes: `lanes: ${LANES_CONFIG} (a lane per project, \`laneReset: 'test'\`)`,
};

export async function runMigration(ctx: BenchContext): Promise<PartResult> {
  const reps = ctx.reps();
  const stateDirs: string[] = [];
  ctx.defer(async () => {
    await stopCurrentRun();
    for (const stateDir of stateDirs) await reapLeftovers(stateDir);
  });
  await ensureBuilt();

  const runs: Record<Mode, SuiteRun[]> = { old: [], lanes: [] };
  const resets: number[] = [];
  for (let rep = 0; rep < reps; rep++) {
    const modes: Mode[] = rep % 2 === 0 ? ['lanes', 'old'] : ['old', 'lanes'];
    for (const mode of modes) {
      const busy = await ctx.quiet();
      const run = mode === 'old' ? await oldRun(ctx, resets) : await lanesRun(ctx, stateDirs);
      if (busy !== undefined) run.busyBefore = busy;
      const cpu = run.cpuMs === undefined ? '' : ` (CPU ${fmtMs(run.cpuMs)})`;
      console.log(`  migration ${mode} run ${rep + 1}/${reps}: ${fmtMs(run.wallMs)}${cpu}, ${run.passed} passed, ${run.failed} failed, ${run.flaky} flaky${busy === undefined ? '' : `, CPU ${(busy * 100).toFixed(0)} % busy before`}`);
      runs[mode].push(run);
    }
  }
  const walls = (mode: Mode): number[] => runs[mode].map((run) => run.wallMs);
  const cpu = (mode: Mode): number => median(runs[mode].flatMap((run) => (run.cpuMs === undefined ? [] : [run.cpuMs])));
  const oldWall = median(walls('old'));
  const ratio = oldWall / median(walls('lanes'));
  const { expected, allPassed } = allRunsPassed([...runs.lanes, ...runs.old]);
  const modes: Mode[] = ['old', 'lanes'];
  const rows = modes.map((mode) => [
    LABELS[mode],
    runs[mode].map((run) => run.workers ?? '?').join(', '),
    runs[mode].map((run) => `${run.passed} / ${run.failed} / ${run.flaky}`).join(', '),
    fmtMs(median(walls(mode))),
    fmtRange(walls(mode)),
    Number.isFinite(cpu(mode)) ? fmtMs(cpu(mode)) : '?',
    fmtRatio(oldWall / median(walls(mode))),
  ]);
  const boots = runs.lanes.flatMap((run) => run.lanes.map((lane) => lane.bootMs));
  const markdown = [
    table(['mode', 'workers', 'tests passed / failed / flaky (each run)', 'wall (median)', 'min–max', 'CPU (median)', 'old ÷ mode'], rows),
    '',
    `The old way's reset before each test (drop, create, migrate, seed): median ${fmtMs(median(resets))}, p90 ${fmtMs(percentile(resets, 90))}, ` +
      `over ${resets.length} resets; the lanes put a lane's database back in milliseconds (a ready copy renamed in, part 6). ` +
      `A lane's boot (ports, database, backend and Vite dev server up): median ${fmtMs(median(boots))} (${fmtRange(boots)}); ` +
      `template ${runs.lanes.map((run) => run.template ?? '?').join(' / ')}.`,
    '',
    `${reps} run(s) of each, alternating. What was compared:`,
    '',
    '- Both run the same specs (examples/vite-prisma/e2e/tasks.spec.ts: 4 tests, each in the projects `desktop` and `mobile`) against',
    '  the same app: a Node backend on Prisma 7 (`@prisma/adapter-pg`) and a Vite dev server proxying `/api` to it. The specs insert',
    '  rows with the app\'s Prisma client and assert exactly "the seed plus my own rows", so both ways must start every test from the seed.',
    '- **old way** (scripts/bench/migration-old.config.ts): what the app did before lanes (docs/migrating.md, "Before"): Playwright\'s',
    '  `webServer` starts ONE backend and ONE Vite server, against ONE database, `workers: 1`; before every test the database is',
    '  dropped (`WITH (FORCE)`: the servers\' clients reconnect), created, migrated (prisma/migrations, by the toolkit\'s runner) and',
    '  seeded by the seed command of the example\'s prisma.config.ts (a process of its own, as Prisma runs it). That is what',
    '  `prisma migrate reset --force` does, less the start of the Prisma CLI and its schema engine (which cannot run here), so the',
    '  real old way is slower than measured. The wall time includes creating and migrating the database before Playwright starts.',
    '- **lanes**: `playwright test` with the example\'s own config (docs/migrating.md, "After"): the two projects side by side, each in',
    '  its own lane (backend, Vite, database cloned from the cached template), `laneReset: \'test\'`.',
  ].join('\n');

  return {
    id: 'migration',
    title: '7. Migrating a suite: the Vite + Prisma example with lanes vs the old way (webServer, workers: 1, migrate reset per test)',
    markdown,
    targets: [
      {
        name: 'example suite with lanes + `laneReset: \'test\'` vs the old way, every test passing',
        goal: `≥ ${TARGET}× and all pass`,
        measured: `${fmtRatio(ratio)} (${fmtMs(oldWall)} vs ${fmtMs(median(walls('lanes')))}), ${allPassed ? `all ${expected} tests passed in every run` : 'NOT all tests passed'}`,
        pass: ratio >= TARGET && allPassed,
      },
    ],
  };
}

async function lanesRun(ctx: BenchContext, stateDirs: string[]): Promise<SuiteRun> {
  const dir = await ctx.dir('migration-lanes');
  const stateDir = join(dir, 'state');
  stateDirs.push(stateDir);
  try {
    return await runPlaywright(dir, ['--config', LANES_CONFIG], { E2E_LANES_STATE_DIR: stateDir, E2E_LANES_PORT_RANGE: LANES_PORT_RANGE });
  } finally {
    await reapLeftovers(stateDir);
  }
}

async function oldRun(ctx: BenchContext, resets: number[]): Promise<SuiteRun> {
  const dir = await ctx.dir('migration-old');
  const ports = new PortAllocator({ stateDir: join(dir, 'state'), runId: ctx.fresh('m'), range: OLD_PORT_RANGE });
  const database = ctx.fresh('m');
  try {
    const { backend, frontend } = (await ports.allocatePortsForProject('old')).ports as { backend: number; frontend: number };
    const settings: OldWaySettings = { adminUrl: ctx.postgres.adminUrl, database, backendPort: backend, frontendPort: frontend, resetLog: join(dir, 'resets.log') };
    // The database the developer's .env names exists before `playwright test` starts its webServer.
    const prep = await timed(() => migrateReset(settings));
    const run = await runPlaywright(dir, ['--config', 'scripts/bench/migration-old.config.ts'], oldWayEnv(settings));
    const logged = (await readFile(settings.resetLog, 'utf8').catch(() => '')).split('\n').filter(Boolean).map(Number);
    resets.push(...logged.slice(1)); // the first line is the preparation above
    return { ...run, wallMs: run.wallMs + prep.ms };
  } finally {
    await ports.releaseRun();
    await ctx.dropDatabasesStartingWith(database);
  }
}

