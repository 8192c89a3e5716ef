/**
 * The shared way's one database: created, migrated (every migration.sql in order, as a hand-written
 * global setup does) and seeded before the run, dropped after it. Only `pg` and Node: the shared
 * way pays for no toolkit module.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import seed from '../../examples/vitest-prisma/prisma/seed.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    sharedDatabaseUrl: string;
  }
}

const MIGRATIONS = fileURLToPath(new URL('../../examples/vitest-prisma/prisma/migrations', import.meta.url));

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const adminUrl = process.env['BENCH_SHARED_ADMIN_URL'];
  if (!adminUrl) throw new Error('BENCH_SHARED_ADMIN_URL is not set: run this config through `npm run bench -- --only vitest`.');
  const name = `bench_vitest_shared_${process.pid}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);
  await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const client = new pg.Client({ connectionString: url.href });
  await client.connect();
  try {
    for (const folder of readdirSync(MIGRATIONS, { withFileTypes: true }).filter((entry) => entry.isDirectory()).map((entry) => entry.name).sort()) await client.query(readFileSync(join(MIGRATIONS, folder, 'migration.sql'), 'utf8'));
  } finally {
    await client.end();
  }
  await seed({ databaseUrl: url.href });
  project.provide('sharedDatabaseUrl', url.href);
  return async () => {
    await admin.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);
    await admin.end();
  };
}
