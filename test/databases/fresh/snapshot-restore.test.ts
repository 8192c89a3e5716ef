import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import pg from 'pg';
import { restoreSnapshot } from '../../../src/databases/fresh/snapshot-restore.js';
import { hasSnapshot, SNAPSHOT_SCHEMA, takeSnapshot } from '../../../src/databases/template/snapshot.js';
import { isLanesError } from '../../../src/errors.js';
import { EDGE_SCHEMA, useSnapshotTemplates } from '../snapshot-templates.js';

const { admin, built, clients, clone, connect, end, fingerprint, id, prefix, templates, urlOf, withDatabase } = useSnapshotTemplates();

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
