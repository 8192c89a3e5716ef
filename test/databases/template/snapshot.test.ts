import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { restoreSnapshot } from '../../../src/databases/fresh/snapshot-restore.js';
import { hasSnapshot, SNAPSHOT_SCHEMA, takeSnapshot, type SnapshotSummary } from '../../../src/databases/template/snapshot.js';
import { applyMigrations, readMigrations } from '../../../src/databases/template/migrations.js';
import { isLanesError } from '../../../src/errors.js';
import { getTestPostgres } from '../../helpers/postgres.js';
import { wideSchemaSql } from '../../fixtures/wide-schema.js';
import { dropDatabasesStartingWith } from '../helpers.js';

const MIGRATIONS = fileURLToPath(new URL('../../../prisma/migrations/', import.meta.url));
const prefix = `e2e_snaptest_${randomBytes(4).toString('hex')}`;
let server: { adminUrl: string; release(): Promise<void> } | undefined;
const clients = new Set<pg.Client>();

const adminUrl = (): string => {
  if (!server) throw new Error('the test server is not ready');
  return server.adminUrl;
};
const urlOf = (database: string): string => {
  const url = new URL(adminUrl());
  url.pathname = `/${database}`;
  return url.toString();
};
const id = (name: string): string => pg.escapeIdentifier(name);

/** A connected client, ended in `after` if the test does not end it. */
async function connect(database: string, applicationName = 'snapshot-test'): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: urlOf(database), application_name: applicationName });
  client.on('error', () => undefined); // a session ended by the server must not crash the test process
  await client.connect();
  clients.add(client);
  return client;
}
async function end(client: pg.Client): Promise<void> {
  clients.delete(client);
  await client.end().catch(() => undefined);
}
async function withDatabase<T>(database: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = await connect(database);
  try {
    return await fn(client);
  } finally {
    await end(client);
  }
}
async function admin(sql: string): Promise<void> {
  await withDatabase('postgres', (client) => client.query(sql));
}

/**
 * Every row of every table of the app's schemas (partitions read one by one) and the position of
 * every sequence, as one map name → count and hash of the rows in a stable order.
 */
async function fingerprint(client: pg.Client): Promise<Record<string, string>> {
  const { rows: relations } = await client.query<{ schema: string; name: string; kind: string }>(
    `SELECT n.nspname AS schema, c.relname AS name, c.relkind AS kind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'S') AND n.nspname NOT LIKE 'pg\\_%' AND n.nspname NOT IN ('information_schema', $1) ORDER BY 1, 2`,
    [SNAPSHOT_SCHEMA],
  );
  const parts = relations.map(({ schema, name, kind }) => {
    const label = pg.escapeLiteral(`${schema}.${name}`);
    const target = `${id(schema)}.${id(name)}`;
    return kind === 'S'
      ? `SELECT ${label} AS name, last_value::text || ' ' || is_called::text AS value FROM ${target}`
      : `SELECT ${label} AS name, count(*)::text || ' ' || md5(coalesce(string_agg(x::text, E'\\n' ORDER BY x::text), '')) AS value FROM ONLY ${target} x`;
  });
  const { rows } = await client.query<{ name: string; value: string }>(parts.join(' UNION ALL '));
  return Object.fromEntries(rows.map(({ name, value }) => [name, value]));
}

/** Creates `database`, runs `setup` in it, takes the snapshot; nobody stays connected. */
async function buildTemplate(database: string, setup: (client: pg.Client, url: string) => Promise<void>): Promise<{ summary: SnapshotSummary; content: Record<string, string> }> {
  await admin(`CREATE DATABASE ${id(database)}`);
  return withDatabase(database, async (client) => {
    await setup(client, urlOf(database));
    const summary = await takeSnapshot(client);
    return { summary, content: await fingerprint(client) };
  });
}

let clones = 0;
/** A new database cloned from `template` (which must have no session). */
async function clone(template: string): Promise<string> {
  const name = `${prefix}_c${++clones}`;
  await admin(`CREATE DATABASE ${id(name)} TEMPLATE ${id(template)}`);
  return name;
}

const DEMO_SEED = `
INSERT INTO "User" ("email", "name", "createdAt") VALUES ('alice@example.test', 'Alice Archer', '2025-01-01T10:00:00Z'), ('bob@example.test', 'Bob Baker', '2025-01-02T10:00:00Z');
INSERT INTO "Post" ("title", "body", "published", "authorId", "createdAt") VALUES
  ('Welcome to the lanes demo', 'Every Playwright project gets its own database.', true, 1, '2025-01-03T10:00:00Z'),
  ('Draft: seeding strategies', 'Templates make fresh databases cheap.', false, 1, '2025-01-04T10:00:00Z'),
  ('Hello from Bob', 'Parallel tests, no shared state.', true, 2, '2025-01-05T10:00:00Z');
INSERT INTO "Comment" ("body", "postId", "authorId", "createdAt") VALUES ('Nice isolation!', 1, 2, '2025-01-06T10:00:00Z');`;

const EDGE_SCHEMA = `
CREATE SCHEMA edge;
CREATE TYPE edge.mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE edge.kinds (
  id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  code bigint GENERATED BY DEFAULT AS IDENTITY (START WITH 100),
  label text, mood edge.mood, moods edge.mood[], tags text[], matrix int[][], doc jsonb, blob bytea,
  price numeric(12, 4), ratio double precision, at timestamptz, day date, span interval, uid uuid,
  label_upper text GENERATED ALWAYS AS (upper(label)) STORED
);
INSERT INTO edge.kinds (label, mood, moods, tags, matrix, doc, blob, price, ratio, at, day, span, uid) VALUES
  ('plain', 'ok', '{sad,happy}', '{a,"b c",""}', '{{1,2},{3,4}}', '{"a": [1, 2.50, null], "b": {"c": "ü"}}', '\\x00ff10', 12.3400, 1.5e-300, '2025-03-01T12:34:56.789123Z', '2025-03-01', '1 day 02:03:04', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'),
  (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  ('ünïcödé 🚀', 'happy', '{}', '{NULL}', '{}', '[]', '\\x', -0.0001, 'NaN', '-infinity', 'infinity', '-1 mon', NULL);
INSERT INTO edge.kinds (code, label, ratio) VALUES (7, 'explicit code', '-0');

CREATE TABLE edge.nodes (id serial PRIMARY KEY, parent_id integer REFERENCES edge.nodes (id), name text NOT NULL);
INSERT INTO edge.nodes (parent_id, name) VALUES (NULL, 'root'), (1, 'child'), (2, 'grandchild');
UPDATE edge.nodes SET parent_id = 3 WHERE id = 1; -- a loop through the self-reference

CREATE TABLE edge.a (id integer PRIMARY KEY, b_id integer);
CREATE TABLE edge.b (id integer PRIMARY KEY, a_id integer NOT NULL REFERENCES edge.a (id));
ALTER TABLE edge.a ADD FOREIGN KEY (b_id) REFERENCES edge.b (id);
INSERT INTO edge.a VALUES (1, NULL), (2, NULL);
INSERT INTO edge.b VALUES (10, 1), (20, 2);
UPDATE edge.a SET b_id = 20 WHERE id = 1;
UPDATE edge.a SET b_id = 10 WHERE id = 2;

CREATE TABLE edge.events (id bigserial, at date NOT NULL, payload jsonb, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
CREATE TABLE edge.events_2025 PARTITION OF edge.events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE edge.events_other PARTITION OF edge.events DEFAULT;
INSERT INTO edge.events (at, payload) VALUES ('2025-02-01', '{"k": 1}'), ('2025-12-31', NULL), ('2030-01-01', '{"k": [3]}');
CREATE TABLE edge.event_notes (id serial PRIMARY KEY, event_id bigint NOT NULL, event_at date NOT NULL, note text,
  FOREIGN KEY (event_id, event_at) REFERENCES edge.events (id, at));
INSERT INTO edge.event_notes (event_id, event_at, note) VALUES (1, '2025-02-01', 'first'), (3, '2030-01-01', 'far');

CREATE TABLE edge.audit (id serial PRIMARY KEY, note text NOT NULL);
CREATE FUNCTION edge.audit_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO edge.audit (note) VALUES (TG_TABLE_NAME || ' ' || TG_OP); RETURN NEW; END $$;
CREATE TRIGGER nodes_audit AFTER INSERT ON edge.nodes FOR EACH ROW EXECUTE FUNCTION edge.audit_row();
INSERT INTO edge.nodes (parent_id, name) VALUES (1, 'audited');

CREATE SEQUENCE edge.counter START 7;
SELECT nextval('edge.counter'), nextval('edge.counter');
CREATE SEQUENCE edge.unused START 42;
CREATE TABLE edge.empty (id integer);
CREATE TABLE public.bare ();
INSERT INTO public.bare DEFAULT VALUES;
INSERT INTO public.bare DEFAULT VALUES;`;

const templates = { demo: `${prefix}_demo`, wide: `${prefix}_wide`, edge: `${prefix}_edge`, plain: `${prefix}_plain` };
const built: Record<'demo' | 'wide' | 'edge', { summary: SnapshotSummary; content: Record<string, string> }> = {} as never;

before(async () => {
  server = await getTestPostgres();
  built.demo = await buildTemplate(templates.demo, async (client, url) => {
    await applyMigrations(url, await readMigrations(MIGRATIONS));
    await client.query(DEMO_SEED);
  });
  const wide = wideSchemaSql();
  built.wide = await buildTemplate(templates.wide, async (client) => {
    await client.query(wide.migration);
    await client.query(wide.seed);
  });
  built.edge = await buildTemplate(templates.edge, async (client) => {
    await client.query(EDGE_SCHEMA);
  });
  await admin(`CREATE DATABASE ${id(templates.plain)}`);
});

after(async () => {
  for (const client of clients) await client.end().catch(() => undefined);
  if (!server) return;
  try {
    await dropDatabasesStartingWith(server.adminUrl, `${prefix}_`);
    await admin(`DROP ROLE IF EXISTS ${id(`${prefix}_owner`)}`);
  } finally {
    await server.release();
  }
});

describe('takeSnapshot', () => {
  test('counts the tables, rows and sequences of the demo schema, _prisma_migrations included', () => {
    assert.deepEqual(built.demo.summary, { tables: 4, rows: 2 + 3 + 1 + 2, sequences: 3 });
  });

  test('counts the 100 tables, 500 rows and 100 sequences of the wide schema', () => {
    assert.deepEqual(built.wide.summary, { tables: 100, rows: 500, sequences: 100 });
  });

  test('records restore order, columns without generated ones, and identity columns needing OVERRIDING SYSTEM VALUE', async () => {
    await withDatabase(templates.edge, async (client) => {
      const { rows } = await client.query<{ table_name: string; columns: string[]; overriding_system_value: boolean; partitioned: boolean; in_fk_cycle: boolean; position: number }>(
        `SELECT position, table_name, columns, overriding_system_value, partitioned, in_fk_cycle FROM ${SNAPSHOT_SCHEMA}.tables WHERE schema_name = 'edge' ORDER BY position`,
      );
      const byName = Object.fromEntries(rows.map((row) => [row.table_name, row]));
      assert.equal(byName['kinds']?.overriding_system_value, true);
      assert.ok(!byName['kinds']?.columns.includes('label_upper'), 'the generated column is not restored');
      assert.equal(byName['kinds']?.columns.length, 15);
      assert.equal(byName['nodes']?.in_fk_cycle, false, 'a self-reference is no cycle');
      assert.equal(byName['a']?.in_fk_cycle, true);
      assert.equal(byName['b']?.in_fk_cycle, true);
      assert.equal(byName['events']?.partitioned, true);
      assert.ok(!('events_2025' in byName), 'partitions are restored through their partitioned table');
      assert.ok(byName['events']!.position < byName['event_notes']!.position, 'parents come before children');
    });
    await withDatabase(templates.wide, async (client) => {
      const { rows } = await client.query<{ table_name: string }>(`SELECT table_name FROM ${SNAPSHOT_SCHEMA}.tables WHERE table_name LIKE 'w\\_%' ORDER BY position`);
      assert.deepEqual(rows.map((row) => row.table_name), Array.from({ length: 100 }, (_, i) => `w_${String(i + 1).padStart(4, '0')}`));
    });
  });
});

describe('restoreSnapshot', () => {
  test('puts a changed demo database back to exactly the template, rows and sequences', async () => {
    const database = await clone(templates.demo);
    await withDatabase(database, async (client) => {
      assert.deepEqual(await fingerprint(client), built.demo.content);
      await client.query(`
        INSERT INTO "User" ("email", "name") VALUES ('carol@example.test', 'Carol');
        INSERT INTO "Post" ("title", "body", "authorId") VALUES ('By Carol', 'child of a new parent', 3);
        UPDATE "Post" SET "title" = 'changed', "published" = NOT "published" WHERE "id" = 2;
        DELETE FROM "Comment";
        INSERT INTO "Comment" ("body", "postId", "authorId") VALUES ('new', 4, 3);
        TRUNCATE "Comment";
        SELECT setval('"User_id_seq"', 1000);
        DELETE FROM _prisma_migrations;`);
      assert.notDeepEqual(await fingerprint(client), built.demo.content);
      const summary = await restoreSnapshot(client);
      assert.deepEqual({ ...summary, durationMs: 0 }, { ...built.demo.summary, triggers: 'skipped', durationMs: 0 });
      assert.deepEqual(await fingerprint(client), built.demo.content);
      const { rows } = await client.query<{ id: number }>(`INSERT INTO "User" ("email", "name") VALUES ('dave@example.test', 'Dave') RETURNING "id"`);
      assert.equal(rows[0]?.id, 3, 'the sequence continues where the template left it');
      await restoreSnapshot(client);
      assert.deepEqual(await fingerprint(client), built.demo.content, 'a second restore on the same session works too');
    });
  });

  test('puts a changed 100-table database back to exactly the template', async () => {
    const database = await clone(templates.wide);
    await withDatabase(database, async (client) => {
      await client.query(`
        INSERT INTO w_0001 (name) VALUES ('extra');
        INSERT INTO w_0002 (name, ref_0001) VALUES ('child of extra', 6);
        UPDATE w_0050 SET data = '{"changed": true}', status = 'archived';
        DELETE FROM w_0100;
        DELETE FROM w_0099 WHERE id > 2;
        SELECT nextval('w_0042_id_seq'), nextval('w_0042_id_seq');`);
      await restoreSnapshot(client);
      assert.deepEqual(await fingerprint(client), built.wide.content);
    });
  });

  test('round-trips identity, generated, enum, array, jsonb, bytea and NULL columns, partitions, a self-reference and a cycle of foreign keys', async () => {
    const database = await clone(templates.edge);
    await withDatabase(database, async (client) => {
      await client.query(`
        INSERT INTO edge.kinds (label, moods, blob) VALUES ('new', '{ok}', '\\xdead');
        UPDATE edge.kinds SET doc = '{"x": 1}', label = 'relabelled', matrix = NULL WHERE label = 'plain';
        DELETE FROM edge.kinds WHERE label IS NULL;
        INSERT INTO edge.nodes (parent_id, name) VALUES (2, 'new leaf');
        UPDATE edge.nodes SET parent_id = NULL WHERE id = 1;
        DELETE FROM edge.nodes WHERE id = 3;
        UPDATE edge.a SET b_id = NULL;
        DELETE FROM edge.b;
        DELETE FROM edge.a;
        INSERT INTO edge.events (at, payload) VALUES ('2025-06-01', '{}'), ('1999-01-01', '[]');
        DELETE FROM edge.event_notes WHERE note = 'far';
        DELETE FROM edge.events_other;
        SELECT nextval('edge.counter'), nextval('edge.unused');
        INSERT INTO edge.empty VALUES (1);
        TRUNCATE public.bare;
        CREATE TABLE edge.scratch (id serial PRIMARY KEY, note text);
        INSERT INTO edge.scratch (note) VALUES ('made by the test'), ('kept');`);
      const audited = await client.query<{ n: number }>('SELECT count(*)::int AS n FROM edge.audit');
      assert.equal(audited.rows[0]?.n, 2, 'the trigger fires for the test');
      const summary = await restoreSnapshot(client);
      assert.equal(summary.triggers, 'skipped');
      const content = await fingerprint(client);
      const created = Object.keys(content).filter((name) => name.startsWith('edge.scratch'));
      assert.deepEqual(created.sort(), ['edge.scratch', 'edge.scratch_id_seq']);
      for (const name of created) delete content[name];
      assert.deepEqual(content, built.edge.content, 'no trigger fired during the restore: edge.audit is as in the template');
      const scratch = await client.query<{ note: string }>('SELECT note FROM edge.scratch ORDER BY id');
      assert.deepEqual(scratch.rows.map((row) => row.note), ['made by the test', 'kept'], 'a table the test created is left alone');
      const generated = await client.query<{ label_upper: string | null }>(`SELECT label_upper FROM edge.kinds WHERE label = 'plain'`);
      assert.equal(generated.rows[0]?.label_upper, 'PLAIN');
    });
  });

  test('works while another session is connected and idle; that session survives and sees the seed', async () => {
    const database = await clone(templates.demo);
    const app = await connect(database, 'idle-app');
    const resetter = await connect(database);
    try {
      const before = await app.query<{ pid: number; n: number }>('SELECT pg_backend_pid() AS pid, (SELECT count(*)::int FROM "User") AS n');
      await app.query(`INSERT INTO "User" ("email", "name") VALUES ('x@example.test', 'X')`);
      await restoreSnapshot(resetter);
      const afterwards = await app.query<{ pid: number; n: number }>('SELECT pg_backend_pid() AS pid, (SELECT count(*)::int FROM "User") AS n');
      assert.equal(afterwards.rows[0]?.pid, before.rows[0]?.pid, 'the same session, not a new one');
      assert.equal(afterwards.rows[0]?.n, 2);
      assert.deepEqual(await fingerprint(app), built.demo.content);
    } finally {
      await end(app);
      await end(resetter);
    }
  });

  test('fails with DATABASE_RESET_FAILED naming the blocking session when a transaction holds a row lock, and leaves the database unchanged', { timeout: 30_000 }, async () => {
    const database = await clone(templates.demo);
    const blocker = await connect(database, 'lingering-test');
    const resetter = await connect(database);
    try {
      await resetter.query(`INSERT INTO "User" ("email", "name") VALUES ('x@example.test', 'X'); SELECT nextval('"Post_id_seq"')`);
      const changed = await fingerprint(resetter);
      await blocker.query(`BEGIN; SELECT * FROM "User" WHERE "id" = 1 FOR UPDATE`);
      const pid = (await blocker.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid;
      const started = performance.now();
      await assert.rejects(restoreSnapshot(resetter, { lockTimeoutMs: 300 }), (error: unknown) => {
        assert.ok(isLanesError(error, 'DATABASE_RESET_FAILED'), String(error));
        assert.match(error.message, new RegExp(`pid ${pid}\\b`));
        assert.match(error.message, /"lingering-test"/);
        assert.match(error.message, /idle in transaction/);
        assert.match(error.message, /"public"\."User"|public\."User"/);
        assert.match(error.hint ?? '', /swap/);
        assert.doesNotMatch(error.message, /password/i);
        return true;
      });
      assert.ok(performance.now() - started < 5000, 'gave up within about the lock timeout');
      assert.deepEqual(await fingerprint(resetter), changed, 'the database is unchanged, sequences included');
      await blocker.query('ROLLBACK');
      await restoreSnapshot(resetter, { lockTimeoutMs: 300 });
      assert.deepEqual(await fingerprint(resetter), built.demo.content);
    } finally {
      await end(blocker);
      await end(resetter);
    }
  });

  test('fails with DATABASE_RESET_FAILED on a database without a snapshot', async () => {
    await withDatabase(templates.plain, async (client) => {
      assert.equal(await hasSnapshot(client), false);
      await assert.rejects(restoreSnapshot(client), (error: unknown) => {
        assert.ok(isLanesError(error, 'DATABASE_RESET_FAILED'), String(error));
        assert.match(error.message, /has no snapshot/);
        assert.match(error.message, new RegExp(templates.plain));
        return true;
      });
    });
    await withDatabase(templates.demo, async (client) => assert.equal(await hasSnapshot(client), true));
  });

  test('without the right to set session_replication_role, checks foreign keys (cycle included) and lets user triggers fire', async () => {
    const role = `${prefix}_owner`;
    const password = randomBytes(12).toString('hex');
    const template = `${prefix}_owned`;
    await admin(`CREATE ROLE ${id(role)} LOGIN NOSUPERUSER PASSWORD ${pg.escapeLiteral(password)}`);
    await admin(`CREATE DATABASE ${id(template)} OWNER ${id(role)}`);
    const asRole = (database: string): string => {
      const url = new URL(urlOf(database));
      url.username = role;
      url.password = password;
      return url.toString();
    };
    const run = async <T>(database: string, fn: (client: pg.Client) => Promise<T>): Promise<T> => {
      const client = new pg.Client({ connectionString: asRole(database) });
      client.on('error', () => undefined);
      await client.connect();
      clients.add(client);
      try {
        return await fn(client);
      } finally {
        await end(client);
      }
    };
    const content = await run(template, async (client) => {
      await client.query(EDGE_SCHEMA);
      await takeSnapshot(client);
      return fingerprint(client);
    });
    const database = await clone(template);
    await run(database, async (client) => {
      await client.query(`UPDATE edge.a SET b_id = NULL; DELETE FROM edge.b; DELETE FROM edge.a; DELETE FROM edge.nodes WHERE id = 4; UPDATE edge.kinds SET label = 'x'`);
      const summary = await restoreSnapshot(client);
      assert.equal(summary.triggers, 'fired');
      const restored = await fingerprint(client);
      const { 'edge.audit': audit, ...rest } = restored;
      const { 'edge.audit': templateAudit, ...templateRest } = content;
      assert.deepEqual(rest, templateRest, 'every other table, the cycle of foreign keys included, is as in the template');
      assert.notEqual(audit, templateAudit, 'the insert trigger of edge.nodes fired during the restore');
      const notes = await client.query<{ n: number }>(`SELECT count(*)::int AS n FROM edge.audit WHERE note = 'nodes INSERT'`);
      assert.equal(notes.rows[0]?.n, 1 + 4, 'the template row plus one per re-inserted node');
    });
  });

  test('refuses a bad lockTimeoutMs with INVALID_OPTION naming it', async () => {
    await withDatabase(templates.plain, async (client) => {
      for (const lockTimeoutMs of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '10' as unknown as number]) {
        await assert.rejects(restoreSnapshot(client, { lockTimeoutMs }), (error: unknown) => isLanesError(error, 'INVALID_OPTION') && /lockTimeoutMs/.test(error.message));
      }
    });
  });
});
