/**
 * Part 6: fresh data for every test. A lane's database put back to its template while its servers
 * keep running — `swap` (a ready copy renamed in) and `truncate` (tables refilled in one
 * transaction) — against drop + `CREATE DATABASE … TEMPLATE` per test (the IntegreSQL / pgtestdb
 * way, with the toolkit's own clone) and the naive way (TRUNCATE every table, run the seed again),
 * on the demo schema and on a generated 100-table schema. Also: a lane database from the ready pool
 * (a rename) against a clone.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { runSeed } from '../../src/databases/index.ts';
import { endSessions } from '../../src/databases/fresh/lane-sessions.ts';
import { DEFAULT_RESET_GRACE_MS } from '../../src/databases/options.ts';
import { DatabaseAllocator } from '../../src/index.ts';
import { wideSchemaSql } from '../../test/fixtures/wide-schema.ts';
import { DEMO, type BenchContext } from './context.ts';
import { measureLaneRoles } from './lane-roles.ts';
import { fmtMs, fmtRatio, median, percentile, range, Samples, table, timed, type PartResult, type TargetResult } from './measure.ts';

const VARIANTS = ['swap', 'truncate', 'drop + clone', 'naive'] as const;
type Variant = (typeof VARIANTS)[number];

export interface Schema {
  name: string;
  options: { migrations: string; seed: string; hashInputs?: readonly string[] };
  /** Runs the seed again on a connected lane (the naive way's second half). */
  reseed(databaseUrl: string): Promise<void>;
}

export async function runResets(ctx: BenchContext): Promise<PartResult> {
  const reps = Math.max(5, 5 * ctx.reps());
  const schemas: Schema[] = [
    { name: 'demo', options: { ...DEMO }, reseed: (url) => runSeed(DEMO.seed, url) },
    await wideSchema(ctx, ctx.options.quick ? 20 : 100),
  ];
  const rows: string[][] = [];
  const targets: TargetResult[] = [];
  const notes: string[] = [];
  for (const schema of schemas) {
    const samples = await measureSchema(ctx, schema, reps);
    const p50 = (variant: Variant): number => samples.median(variant);
    const p90 = (variant: Variant): number => percentile(samples.get(variant), 90);
    for (const variant of VARIANTS) rows.push([schema.name, variant, fmtMs(p50(variant)), fmtMs(p90(variant)), fmtRatio(p50(variant) / p50('drop + clone'))]);
    const first = samples.get('truncate, first on a new connection');
    rows.push([schema.name, 'truncate, first on a new connection', fmtMs(median(first)), fmtMs(percentile(first, 90)), fmtRatio(median(first) / p50('drop + clone'))]);
    if (schema.name === 'demo') {
      targets.push({ name: '`swap` reset p50, demo schema', goal: '≤ 10 ms', measured: fmtMs(p50('swap')), pass: p50('swap') <= 10 });
    }
    const swapRatio = p50('swap') / p50('drop + clone');
    targets.push({ name: `\`swap\` reset vs drop + clone, ${schema.name} schema`, goal: '≤ 1/4', measured: `${fmtRatio(swapRatio)} (${fmtMs(p50('swap'))} vs ${fmtMs(p50('drop + clone'))})`, pass: swapRatio <= 0.25 });
    const truncateRatio = p50('truncate') / p50('naive');
    targets.push({ name: `\`truncate\` reset vs the naive way, ${schema.name} schema`, goal: '≤ 1/3', measured: `${fmtRatio(truncateRatio)} (${fmtMs(p50('truncate'))} vs ${fmtMs(p50('naive'))})`, pass: truncateRatio <= 1 / 3 });
    notes.push(`${schema.name}: ${samples.get('swap').length} resets of each kind, interleaved (the order rotates every round), each after the same writes.`);
  }
  const pool = await measurePool(ctx, reps);
  const grace = await measureGrace(ctx, 4 * reps);
  const graceAdded = grace.median('grace') - grace.median('none');
  targets.push({
    name: 'what the grace for queries in flight adds to ending a lane\'s sessions, nothing in flight (p50)',
    goal: '≤ 1 ms',
    measured: `${graceAdded >= 0 ? '+' : '−'}${fmtMs(Math.abs(graceAdded))} (${fmtMs(grace.median('grace'))} vs ${fmtMs(grace.median('none'))})`,
    pass: graceAdded <= 1,
  });
  targets.push({ name: 'lane database from the ready pool (rename), p50', goal: '≤ 5 ms', measured: `${fmtMs(pool.median('rename'))} (a clone: ${fmtMs(pool.median('clone'))})`, pass: pool.median('rename') <= 5 });
  const roles = await measureLaneRoles(ctx, reps);
  targets.push(...roles.targets);

  const markdown = [
    table(['schema', 'reset', 'p50', 'p90', '÷ drop + clone'], rows),
    '',
    ...notes,
    '- `swap`: `DatabaseAllocator.resetDatabaseForProject` with the ready pool (sessions ended, the lane dropped, a ready copy renamed in; the pool refilled in the background between resets).',
    '- `truncate`: the same call with `strategy: \'truncate\'` (one transaction on the connection the lane keeps: every table emptied — LOCK + DELETE in replica mode — and refilled from the template\'s snapshot, sequences set back). A lane that always truncates keeps its connection; the other variants end it, so each measured truncate follows one unmeasured truncate that opens it again, shown as "first on a new connection".',
    '- drop + clone: the sessions ended as a swap ends them, `DROP DATABASE`, then `CREATE DATABASE … TEMPLATE` (the allocator\'s strategy) on an open connection.',
    '- Before every reset, the lane\'s "servers" (a `pg.Pool` of 2) hold two idle sessions on the lane database, as running servers do; a swap ends them and the pool reconnects.',
    '- naive: TRUNCATE every table of the app (one statement) and run the seed again: the demo\'s `prisma/seed.ts` (Prisma 7 client), or the 100-table schema\'s seed SQL.',
    '',
    table(
      ['lane database', 'p50', 'p90'],
      [
        ['from the ready pool (`ALTER DATABASE … RENAME`)', fmtMs(pool.median('rename')), fmtMs(percentile(pool.get('rename'), 90))],
        ['a clone (`CREATE DATABASE … TEMPLATE`)', fmtMs(pool.median('clone')), fmtMs(percentile(pool.get('clone'), 90))],
      ],
    ),
    '',
    table(
      ['ending the sessions on a lane database (two idle ones), nothing in flight', 'p50', 'p90'],
      [
        [`with the grace for queries in flight (\`resetGraceMs\` ${DEFAULT_RESET_GRACE_MS})`, fmtMs(grace.median('grace')), fmtMs(percentile(grace.get('grace'), 90))],
        ['every session ended at once (`resetGraceMs: 0`, as before the grace)', fmtMs(grace.median('none')), fmtMs(percentile(grace.get('none'), 90))],
      ],
    ),
    '',
    `${grace.get('grace').length} of each, interleaved; each closes the database to new connections, ends the sessions and waits until they are gone, then the database is opened again and the "servers" reconnect (not measured).`,
    '',
    'A role per lane (`database.laneRoles`, on by default: see [the security model](security.md)), against the feature off:',
    '',
    roles.markdown,
  ].join('\n');
  return { id: 'resets', title: '6. Fresh data for every test: resets under running servers', markdown, targets };
}

/** The four variants on one schema, interleaved. */
async function measureSchema(ctx: BenchContext, schema: Schema, reps: number): Promise<Samples> {
  const prefix = ctx.fresh('z');
  const allocator = new DatabaseAllocator({ ...schema.options, prefix, stateDir: await ctx.dir(`resets-${schema.name}`), runId: ctx.fresh('r'), pool: 2 });
  const samples = new Samples();
  try {
    const template = await allocator.prepare();
    const lane = await allocator.allocateDatabaseForProject('fresh');
    // The lane's servers: a pool that keeps idle sessions on the lane database and reconnects after a swap.
    const { app, appConnected } = appPool(lane.databaseUrl);
    const write = async (): Promise<void> => {
      const client = new pg.Client({ connectionString: lane.databaseUrl });
      await client.connect();
      try {
        const [first] = (await client.query<{ schemaname: string; tablename: string }>(`SELECT schemaname, tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> '_prisma_migrations' ORDER BY tablename LIMIT 1`)).rows;
        if (first) await client.query(`DELETE FROM ${pg.escapeIdentifier(first.schemaname)}.${pg.escapeIdentifier(first.tablename)} WHERE ctid IN (SELECT ctid FROM ${pg.escapeIdentifier(first.schemaname)}.${pg.escapeIdentifier(first.tablename)} LIMIT 1)`).catch(() => undefined);
      } finally {
        await client.end();
      }
    };
    const run: Record<Variant, () => Promise<number>> = {
      swap: async () => (await timed(() => allocator.resetDatabaseForProject('fresh', { strategy: 'swap' }))).ms,
      truncate: async () => (await timed(() => allocator.resetDatabaseForProject('fresh', { strategy: 'truncate' }))).ms,
      'drop + clone': async () =>
        (
          await timed(async () => {
            // The same quick end of the sessions as a swap: the difference is the clone.
            await endSessions(ctx.admin, lane.databaseName);
            await ctx.admin.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(lane.databaseName)} WITH (FORCE)`);
            await ctx.admin.query(ctx.cloneSql(lane.databaseName, template.name, allocator.options.cloneStrategy));
          })
        ).ms,
      naive: async () =>
        (
          await timed(async () => {
            await truncateAll(lane.databaseUrl);
            await schema.reseed(lane.databaseUrl);
          })
        ).ms,
    };
    for (const variant of VARIANTS) await run[variant](); // warm-up: first of each (connections, caches)
    await allocator.poolSettled();
    await ctx.quiet();
    for (const round of range(reps)) {
      for (let v = 0; v < VARIANTS.length; v++) {
        const variant = VARIANTS[(v + round) % VARIANTS.length]!;
        // A lane that resets by truncate keeps its connection between resets: the other variants end
        // it here, so one unmeasured truncate opens it again (its cost is the row below).
        if (variant === 'truncate') samples.add('truncate, first on a new connection', await run.truncate());
        await write();
        await appConnected();
        await allocator.poolSettled(); // the refill is off the tests' path: not measured in the next reset
        samples.add(variant, await run[variant]());
      }
    }
    await app.end();
  } finally {
    await allocator.releaseRun().catch(() => undefined);
    await allocator.close();
  }
  return samples;
}

/** A ready copy renamed to a lane's name against a clone of the template, interleaved. */
async function measurePool(ctx: BenchContext, reps: number): Promise<Samples> {
  const warm = await ctx.warmTemplate();
  const samples = new Samples();
  for (const round of range(reps)) {
    const copy = `${ctx.id}pc${round}`;
    await ctx.admin.query(ctx.cloneSql(copy, warm.name));
    const order = round % 2 === 0 ? (['rename', 'clone'] as const) : (['clone', 'rename'] as const);
    for (const kind of order) {
      const name = `${ctx.id}pl${kind[0]}${round}`;
      const sql = kind === 'rename' ? `ALTER DATABASE ${pg.escapeIdentifier(copy)} RENAME TO ${pg.escapeIdentifier(name)}` : ctx.cloneSql(name, warm.name);
      samples.add(kind, (await timed(() => ctx.admin.query(sql))).ms);
      await ctx.admin.query(`DROP DATABASE ${pg.escapeIdentifier(name)}`);
    }
  }
  return samples;
}

/**
 * Ending the sessions on a lane database with two idle sessions of its "servers" and nothing in
 * flight: with the default grace against none (every session ended at once), interleaved.
 */
async function measureGrace(ctx: BenchContext, reps: number): Promise<Samples> {
  const warm = await ctx.warmTemplate();
  const name = `${ctx.id}grace`;
  const id = pg.escapeIdentifier(name);
  await ctx.admin.query(ctx.cloneSql(name, warm.name));
  const app = new pg.Pool({ connectionString: ctx.url(name), max: 2 });
  app.on('error', () => undefined);
  const samples = new Samples();
  try {
    await ctx.quiet();
    for (const round of range(reps)) {
      const order = round % 2 === 0 ? (['grace', 'none'] as const) : (['none', 'grace'] as const);
      for (const kind of order) {
        await ctx.admin.query(`ALTER DATABASE ${id} WITH ALLOW_CONNECTIONS true`);
        await Promise.all([app.query('SELECT 1'), app.query('SELECT 1')]).catch(() => Promise.all([app.query('SELECT 1'), app.query('SELECT 1')]));
        const graceMs = kind === 'grace' ? DEFAULT_RESET_GRACE_MS : 0;
        samples.add(kind, (await timed(() => endSessions(ctx.admin, name, { graceMs }))).ms);
      }
    }
  } finally {
    await app.end().catch(() => undefined);
    await ctx.admin.query(`DROP DATABASE IF EXISTS ${id} WITH (FORCE)`);
  }
  return samples;
}

/**
 * The "servers" of a lane: a `pg.Pool` of two that keeps idle sessions on `databaseUrl` and
 * reconnects after a swap; `appConnected()` resolves once both sessions are open again (bounded).
 */
export function appPool(databaseUrl: string): { app: pg.Pool; appConnected(): Promise<void> } {
  const app = new pg.Pool({ connectionString: databaseUrl, max: 2 });
  app.on('error', () => undefined);
  const appConnected = async (): Promise<void> => {
    for (let attempt = 0; attempt < 20; attempt++) {
      try {
        await Promise.all([app.query('SELECT 1'), app.query('SELECT 1')]);
        return;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    }
  };
  return { app, appConnected };
}

/** The naive way's first half: one TRUNCATE of every table of the app's schema (`_prisma_migrations` kept). */
export async function truncateAll(databaseUrl: string): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ name: string }>(
      `SELECT format('%I.%I', schemaname, tablename) AS name FROM pg_tables WHERE schemaname = 'public' AND tablename <> '_prisma_migrations'`,
    );
    if (rows.length > 0) await client.query(`TRUNCATE ${rows.map((row) => row.name).join(', ')} RESTART IDENTITY CASCADE`);
  } finally {
    await client.end();
  }
}

/** A generated schema of `tables` tables with foreign keys and seed rows, as a migrations folder and a seed module. */
export async function wideSchema(ctx: BenchContext, tables: number): Promise<Schema> {
  const dir = await ctx.dir('wide');
  const { migration, seed } = wideSchemaSql(tables, 5);
  await mkdir(join(dir, 'migrations', '20250101000000_wide'), { recursive: true });
  await writeFile(join(dir, 'migrations', '20250101000000_wide', 'migration.sql'), migration);
  await writeFile(join(dir, 'seed.sql'), seed);
  const seedModule = join(dir, 'seed.mjs');
  await writeFile(
    seedModule,
    `import { readFileSync } from 'node:fs';\nimport pg from ${JSON.stringify(import.meta.resolve('pg'))};\nconst sql = readFileSync(new URL('./seed.sql', import.meta.url), 'utf8');\n` +
      `export default async function seed({ databaseUrl }) { const client = new pg.Client({ connectionString: databaseUrl }); await client.connect(); try { await client.query(sql); } finally { await client.end(); } }\n`,
  );
  const runSql = async (url: string): Promise<void> => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      await client.query(seed);
    } finally {
      await client.end();
    }
  };
  return { name: `${tables}-table`, options: { migrations: join(dir, 'migrations'), seed: seedModule }, reseed: runSql };
}
