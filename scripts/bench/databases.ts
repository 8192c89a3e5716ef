/**
 * Part 1: time to get N ready (migrated + seeded) databases of the demo schema, the naive way
 * versus the toolkit cold (template built in the measured call) and warm (template cached).
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { execa } from 'execa';
import pg from 'pg';
import { applyMigrations, readMigrations, runSeed } from '../../src/databases/index.ts';
import { DatabaseAllocator } from '../../src/index.ts';
import { SEED_USERS } from '../../prisma/seed-data.ts';
import { childEnv, DEMO, ROOT, type BenchContext } from './context.ts';
import { fmtMs, fmtRatio, range, Samples, table, timed, type PartResult } from './measure.ts';

const PRISMA_BIN = join(ROOT, 'node_modules/.bin/prisma');

export async function runDatabases(ctx: BenchContext): Promise<PartResult> {
  const counts = ctx.options.quick ? [1, 8] : [1, 4, 8, 16];
  const cliCounts = ctx.options.quick ? [] : [8];
  const reps = ctx.reps();
  const samples = new Samples();
  const prismaCli = await probePrismaMigrateDeploy(ctx);

  // Warm-ups, not measured: the seed module's first import (Prisma client) and the warm template.
  await import(pathToFileURL(DEMO.seed).href);
  await naive(ctx, 1, 'warmup');
  const warm = await ctx.warmTemplate();

  for (let rep = 0; rep < reps; rep++) {
    for (const n of counts) {
      await ctx.quiet();
      // Rotate the order every repetition so slow drift of the machine hits every variant alike.
      const variants: Array<[string, () => Promise<number>]> = [
        ['naive', () => naive(ctx, n, `r${rep}`)],
        ['cold', () => toolkit(ctx, n, ctx.fresh('c'), true)],
        ['warm', () => toolkit(ctx, n, warm.prefix, false)],
        ['floor', () => rawClones(ctx, n, warm.name)],
      ];
      for (let i = 0; i < variants.length; i++) {
        const [name, run] = variants[(i + rep) % variants.length]!;
        samples.add(`${name}/${n}`, await run());
      }
      // For scale only, and slow (a process per database): once, in the first repetition.
      if (rep === 0 && cliCounts.includes(n)) samples.add(`cli/${n}`, await naive(ctx, n, `c${rep}`, true));
    }
  }

  const rows = counts.map((n) => {
    const [naiveMs, coldMs, warmMs, floorMs] = ['naive', 'cold', 'warm', 'floor'].map((name) => samples.median(`${name}/${n}`)) as [number, number, number, number];
    return [n, fmtMs(naiveMs), fmtMs(coldMs), fmtMs(warmMs), fmtMs(floorMs), fmtRatio(naiveMs / coldMs), fmtRatio(naiveMs / warmMs), fmtRatio(naiveMs / floorMs)];
  });
  const at8 = (name: string): number => samples.median(`${name}/8`);
  const coldRatio = at8('naive') / at8('cold');
  const warmRatio = at8('naive') / at8('warm');
  const cliRows = cliCounts.map((n) => {
    const cli = samples.median(`cli/${n}`);
    return [n, fmtMs(cli), fmtMs(cli / n), fmtRatio(cli / samples.median(`cold/${n}`)), fmtRatio(cli / samples.median(`warm/${n}`))];
  });

  const markdown = [
    table(['lanes (N)', 'naive', 'toolkit cold', 'toolkit warm', 'N raw clones', 'naive ÷ cold', 'naive ÷ warm', 'naive ÷ raw clones'], rows),
    '',
    `Medians of ${reps} repetition(s); the order of the variants rotates every repetition.`,
    ...(counts.includes(8)
      ? [
          '',
          `**Ceilings at N = 8.** Against this naive baseline, a toolkit that cost nothing but its clones would reach ` +
            `${fmtRatio(at8('naive') / at8('floor'))} warm (naive ÷ 8 raw clones at once) and ${fmtRatio(at8('naive') / (samples.median('naive/1') + at8('floor')))} ` +
            'cold (naive ÷ (one naive database, standing in for the template build, + 8 raw clones)); a target above its ceiling cannot ' +
            'be met on this machine, whatever the toolkit does.',
        ]
      : []),
    '',
    '- **naive**: for each database, one after another: `CREATE DATABASE` (on an already open admin connection), then every',
    '  migration of `prisma/migrations` with the toolkit\'s own runner (`readMigrations` + `applyMigrations`: plain SQL over one',
    '  connection, the same rows `prisma migrate deploy` writes), then the seed in-process (`runSeed(\'prisma/seed.ts\')`, its',
    '  Prisma client already imported). This is the cheapest honest way to build one database without templates.',
    '- **toolkit cold**: a new `DatabaseAllocator` under a fresh prefix, so its template does not exist: `allocateDatabaseForProject`',
    '  for the N lanes at once (as lanes boot in parallel); the time includes joining PostgreSQL, building the template (migrations +',
    '  seed, once) and the N clones.',
    '- **toolkit warm**: the same with the template already built (cached from an earlier run): joining PostgreSQL, finding the',
    '  template, N clones.',
    '- **N raw clones**: N raw `CREATE DATABASE … TEMPLATE <warm template>` at once, each on its own connection opened beforehand:',
    '  the physical floor of any clone-per-lane approach on this server. **naive ÷ raw clones** is therefore the best ratio any',
    '  template-based toolkit could reach against this naive baseline here; a target above it cannot be met on this machine.',
    `- **\`prisma migrate deploy\`**: ${prismaCli}`,
    '',
    'Every database is checked (not timed) to hold the seed before it is dropped.',
    ...(cliRows.length === 0
      ? []
      : [
          '',
          '**For scale, the naive way as teams usually run it**: the same, but the seed run by Prisma\'s CLI, `prisma db seed` (which',
          'spawns the seed command of prisma.config.ts, `node --import tsx prisma/seed.ts`, once per database). Migrations still',
          'use the toolkit\'s runner, since `prisma migrate deploy` cannot run here (see above); the real CLI would add its engine',
          'start-up per database. Measured once (first repetition), for scale; not used for the targets.',
          '',
          table(['lanes (N)', 'naive with `prisma db seed`', 'per database', '÷ toolkit cold', '÷ toolkit warm'], cliRows),
        ]),
  ].join('\n');

  return {
    id: 'databases',
    title: '1. Databases: N ready databases of the demo schema + seed',
    markdown,
    targets: [
      { name: 'warm toolkit vs naive, 8 lanes', goal: '≥ 20×', measured: fmtRatio(warmRatio), pass: warmRatio >= 20 },
      { name: 'cold toolkit vs naive, 8 lanes', goal: '≥ 5×', measured: fmtRatio(coldRatio), pass: coldRatio >= 5 },
    ],
  };
}

/** N databases built one after another; resolves the time taken. With `cli`, the seed runs as `prisma db seed`. */
async function naive(ctx: BenchContext, n: number, tag: string, cli = false): Promise<number> {
  const names = range(n).map((i) => `${ctx.id}n${tag}_${n}_${i}`);
  try {
    const { ms } = await timed(async () => {
      for (const name of names) {
        await ctx.admin.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
        await applyMigrations(ctx.url(name), await readMigrations(DEMO.migrations));
        if (cli) await prismaDbSeed(ctx.url(name));
        else await runSeed(DEMO.seed, ctx.url(name));
      }
    });
    for (const name of names) await assertSeeded(ctx.url(name));
    return ms;
  } finally {
    await ctx.dropDatabasesStartingWith(`${ctx.id}n${tag}_${n}_`);
  }
}

/** N lanes allocated at once by a new allocator; resolves the time taken. */
async function toolkit(ctx: BenchContext, n: number, prefix: string, expectBuilt: boolean): Promise<number> {
  const allocator = new DatabaseAllocator({ ...DEMO, prefix, stateDir: await ctx.dir('databases'), runId: ctx.fresh('r') });
  try {
    const { ms, value } = await timed(() => Promise.all(range(n).map((i) => allocator.allocateDatabaseForProject(`lane-${i}`))));
    const built = value[0]?.template.built;
    if (built !== expectBuilt) throw new Error(`expected the template to be ${expectBuilt ? 'built' : 'cached'}, but it was ${built ? 'built' : 'cached'}`);
    for (const allocation of value) await assertSeeded(allocation.databaseUrl);
    return ms;
  } finally {
    await allocator.releaseRun();
    await allocator.close();
    if (expectBuilt) await ctx.dropDatabasesStartingWith(`${prefix}_`);
  }
}

/**
 * N raw clones of `template` at once, each on a connection of its own opened beforehand: the least
 * any clone-per-lane toolkit could spend on N lanes here. Resolves the time taken.
 */
async function rawClones(ctx: BenchContext, n: number, template: string): Promise<number> {
  const names = range(n).map((i) => `${ctx.id}k${n}_${i}`);
  const clients = names.map(() => new pg.Client({ connectionString: ctx.postgres.adminUrl }));
  try {
    await Promise.all(clients.map((client) => client.connect()));
    const { ms } = await timed(() => Promise.all(names.map((name, i) => clients[i]!.query(ctx.cloneSql(name, template)))));
    for (const name of names) await assertSeeded(ctx.url(name));
    return ms;
  } finally {
    await Promise.all(clients.map((client) => client.end().catch(() => undefined)));
    await ctx.dropDatabasesStartingWith(`${ctx.id}k${n}_`);
  }
}

async function prismaDbSeed(databaseUrl: string): Promise<void> {
  // Any existing file stands in for the schema engine, which `db seed` does not use (see scripts/generate.ts).
  await execa(PRISMA_BIN, ['db', 'seed'], {
    cwd: ROOT,
    env: childEnv({ DATABASE_URL: databaseUrl, PRISMA_SCHEMA_ENGINE_BINARY: process.execPath, PRISMA_HIDE_UPDATE_MESSAGE: '1' }),
    extendEnv: false,
    stdin: 'ignore',
  });
}

async function assertSeeded(databaseUrl: string): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ n: number }>('SELECT count(*)::int AS n FROM "User"');
    if (rows[0]?.n !== SEED_USERS.length) throw new Error(`database ${client.database} holds ${rows[0]?.n} users, expected the ${SEED_USERS.length} of the seed`);
  } finally {
    await client.end();
  }
}

/**
 * Whether `prisma migrate deploy` can run here: it needs Prisma's schema engine binary, which is
 * downloaded on first use. Without one (and offline), it is skipped and the reason returned.
 */
async function probePrismaMigrateDeploy(ctx: BenchContext): Promise<string> {
  const engine = findSchemaEngine();
  if (!engine) {
    return 'skipped: no schema engine binary is installed (none under node_modules/@prisma/engines or node_modules/prisma, ' +
      'PRISMA_SCHEMA_ENGINE_BINARY not set) and this machine cannot download one from binaries.prisma.sh. The naive baseline ' +
      "therefore applies the same migration files with the toolkit's runner, which records the same `_prisma_migrations` rows " +
      'and is faster than the CLI (no engine process to start).';
  }
  const name = `${ctx.id}prisma`;
  await ctx.admin.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
  try {
    const result = await timed(() =>
      execa(PRISMA_BIN, ['migrate', 'deploy'], { cwd: ROOT, env: childEnv({ DATABASE_URL: ctx.url(name), PRISMA_HIDE_UPDATE_MESSAGE: '1' }), extendEnv: false, reject: false, timeout: 30_000, stdin: 'ignore' }),
    );
    if (result.value.failed) return `skipped: the schema engine ${engine} exists but \`prisma migrate deploy\` failed (${result.value.shortMessage ?? 'unknown error'}).`;
    return `ran once for reference: ${fmtMs(result.ms)} for one database with the engine at ${engine} (not part of the table).`;
  } finally {
    await ctx.dropDatabasesStartingWith(name);
  }
}

function findSchemaEngine(): string | undefined {
  const given = process.env.PRISMA_SCHEMA_ENGINE_BINARY;
  if (given && existsSync(given) && given !== process.execPath) return given;
  for (const dir of ['node_modules/@prisma/engines', 'node_modules/prisma']) {
    const found = filesUnder(join(ROOT, dir)).find((file) => /(^|\/)schema-engine[^/]*$/.test(file) && !file.endsWith('.d.ts') && !file.endsWith('.js'));
    if (found) return found;
  }
  return undefined;
}

function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true }).filter((entry) => entry.isFile()).map((entry) => join(entry.parentPath, entry.name));
}
