/**
 * Part 9: a fresh database for every integration test in Vitest (`e2e-lanes/vitest`). Per test, on
 * the demo schema and on a generated 100-table schema, the integration's reset of a worker's
 * database against (a) `CREATE DATABASE … TEMPLATE` + `DROP` per test (the IntegreSQL and pgtestdb
 * way, on the same server), (b) the naive way (TRUNCATE every table, seed again) and (c) migrations
 * and seed on an empty database per test. Interleaved, medians.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { applyMigrations, readMigrations, runSeed } from '../../src/databases/index.ts';
import { DatabaseAllocator } from '../../src/index.ts';
import { DEMO, ROOT, type BenchContext } from './context.ts';
import { fmtMs, fmtRange, fmtRatio, median, percentile, range, Samples, table, timed, type PartResult, type TargetResult } from './measure.ts';
import { ensureBuilt, reapLeftovers, runSuiteProcess } from './playwright-run.ts';
import { appPool, truncateAll, wideSchema, type Schema } from './resets.ts';

const DEFAULT_RESET = 'e2e-lanes/vitest reset (truncate, the default)';
const VARIANTS = [DEFAULT_RESET, 'e2e-lanes/vitest reset (swap)', 'CREATE DATABASE … TEMPLATE + DROP', 'TRUNCATE + seed', 'migrate + seed'] as const;
type Variant = (typeof VARIANTS)[number];

export async function runVitest(ctx: BenchContext): Promise<PartResult> {
  const reps = Math.max(5, 5 * ctx.reps());
  const schemas: Schema[] = [{ name: 'demo', options: { ...DEMO }, reseed: (url) => runSeed(DEMO.seed, url) }, await wideSchema(ctx, ctx.options.quick ? 20 : 100)];
  const rows: string[][] = [];
  const targets: TargetResult[] = [];
  for (const schema of schemas) {
    const samples = await perTest(ctx, schema, reps);
    const p50 = (variant: Variant): number => samples.median(variant);
    const base = p50('CREATE DATABASE … TEMPLATE + DROP');
    for (const variant of VARIANTS) rows.push([schema.name, variant, fmtMs(p50(variant)), fmtMs(percentile(samples.get(variant), 90)), fmtRatio(p50(variant) / base)]);
    const ratio = p50(DEFAULT_RESET) / base;
    targets.push({
      name: `Vitest: a test's fresh database vs CREATE DATABASE … TEMPLATE + DROP, ${schema.name} schema (p50)`,
      goal: '≤ 1/5',
      measured: `${fmtRatio(ratio)} (${fmtMs(p50(DEFAULT_RESET))} vs ${fmtMs(base)})`,
      pass: ratio <= 0.2,
    });
  }
  const suite = await wholeSuite(ctx, ctx.reps());
  const lanesWall = median(suite.runs.lanes.map((run) => run.wallMs));
  const sharedWall = median(suite.runs.shared.map((run) => run.wallMs));
  const allRuns = [...suite.runs.lanes, ...suite.runs['lanes-swap'], ...suite.runs.shared];
  const allPassed = allRuns.every((run) => run.failed === 0 && run.passed === allRuns[0]!.passed && run.passed > 0);
  targets.push({
    name: 'Vitest example suite with e2e-lanes/vitest vs one shared database and --no-file-parallelism, every test passing',
    goal: '≥ 1.5× and all pass',
    measured: `${fmtRatio(sharedWall / lanesWall)} (${fmtMs(sharedWall)} vs ${fmtMs(lanesWall)}), ${allPassed ? `all ${allRuns[0]!.passed} tests passed in every run` : 'NOT all tests passed'}`,
    pass: sharedWall / lanesWall >= 1.5 && allPassed,
  });
  const markdown = [
    table(['schema', "one test's fresh database", 'p50', 'p90', '÷ CREATE … TEMPLATE + DROP'], rows),
    '',
    `- ${reps} rounds per schema, the five ways interleaved (the order rotates every round); before each, a \`pg.Pool\` of the "test file" holds two idle sessions on the worker's database, as import-time clients do.`,
    "- e2e-lanes/vitest reset (truncate, the default): a worker's database refilled in place from the template's rows, on the connection the worker's database keeps for its resets. A swap ends that connection, so each measured truncate follows one unmeasured truncate that opens it again, as in a run where every reset truncates.",
    "- e2e-lanes/vitest reset (swap): a ready copy renamed in (the pool refilled in the background before the next measurement, off the measured path; in a real run that clone runs on the tests' cores).",
    '- CREATE DATABASE … TEMPLATE + DROP: a new database cloned from the same migrated, seeded template before the test and dropped after it.',
    '- TRUNCATE + seed: every table of the app emptied in one statement, then the seed run again (a module, as the user\'s seed runs).',
    '- migrate + seed: an empty database, every migration applied by the toolkit\'s runner, the seed, and a DROP after the test.',
    '',
    'The whole suite of examples/vitest-prisma (three files, twelve tests that each assert exactly the seed and their own rows), with each strategy:',
    '',
    table(
      ['way', 'tests passed / failed (each run)', 'wall (median)', 'min–max', 'shared ÷ way'],
      (['shared', 'lanes', 'lanes-swap'] as const).map((way) => [
        SUITE_LABELS[way],
        suite.runs[way].map((run) => `${run.passed} / ${run.failed}`).join(', '),
        fmtMs(median(suite.runs[way].map((run) => run.wallMs))),
        fmtRange(suite.runs[way].map((run) => run.wallMs)),
        fmtRatio(sharedWall / median(suite.runs[way].map((run) => run.wallMs))),
      ]),
    ),
    '',
    `- ${suite.runs.lanes.length} run(s) of each after one unmeasured run of each (the template is cached by then, as on a developer's machine), the order rotating every round; all on the bench's PostgreSQL server; wall time of \`vitest run\` from start to exit.`,
  ].join('\n');
  return { id: 'vitest', title: '9. Integration tests in Vitest: a fresh database per test', markdown, targets };
}

async function perTest(ctx: BenchContext, schema: Schema, reps: number): Promise<Samples> {
  const allocator = new DatabaseAllocator({ ...schema.options, prefix: ctx.fresh('v'), stateDir: await ctx.dir(`vitest-${schema.name}`), runId: ctx.fresh('r'), pool: 2 });
  const samples = new Samples();
  const migrations = await readMigrations(schema.options.migrations);
  const scratch = `${ctx.id}vt_${schema.name.replace(/\W/g, '')}`;
  const id = pg.escapeIdentifier(scratch);
  try {
    const template = await allocator.prepare();
    const lane = await allocator.allocateDatabaseForProject('vitest', { worker: 0 });
    const { app, appConnected } = appPool(lane.databaseUrl);
    const run: Record<Variant, () => Promise<number>> = {
      [DEFAULT_RESET]: async () => {
        await allocator.resetDatabaseForProject('vitest', { worker: 0, strategy: 'truncate' });
        return (await timed(() => allocator.resetDatabaseForProject('vitest', { worker: 0, strategy: 'truncate' }))).ms;
      },
      'e2e-lanes/vitest reset (swap)': async () => (await timed(() => allocator.resetDatabaseForProject('vitest', { worker: 0, strategy: 'swap' }))).ms,
      'CREATE DATABASE … TEMPLATE + DROP': async () =>
        (
          await timed(async () => {
            await ctx.admin.query(ctx.cloneSql(scratch, template.name, allocator.options.cloneStrategy));
            await ctx.admin.query(`DROP DATABASE ${id}`);
          })
        ).ms,
      'TRUNCATE + seed': async () =>
        (
          await timed(async () => {
            await truncateAll(lane.databaseUrl);
            await schema.reseed(lane.databaseUrl);
          })
        ).ms,
      'migrate + seed': async () =>
        (
          await timed(async () => {
            await ctx.admin.query(`CREATE DATABASE ${id}`);
            await applyMigrations(ctx.url(scratch), migrations);
            await schema.reseed(ctx.url(scratch));
            await ctx.admin.query(`DROP DATABASE ${id} WITH (FORCE)`);
          })
        ).ms,
    };
    for (const variant of VARIANTS) await run[variant](); // warm-up
    await allocator.poolSettled();
    await ctx.quiet();
    for (const round of range(reps)) {
      for (let v = 0; v < VARIANTS.length; v++) {
        const variant = VARIANTS[(v + round) % VARIANTS.length]!;
                await appConnected();
        await allocator.poolSettled();
        samples.add(variant, await run[variant]());
      }
    }
    await app.end();
  } finally {
    await ctx.admin.query(`DROP DATABASE IF EXISTS ${id} WITH (FORCE)`).catch(() => undefined);
    await allocator.releaseRun().catch(() => undefined);
    await allocator.close();
  }
  return samples;
}

type Way = 'lanes' | 'lanes-swap' | 'shared';

const SUITE_LABELS: Record<Way, string> = {
  lanes: "e2e-lanes/vitest: the example's own vitest.config.ts (a database per worker, 3 workers, `reset: 'test'`, `truncate`)",
  'lanes-swap': "the same with `database.reset: 'swap'` (EXAMPLE_STRATEGY=swap)",
  shared: 'one shared database, `fileParallelism: false`, TRUNCATE + seed before each test (scripts/bench/vitest-shared.config.ts)',
};

const VITEST = join(ROOT, 'node_modules', 'vitest', 'vitest.mjs');

interface VitestRun {
  wallMs: number;
  passed: number;
  failed: number;
}

/** The example suite run each way, interleaved, after one unmeasured run of each. */
async function wholeSuite(ctx: BenchContext, reps: number): Promise<{ runs: Record<Way, VitestRun[]> }> {
  await ensureBuilt();
  const runs: Record<Way, VitestRun[]> = { lanes: [], 'lanes-swap': [], shared: [] };
  const stateDir = join(await ctx.dir('vitest-suite'), 'state');
  ctx.defer(() => reapLeftovers(stateDir));
  for (let rep = -1; rep < reps; rep++) {
    const order: Way[] = ['lanes', 'shared', 'lanes-swap'];
    // The order rotates every round.
    const ways = order.map((_, i) => order[(i + rep + 1) % order.length]!);
    for (const way of ways) {
      await ctx.quiet();
      const run = await vitestRun(ctx, way, stateDir);
      console.log(`  vitest ${way} run ${rep < 0 ? 'warm-up' : `${rep + 1}/${reps}`}: ${fmtMs(run.wallMs)}, ${run.passed} passed, ${run.failed} failed`);
      if (rep >= 0) runs[way].push(run);
    }
  }
  return { runs };
}

async function vitestRun(ctx: BenchContext, way: Way, stateDir: string): Promise<VitestRun> {
  const dir = await ctx.dir(`vitest-${way}`);
  const report = join(dir, 'report.json');
  const config = way === 'shared' ? 'scripts/bench/vitest-shared.config.ts' : 'examples/vitest-prisma/vitest.config.ts';
  const env: Record<string, string> =
    way === 'shared' ? { BENCH_SHARED_ADMIN_URL: ctx.url('postgres') } : { E2E_LANES_DATABASE_URL: ctx.url('postgres'), E2E_LANES_STATE_DIR: stateDir, ...(way === 'lanes-swap' ? { EXAMPLE_STRATEGY: 'swap' } : {}) };
  const started = performance.now();
  const result = await runSuiteProcess([VITEST, 'run', '--config', config, '--reporter=json', `--outputFile=${report}`], env);
  const wallMs = performance.now() - started;
  const stats = await readFile(report, 'utf8')
    .then((text) => JSON.parse(text) as { numPassedTests?: number; numFailedTests?: number })
    .catch(() => ({}) as { numPassedTests?: number; numFailedTests?: number });
  const run: VitestRun = { wallMs, passed: stats.numPassedTests ?? 0, failed: stats.numFailedTests ?? 0 };
  if (result.failed || run.failed > 0 || run.passed === 0) {
    console.error(`  vitest ${way} ended with ${result.shortMessage ?? `exit code ${result.exitCode}`}; last lines:\n${String(result.all ?? '').split('\n').slice(-40).join('\n')}`);
  }
  return run;
}
