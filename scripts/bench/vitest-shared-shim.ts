/** What the example's tests use of `e2e-lanes/vitest`, on the shared way's one database (only `pg`). */
import pg from 'pg';
import { test as vitestTest } from 'vitest';
import seed from '../../examples/vitest-prisma/prisma/seed.ts';

function sharedUrl(): string {
  const url = process.env['DATABASE_URL'];
  if (!url) throw new Error('DATABASE_URL is not set by vitest-shared-setup.ts');
  return url;
}

/** The naive way's reset: every table of the app emptied (sequences too) in one statement, then the seed again. */
export async function resetShared(): Promise<void> {
  const client = new pg.Client({ connectionString: sharedUrl() });
  await client.connect();
  try {
    await client.query('TRUNCATE "Note", "Author" RESTART IDENTITY CASCADE');
  } finally {
    await client.end();
  }
  await seed({ databaseUrl: sharedUrl() });
}

export const resetDatabase = resetShared;

export const test = vitestTest.extend<{ database: { url: string; name: string } }>({
  database: async ({ task }, use) => {
    void task;
    const url = sharedUrl();
    await use({ url, name: new URL(url).pathname.slice(1) });
  },
});
