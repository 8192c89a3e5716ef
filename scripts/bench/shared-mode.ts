/**
 * The "shared" side of part 4: what teams do today to stay correct without lanes, i.e. ONE
 * backend + frontend (Playwright `webServer`) against ONE database, `workers: 1`. The specs assert
 * "the seed plus my own rows, no foreign rows", so the database is reset to the seed whenever a
 * worker starts; with one worker, a worker runs exactly one project, so that is once per project.
 * Used by shared.config.ts, shared-fixtures.ts and suite.ts.
 */
import pg from 'pg';
import { runSeed } from '../../src/databases/index.ts';
import { DEMO } from './context.ts';

/** The projects both modes run: those of playwright.config.ts with one lane per project. */
export const SUITE_PROJECTS = ['alpha', 'beta', 'gamma', 'delta'] as const;

/**
 * Tests left out in both modes: the one that reads the toolkit's own state files
 * (allocated-ports.json), which cannot exist without the toolkit.
 */
export const GREP_INVERT = 'allocated-ports\\.json';

const ENV = {
  databaseUrl: 'BENCH_SHARED_DATABASE_URL',
  backendPort: 'BENCH_SHARED_BACKEND_PORT',
  frontendPort: 'BENCH_SHARED_FRONTEND_PORT',
} as const;

export interface SharedSettings {
  databaseUrl: string;
  databaseName: string;
  backendPort: number;
  frontendPort: number;
}

/** The environment suite.ts passes to the shared-mode Playwright run. */
export function sharedEnv(settings: Omit<SharedSettings, 'databaseName'>): Record<string, string> {
  return { [ENV.databaseUrl]: settings.databaseUrl, [ENV.backendPort]: String(settings.backendPort), [ENV.frontendPort]: String(settings.frontendPort) };
}

/** The settings from the environment (in the Playwright runner and its workers). */
export function sharedSettings(): SharedSettings {
  const read = (name: string): string => {
    const value = process.env[name];
    if (!value) throw new Error(`${name} is not set: scripts/bench/shared.config.ts is run by \`npm run bench -- --only suite\`, not by hand.`);
    return value;
  };
  const databaseUrl = read(ENV.databaseUrl);
  return {
    databaseUrl,
    databaseName: decodeURIComponent(new URL(databaseUrl).pathname.slice(1)),
    backendPort: Number(read(ENV.backendPort)),
    frontendPort: Number(read(ENV.frontendPort)),
  };
}

/** Empties every table but `_prisma_migrations` (identities restarted) and runs the demo's seed again. */
export async function resetDatabase(databaseUrl: string): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ name: string }>(
      "SELECT format('%I.%I', schemaname, tablename) AS name FROM pg_tables WHERE schemaname = current_schema() AND tablename <> '_prisma_migrations'",
    );
    if (rows.length > 0) await client.query(`TRUNCATE ${rows.map((row) => row.name).join(', ')} RESTART IDENTITY CASCADE`);
  } finally {
    await client.end();
  }
  await runSeed(DEMO.seed, databaseUrl);
}
