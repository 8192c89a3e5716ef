/** The shared way's one database: created, migrated and seeded before the run, dropped after it. */
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { applyMigrations, readMigrations } from '../../src/databases/index.ts';
import { withDatabase } from '../../src/postgres/index.ts';
import seed from '../../examples/vitest-prisma/prisma/seed.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    sharedDatabaseUrl: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const adminUrl = process.env['BENCH_SHARED_ADMIN_URL'];
  if (!adminUrl) throw new Error('BENCH_SHARED_ADMIN_URL is not set: run this config through `npm run bench -- --only vitest`.');
  const name = `bench_vitest_shared_${process.pid}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);
  await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
  const url = withDatabase(adminUrl, name);
  await applyMigrations(url, await readMigrations(new URL('../../examples/vitest-prisma/prisma/migrations', import.meta.url).pathname));
  await seed({ databaseUrl: url });
  project.provide('sharedDatabaseUrl', url);
  return async () => {
    await admin.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);
    await admin.end();
  };
}
