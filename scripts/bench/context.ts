/**
 * What every part of the bench shares: options, a temp folder, the PostgreSQL server, the demo's
 * database options, a warm template, and cleanup that runs even when a part fails or the bench is
 * interrupted. Everything the bench creates is named after one id (`bench` + 4 hex) so that
 * cleanup drops exactly that and nothing else.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { DEFAULT_CLONE_STRATEGY, type CloneStrategy } from '../../src/databases/index.ts';
import { DatabaseAllocator, ensurePostgres, type PostgresHandle } from '../../src/index.ts';
import { withDatabase } from '../../src/postgres/index.ts';

/** The parts, in the order they run. */
export const PARTS = ['databases', 'floor', 'ports', 'suite', 'teardown', 'resets', 'migration', 'reuse', 'vitest'] as const;
export type PartId = (typeof PARTS)[number];

export interface BenchOptions {
  quick: boolean;
  /** Repetitions of every measurement; undefined: each part's default (3, or 1 with --quick). */
  reps: number | undefined;
  only: ReadonlySet<PartId>;
  writeDocs: boolean;
}

/** The repository root (the bench always runs from there). */
export const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));

/** The demo's template inputs, exactly as playwright.config.ts passes them to withLanes. */
export const DEMO = {
  migrations: join(ROOT, 'prisma/migrations'),
  seed: join(ROOT, 'prisma/seed.ts'),
  hashInputs: [join(ROOT, 'prisma/seed-data.ts')],
} as const;

/** Environment variables of the user at start, before the toolkit exported its own (run id, owner…). */
const ORIGINAL_ENV = { ...process.env };

/**
 * The environment for a child process: the user's original environment without any `E2E_LANES_*`
 * the bench process picked up, plus `extra`. A child must never inherit the bench's run id or owner.
 */
export function childEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(ORIGINAL_ENV)) {
    if (value === undefined) continue;
    if (key.startsWith('E2E_LANES_') && key !== 'E2E_LANES_DATABASE_URL') continue;
    env[key] = value;
  }
  return { ...env, ...extra };
}

/** CPU use (all cores) below which the machine counts as quiet before a measurement. */
const QUIET_BUSY = 0.35;
/** Longest wait for quiet before one measurement, and in all (smaller with --quick). */
const QUIET_WAIT_MS = { full: 20_000, quick: 5_000 };
const QUIET_BUDGET_MS = { full: 120_000, quick: 10_000 };

export class BenchContext {
  readonly options: BenchOptions;
  /** Prefix of every database and run id this bench creates, e.g. `bench3fa2`. */
  readonly id = `bench${randomBytes(2).toString('hex')}`;
  readonly tmp: string;
  readonly postgres: PostgresHandle;
  readonly #admin: pg.Client;
  readonly #cleanups: Array<() => Promise<unknown>> = [];
  #counter = 0;
  #quietBudgetMs: number;
  /** Time spent waiting for other processes to leave the CPU alone (see `quiet()`). */
  waitedMs = 0;
  #warm: Promise<{ prefix: string; name: string }> | undefined;
  #closing: Promise<void> | undefined;

  private constructor(options: BenchOptions, tmp: string, postgres: PostgresHandle, admin: pg.Client) {
    this.options = options;
    this.tmp = tmp;
    this.postgres = postgres;
    this.#admin = admin;
    this.#quietBudgetMs = QUIET_BUDGET_MS[options.quick ? 'quick' : 'full'];
  }

  /** One open admin connection, for raw SQL (floors, naive baseline). Refused once cleanup began, so nothing new gets created. */
  get admin(): pg.Client {
    if (this.#closing) throw new Error('the bench is shutting down');
    return this.#admin;
  }

  /** Creates the temp folder and joins PostgreSQL (`E2E_LANES_DATABASE_URL`, or the shared embedded server). */
  static async create(options: BenchOptions): Promise<BenchContext> {
    const tmp = await mkdtemp(join(tmpdir(), 'e2e-lanes-bench-'));
    try {
      // The default state folder, not the temp one: if the bench starts the shared embedded server, its port is
      // recorded there, and the server (with that record) outlives the bench while other runs use it.
      const postgres = await ensurePostgres({ runId: 'e2e-lanes-bench' });
      const admin = new pg.Client({ connectionString: postgres.adminUrl, application_name: 'e2e-lanes-bench' });
      admin.on('error', () => undefined);
      await admin.connect();
      return new BenchContext(options, tmp, postgres, admin);
    } catch (error) {
      await rm(tmp, { recursive: true, force: true });
      throw error;
    }
  }

  /** Repetitions for a part: `--reps`, else the full or quick default. */
  reps(full = 3, quick = 1): number {
    return this.options.reps ?? (this.options.quick ? quick : full);
  }

  /** A fresh name under the bench id: a database prefix, run id or folder name. At most 16 characters. */
  fresh(tag: string): string {
    return `${this.id}${tag}${(this.#counter++).toString(36)}`;
  }

  /** A new empty folder under the bench's temp folder. */
  async dir(name: string): Promise<string> {
    const path = join(this.tmp, `${name}-${(this.#counter++).toString(36)}`);
    await mkdir(path, { recursive: true });
    return path;
  }

  /** URL of a database on the bench's server (holds the password: never print it). */
  url(database: string): string {
    return withDatabase(this.postgres.adminUrl, database);
  }

  /** Raw `CREATE DATABASE name TEMPLATE template STRATEGY …`, with the allocator's default strategy unless told. */
  cloneSql(name: string, template: string, strategy: CloneStrategy = DEFAULT_CLONE_STRATEGY): string {
    const clause = this.postgres.version >= 150000 ? ` STRATEGY ${strategy.toUpperCase()}` : '';
    return `CREATE DATABASE ${pg.escapeIdentifier(name)} TEMPLATE ${pg.escapeIdentifier(template)}${clause}`;
  }

  /** Registers cleanup to run at the end (last registered runs first), even after a failure. */
  defer(cleanup: () => Promise<unknown>): void {
    this.#cleanups.push(cleanup);
  }

  /**
   * A template of the demo built once for the whole bench under its own prefix: what "warm"
   * measurements clone from. Dropped at the end with everything else of the bench.
   */
  warmTemplate(): Promise<{ prefix: string; name: string }> {
    this.#warm ??= (async () => {
      const prefix = `${this.id}w`;
      const allocator = new DatabaseAllocator({ ...DEMO, prefix, stateDir: await this.dir('warm'), runId: `${this.id}-warm` });
      try {
        const template = await allocator.prepare();
        return { prefix, name: template.name };
      } finally {
        await allocator.close();
      }
    })();
    return this.#warm;
  }

  /**
   * Waits until other processes leave the CPU mostly idle (below 35 % of all cores over one second;
   * at most 20 s per call and 2 min per bench, 5 s and 10 s with --quick), so that a measurement does not start in the middle of
   * someone else's test run. Resolves the CPU use last seen (0-1), undefined where /proc/stat is missing.
   */
  async quiet(): Promise<number | undefined> {
    const started = Date.now();
    const deadline = started + Math.min(QUIET_WAIT_MS[this.options.quick ? 'quick' : 'full'], this.#quietBudgetMs);
    let busy = await cpuBusy();
    while (busy !== undefined && busy > QUIET_BUSY && Date.now() < deadline) busy = await cpuBusy();
    const waited = Date.now() - started - 1000;
    this.#quietBudgetMs = Math.max(0, this.#quietBudgetMs - Math.max(0, waited));
    this.waitedMs += Math.max(0, waited);
    return busy;
  }

  /** Names of the databases starting with `start`. */
  async databasesStartingWith(start: string): Promise<string[]> {
    const { rows } = await this.#admin.query<{ name: string }>('SELECT datname AS name FROM pg_database WHERE left(datname, $2) = $1 ORDER BY oid', [start, start.length]);
    return rows.map((row) => row.name);
  }

  /** Drops every database starting with `start` (templates unsealed first), even with sessions connected. */
  async dropDatabasesStartingWith(start: string): Promise<number> {
    if (!start.startsWith(this.id)) throw new Error(`refusing to drop databases outside the bench's own prefix ${this.id}: ${start}`);
    const names = await this.databasesStartingWith(start);
    for (const name of names) {
      const id = pg.escapeIdentifier(name);
      await this.#admin.query(`ALTER DATABASE ${id} WITH IS_TEMPLATE false`);
      await this.#admin.query(`DROP DATABASE IF EXISTS ${id} WITH (FORCE)`);
    }
    return names.length;
  }

  /** Runs every cleanup, drops every database of the bench, lets go of PostgreSQL and removes the temp folder. Once. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const problems: string[] = [];
      for (const cleanup of this.#cleanups.reverse()) {
        await cleanup().catch((error: unknown) => problems.push(String((error as Error)?.message ?? error)));
      }
      // Twice: a clone already under way on another connection when cleanup began lands after the first pass.
      for (const pause of [0, 500]) {
        await new Promise((resolve) => setTimeout(resolve, pause));
        await this.dropDatabasesStartingWith(this.id).catch((error: unknown) => problems.push(`dropping ${this.id}*: ${(error as Error).message}`));
      }
      await this.#admin.end().catch(() => undefined);
      await this.postgres.release().catch((error: unknown) => problems.push(`releasing PostgreSQL: ${(error as Error).message}`));
      await rm(this.tmp, { recursive: true, force: true });
      if (problems.length > 0) console.error(`bench cleanup: ${problems.join('; ')}`);
    })();
    return this.#closing;
  }
}

/** The share (0-1) of all CPUs busy during the next `ms`, from /proc/stat; undefined where it does not exist. */
async function cpuBusy(ms = 1000): Promise<number | undefined> {
  const sample = async (): Promise<{ busy: number; total: number } | undefined> => {
    const line = (await readFile('/proc/stat', 'utf8').catch(() => '')).split('\n')[0] ?? '';
    const fields = line.trim().split(/\s+/).slice(1, 9).map(Number); // user … steal (guest time is inside user)
    if (fields.length < 5 || fields.some((value) => !Number.isFinite(value))) return undefined;
    const total = fields.reduce((sum, value) => sum + value, 0);
    return { busy: total - fields[3]! - fields[4]!, total }; // idle and iowait are not busy
  };
  const before = await sample();
  await new Promise((resolve) => setTimeout(resolve, ms));
  const after = await sample();
  if (!before || !after || after.total === before.total) return undefined;
  return (after.busy - before.busy) / (after.total - before.total);
}
