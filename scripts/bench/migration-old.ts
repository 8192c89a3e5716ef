/**
 * The "old way" side of part 7 (migration.ts): how an app tests before it adopts lanes. ONE backend
 * and ONE Vite server for the run (Playwright's `webServer`), ONE database, `workers: 1`, and before
 * every test the database dropped, created, migrated and seeded again, which is what a
 * `beforeEach` running `npx prisma migrate reset --force` does. Shared by migration-old.config.ts,
 * migration-old-fixtures.ts and migration.ts.
 */
import { appendFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { applyMigrations, readMigrations, runSeed } from '../../src/databases/index.ts';
import { ROOT } from './context.ts';

/** The app whose suite both sides run. */
export const EXAMPLE = join(ROOT, 'examples/vite-prisma');

const ENV = {
  adminUrl: 'BENCH_OLD_ADMIN_URL',
  database: 'BENCH_OLD_DATABASE',
  backendPort: 'BENCH_OLD_BACKEND_PORT',
  frontendPort: 'BENCH_OLD_FRONTEND_PORT',
  resetLog: 'BENCH_OLD_RESET_LOG',
} as const;

export interface OldWaySettings {
  /** Admin URL of the server (holds the password: never print it). */
  adminUrl: string;
  /** The one database of the run. */
  database: string;
  backendPort: number;
  frontendPort: number;
  /** A file each reset appends its duration (ms) to, one line each. */
  resetLog: string;
}

/** The environment migration.ts passes to the old-way Playwright run. */
export function oldWayEnv(settings: OldWaySettings): Record<string, string> {
  return {
    [ENV.adminUrl]: settings.adminUrl,
    [ENV.database]: settings.database,
    [ENV.backendPort]: String(settings.backendPort),
    [ENV.frontendPort]: String(settings.frontendPort),
    [ENV.resetLog]: settings.resetLog,
  };
}

/** The settings from the environment (in the Playwright runner and its worker). */
export function oldWaySettings(): OldWaySettings {
  const read = (name: string): string => {
    const value = process.env[name];
    if (!value) throw new Error(`${name} is not set: scripts/bench/migration-old.config.ts is run by \`npm run bench -- --only migration\`, not by hand.`);
    return value;
  };
  return {
    adminUrl: read(ENV.adminUrl),
    database: read(ENV.database),
    backendPort: Number(read(ENV.backendPort)),
    frontendPort: Number(read(ENV.frontendPort)),
    resetLog: read(ENV.resetLog),
  };
}

/** URL of `database` on the server of `adminUrl`. */
export function databaseUrlOf(adminUrl: string, database: string): string {
  const url = new URL(adminUrl);
  url.pathname = `/${encodeURIComponent(database)}`;
  return url.href;
}

/**
 * What `prisma migrate reset --force` does to the database: drop it (its sessions ended: the
 * backend's and the spec's clients reconnect), create it, apply every migration, run the seed
 * command (`migrations.seed` of the example's prisma.config.ts, as Prisma runs it: a process of its
 * own). Left out: the start of the Prisma CLI and of its schema engine, so this is faster than the real thing.
 */
export async function migrateReset(settings: OldWaySettings): Promise<number> {
  const started = performance.now();
  const admin = new pg.Client({ connectionString: settings.adminUrl, application_name: 'e2e-lanes-bench-old-way' });
  await admin.connect();
  try {
    const name = pg.escapeIdentifier(settings.database);
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = databaseUrlOf(settings.adminUrl, settings.database);
  await applyMigrations(url, await readMigrations(join(EXAMPLE, 'prisma/migrations')));
  await runSeed({ command: 'node --import tsx prisma/seed.ts', cwd: EXAMPLE }, url, { label: 'seeding the old way\'s database' });
  const ms = performance.now() - started;
  await appendFile(settings.resetLog, `${ms}\n`);
  return ms;
}
