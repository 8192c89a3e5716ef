import pg from 'pg';
import { SEED_AUTHORS, SEED_NOTES } from './seed-data.ts';

/** Inserts the rows of seed-data.ts; e2e-lanes calls it once per template, not per test. */
export default async function seed({ databaseUrl }: { databaseUrl: string }): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query('BEGIN');
    for (const name of SEED_AUTHORS) {
      const { rows } = await client.query<{ id: number }>('INSERT INTO "Author" (name) VALUES ($1) RETURNING id', [name]);
      for (const note of SEED_NOTES.filter((candidate) => candidate.author === name)) {
        await client.query('INSERT INTO "Note" (title, "authorId") VALUES ($1, $2)', [note.title, rows[0]!.id]);
      }
    }
    await client.query('COMMIT');
  } finally {
    await client.end();
  }
}
