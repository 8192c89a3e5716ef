/**
 * Part 9: a fresh database for every integration test in Vitest (`e2e-lanes/vitest`). Per test, on
 * the demo schema and on a generated 100-table schema, the integration's reset of a worker's
 * database against (a) `CREATE DATABASE … TEMPLATE` + `DROP` per test (the IntegreSQL and pgtestdb
 * way, on the same server), (b) the naive way (TRUNCATE every table, seed again) and (c) migrations
 * and seed on an empty database per test. Interleaved, medians.
 */
import pg from 'pg';
import { applyMigrations, readMigrations, runSeed } from '../../src/databases/index.ts';
import { DatabaseAllocator } from '../../src/index.ts';
import { DEMO, type BenchContext } from './context.ts';
import { fmtMs, fmtRatio, percentile, range, Samples, table, timed, type PartResult, type TargetResult } from './measure.ts';
import { appPool, truncateAll, wideSchema, type Schema } from './resets.ts';

const VARIANTS = ['e2e-lanes/vitest reset', 'CREATE DATABASE … TEMPLATE + DROP', 'TRUNCATE + seed', 'migrate + seed'] as const;
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
    const ratio = p50('e2e-lanes/vitest reset') / base;
    targets.push({
      name: `Vitest: a test's fresh database vs CREATE DATABASE … TEMPLATE + DROP, ${schema.name} schema (p50)`,
      goal: '≤ 1/5',
      measured: `${fmtRatio(ratio)} (${fmtMs(p50('e2e-lanes/vitest reset'))} vs ${fmtMs(base)})`,
      pass: ratio <= 0.2,
    });
  }
  const markdown = [
    table(['schema', "one test's fresh database", 'p50', 'p90', '÷ CREATE … TEMPLATE + DROP'], rows),
    '',
    `- ${reps} rounds per schema, the four ways interleaved (the order rotates every round); before each, a \`pg.Pool\` of the "test file" holds two idle sessions on the worker's database, as import-time clients do.`,
    '- e2e-lanes/vitest reset: a worker\'s database put back to the seed with the default `swap` (a ready copy renamed in; the pool refilled in the background, off the tests\' path).',
    '- CREATE DATABASE … TEMPLATE + DROP: a new database cloned from the same migrated, seeded template before the test and dropped after it.',
    '- TRUNCATE + seed: every table of the app emptied in one statement, then the seed run again (a module, as the user\'s seed runs).',
    '- migrate + seed: an empty database, every migration applied by the toolkit\'s runner, the seed, and a DROP after the test.',
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
      'e2e-lanes/vitest reset': async () => (await timed(() => allocator.resetDatabaseForProject('vitest', { worker: 0, strategy: 'swap' }))).ms,
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
