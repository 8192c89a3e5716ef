import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { expect, test } from 'e2e-lanes/playwright';
import { SEED_USERS } from './helpers.ts';

const stateDir = process.env.E2E_LANES_STATE_DIR ?? 'test-results';

interface Entry {
  runId: string;
  project: string;
  worker?: number;
  ports?: Record<string, number>;
  databaseName?: string;
  databaseUrl?: string;
}

async function entryOf(file: string, runId: string, project: string): Promise<Entry | undefined> {
  const doc = JSON.parse(await readFile(join(stateDir, file), 'utf8')) as { entries: Entry[] };
  return doc.entries.find((entry) => entry.runId === runId && entry.project === project && entry.worker === undefined);
}

test.describe('the lane matches what the state files record', () => {
  test('its ports and database are the ones in allocated-ports.json and allocated-databases.json', async ({ lane }) => {
    const ports = await entryOf('allocated-ports.json', lane.runId, lane.project);
    expect(ports?.ports).toEqual(lane.ports);
    const database = await entryOf('allocated-databases.json', lane.runId, lane.project);
    expect(database?.databaseName).toBe(lane.databaseName);
    // The state file never holds the password: its password part is `***` (the user name may be
    // the same word, as in CI's usual postgres:postgres).
    if (new URL(lane.databaseUrl!).password) expect(new URL(database!.databaseUrl!).password).toBe('***');
  });

  test('the backend serves the lane database on the lane port', async ({ request, lane }) => {
    const info = await (await request.get(`${lane.urls.backend}/api/info`)).json();
    expect(info.database).toBe(lane.databaseName);
    expect(info.port).toBe(lane.ports.backend);
    expect(lane.urls.frontend).toBe(`http://localhost:${lane.ports.frontend}`);
  });

  test('DATABASE_URL in the worker points at the lane database', async ({ lane }) => {
    expect(process.env.DATABASE_URL).toBe(lane.databaseUrl);
    const client = new pg.Client({ connectionString: process.env.DATABASE_URL });
    await client.connect();
    try {
      const { rows } = await client.query<{ db: string }>('select current_database() as db');
      expect(rows[0]?.db).toBe(lane.databaseName);
      const users = await client.query<{ email: string }>('select email from "User" order by id');
      expect(users.rows.slice(0, SEED_USERS.length).map((row) => row.email)).toEqual(SEED_USERS.map((user) => user.email));
    } finally {
      await client.end();
    }
  });
});
