/**
 * How far one PostgreSQL server carries: lane databases created per second with 2, 8 and 32
 * concurrent creators, measured three ways in one run:
 *   clone  raw `CREATE DATABASE … TEMPLATE` over N connections: the server's floor;
 *   lane   N DatabaseAllocators (each its own state folder and run id, like N CI machines) with
 *          the registry in the server: lane lock, registry row, clone, ledger, lease;
 *   naive  N creators that each create an empty database, migrate and seed it (no template).
 * Prints a Markdown table (pasted into docs/scaling.md) with the ratio lane/naive.
 *
 * Usage: node --import tsx scripts/bench/lanes-per-second.ts [--creators 2,8,32] [--lanes 64] [--naive-lanes 1]
 *   [--strategy wal_log|file_copy] [--reps 1]
 * With --reps N every level is measured N times; rates are medians, latencies pooled.
 * Server: E2E_LANES_DATABASE_URL when set, else the embedded server. Everything it creates is
 * named `lps<hex>_…` and dropped at the end, registry rows included.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { DatabaseAllocator, REGISTRY_TABLE, runMigrations, runSeed, type CloneStrategy } from '../../src/databases/index.js';
import { describeTarget, ensurePostgres, withDatabase } from '../../src/postgres/index.js';

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const DEMO = { migrations: join(ROOT, 'prisma/migrations'), seed: join(ROOT, 'prisma/seed.ts'), hashInputs: [join(ROOT, 'prisma/seed-data.ts')] };

const { values: args } = parseArgs({
  options: {
    creators: { type: 'string', default: '2,8,32' },
    lanes: { type: 'string', default: '64' },
    'naive-lanes': { type: 'string', default: '1' },
    strategy: { type: 'string', default: 'wal_log' },
    reps: { type: 'string', default: '1' },
  },
});
const levels = args.creators.split(',').map(Number);
const lanesPerLevel = Number(args.lanes);
const naivePerCreator = Number(args['naive-lanes']);
const strategy = args.strategy as CloneStrategy;
const reps = Number(args.reps);
if (levels.some((n) => !Number.isInteger(n) || n < 1) || !(lanesPerLevel >= 1) || !(naivePerCreator >= 0) || !['wal_log', 'file_copy'].includes(strategy) || !(Number.isInteger(reps) && reps >= 1)) {
  console.error('usage: lanes-per-second.ts [--creators 2,8,32] [--lanes 64] [--naive-lanes 1] [--strategy wal_log|file_copy] [--reps 1]');
  process.exit(2);
}

process.env.E2E_LANES_QUIET = '1';
const id = `lps${randomBytes(3).toString('hex')}`;
const tmp = await mkdtemp(join(tmpdir(), 'e2e-lanes-lps-'));
const postgres = await ensurePostgres({ stateDir: join(tmp, 'postgres-state'), runId: `${id}-bench` });
const admin = new pg.Client({ connectionString: postgres.adminUrl, application_name: 'e2e-lanes-bench' });
admin.on('error', () => undefined);
await admin.connect();

/** Runs `jobs` on `creators` concurrent workers; resolves the wall time and each job's latency (ms). */
async function pool(creators: number, jobs: number, run: (creator: number, job: number) => Promise<void>): Promise<{ wallMs: number; latencies: number[] }> {
  let next = 0;
  const latencies: number[] = [];
  const started = performance.now();
  await Promise.all(
    Array.from({ length: creators }, async (_, creator) => {
      for (let job = next++; job < jobs; job = next++) {
        const t0 = performance.now();
        await run(creator, job);
        latencies.push(performance.now() - t0);
      }
    }),
  );
  return { wallMs: performance.now() - started, latencies };
}

function pct(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? Number.NaN;
}

const ms = (value: number): string => (value >= 1000 ? `${(value / 1000).toFixed(2)} s` : `${value.toFixed(0)} ms`);

async function dropAll(start: string): Promise<void> {
  const { rows } = await admin.query<{ name: string }>('SELECT datname AS name FROM pg_database WHERE left(datname, $2) = $1', [start, start.length]);
  for (const { name } of rows) {
    await admin.query(`ALTER DATABASE ${pg.escapeIdentifier(name)} WITH IS_TEMPLATE false`);
    await admin.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);
  }
}

interface Sample {
  cloneRate: number;
  cloneLatencies: number[];
  laneRate: number;
  laneLatencies: number[];
  dropRate: number;
  naiveRate: number;
}

/** One repetition of the three measurements with `creators` concurrent creators; `tag` keeps names apart. */
async function measure(creators: number, tag: string, template: string): Promise<Sample> {
  // clone: the server's floor.
  const clients = await Promise.all(
    Array.from({ length: creators }, async () => {
      const client = new pg.Client({ connectionString: postgres.adminUrl, application_name: 'e2e-lanes-bench' });
      await client.connect();
      return client;
    }),
  );
  const clause = strategy === 'file_copy' ? ' STRATEGY FILE_COPY' : ' STRATEGY WAL_LOG';
  const clone = await pool(creators, lanesPerLevel, (creator, job) =>
    clients[creator]!.query(`CREATE DATABASE ${pg.escapeIdentifier(`${id}_c${tag}_${job}`)} TEMPLATE ${pg.escapeIdentifier(template)}${clause}`).then(() => undefined),
  );
  await Promise.all(clients.map((client) => client.end()));
  await dropAll(`${id}_c${tag}_`);

  // lane: N allocators, each its own machine-like state folder and run id, registry in the server.
  const allocators = Array.from(
    { length: creators },
    (_, creator) => new DatabaseAllocator({ ...DEMO, prefix: id, stateDir: join(tmp, `l${tag}-${creator}`), runId: `${id}-l${tag}-${creator}`, registry: 'postgres', cloneStrategy: strategy }),
  );
  await Promise.all(allocators.map((allocator) => allocator.prepare()));
  const lane = await pool(creators, lanesPerLevel, (creator, job) => allocators[creator]!.allocateDatabaseForProject(`project-${job}`).then(() => undefined));
  const dropStarted = performance.now();
  const released = (await Promise.all(allocators.map((allocator) => allocator.releaseRun()))).flat().length;
  const dropMs = performance.now() - dropStarted;
  await Promise.all(allocators.map((allocator) => allocator.close()));

  // naive: a database created empty, migrated and seeded per lane.
  const naiveLanes = creators * naivePerCreator;
  let naiveRate = Number.NaN;
  if (naiveLanes > 0) {
    const naive = await pool(creators, naiveLanes, async (_, job) => {
      const name = `${id}_n${tag}_${job}`;
      const client = new pg.Client({ connectionString: postgres.adminUrl, application_name: 'e2e-lanes-bench' });
      await client.connect();
      await client.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`).finally(() => client.end());
      const url = withDatabase(postgres.adminUrl, name);
      await runMigrations(DEMO.migrations, url);
      await runSeed(DEMO.seed, url);
    });
    naiveRate = naiveLanes / (naive.wallMs / 1000);
    await dropAll(`${id}_n${tag}_`);
  }
  return {
    cloneRate: lanesPerLevel / (clone.wallMs / 1000),
    cloneLatencies: clone.latencies,
    laneRate: lanesPerLevel / (lane.wallMs / 1000),
    laneLatencies: lane.latencies,
    dropRate: released / (dropMs / 1000),
    naiveRate,
  };
}

const rows: string[][] = [];
try {
  // The demo's template, built once under the bench's prefix (not timed).
  const warm = new DatabaseAllocator({ ...DEMO, prefix: id, stateDir: join(tmp, 'warm'), runId: `${id}-warm`, registry: 'postgres' });
  const template = (await warm.prepare()).name;
  await warm.close();
  const setting = async (name: string): Promise<string | undefined> => (await admin.query<{ v: string }>('SELECT current_setting($1) AS v', [name])).rows[0]?.v;
  const version = await setting('server_version');
  const fsync = await setting('fsync');
  const size = (await admin.query<{ v: string }>('SELECT pg_size_pretty(pg_database_size($1)) AS v', [template])).rows[0]?.v;

  for (const creators of levels) {
    const samples: Sample[] = [];
    for (let rep = 0; rep < reps; rep++) samples.push(await measure(creators, `${creators}r${rep}`, template));
    const median = (pick: (sample: Sample) => number): number => pct(samples.map(pick), 50);
    const laneRate = median((sample) => sample.laneRate);
    const naiveRate = median((sample) => sample.naiveRate);
    const clones = samples.flatMap((sample) => sample.cloneLatencies);
    const lanes = samples.flatMap((sample) => sample.laneLatencies);
    rows.push([
      String(creators),
      median((sample) => sample.cloneRate).toFixed(1),
      `${ms(pct(clones, 50))} / ${ms(pct(clones, 95))}`,
      laneRate.toFixed(1),
      `${ms(pct(lanes, 50))} / ${ms(pct(lanes, 95))}`,
      median((sample) => sample.dropRate).toFixed(1),
      Number.isFinite(naiveRate) ? naiveRate.toFixed(2) : '–',
      Number.isFinite(naiveRate) ? `${(laneRate / naiveRate).toFixed(1)}×` : '–',
    ]);
    console.error(`[bench] ${creators} creators done`);
  }

  const cpu = cpus();
  console.log(`lanes per second on ${describeTarget(postgres.adminUrl)} (PostgreSQL ${version}, fsync ${fsync}${postgres.embedded ? ', embedded' : ''}), ` +
    `template ${size}, strategy ${strategy}, ${lanesPerLevel} lanes per level, median of ${reps} run(s); ${cpu.length} × ${cpu[0]?.model.trim() ?? 'CPU'}, ` +
    `${Math.round(totalmem() / 2 ** 30)} GiB, load average ${loadavg()[0]!.toFixed(1)} at the end; ${new Date().toISOString().slice(0, 10)}\n`);
  const header = ['creators', 'clone/s', 'clone p50 / p95', 'lanes/s', 'lane p50 / p95', 'lane drops/s', `naive lanes/s`, 'lane vs naive'];
  console.log(`| ${header.join(' | ')} |\n|${header.map(() => '---').join('|')}|`);
  for (const row of rows) console.log(`| ${row.join(' | ')} |`);
} finally {
  await dropAll(`${id}_`).catch((error: unknown) => console.error(`[bench] cleanup failed: ${String(error)}`));
  await admin.query(`DELETE FROM ${REGISTRY_TABLE} WHERE prefix = $1`, [id]).catch(() => undefined);
  await admin.end();
  await postgres.release();
  await rm(tmp, { recursive: true, force: true });
}
