/**
 * The snapshot a template keeps for the `truncate` reset: a copy of the template's rows kept inside
 * the database itself (schema {@link SNAPSHOT_SCHEMA}), with the script that puts them back.
 *
 * - {@link takeSnapshot} runs once, on the freshly migrated and seeded template; every clone of the
 *   template carries the snapshot along.
 * - `restoreSnapshot` (fresh/snapshot-restore.ts) runs that script on a lane database before a test,
 *   while the lane's servers keep their sessions open.
 */
import { escapeIdentifier, escapeLiteral, type Client } from 'pg';
import { debugLogger } from '../../log.js';

const debug = debugLogger('databases:snapshot');

/**
 * The schema of the toolkit's own in a template (and its clones) holding the snapshot: copies of
 * the rows, the metadata and the restore script. The app's schemas do not see it, and Prisma
 * ignores it (it only looks at the schemas of its datasource).
 */
export const SNAPSHOT_SCHEMA = 'e2e_lanes_snapshot';

/** Bumped when the layout of {@link SNAPSHOT_SCHEMA} changes. */
const SNAPSHOT_FORMAT = 1;

/** What a snapshot holds. */
export interface SnapshotSummary {
  /** Tables snapshotted (a partitioned table counts once, with the rows of all its partitions). */
  tables: number;
  /** Rows copied, over all tables. */
  rows: number;
  /** Sequences whose position is kept. */
  sequences: number;
}

/** A table of the app as the snapshot sees it. Private to this module. */
interface TableRow {
  oid: string;
  schema: string;
  name: string;
  partitioned: boolean;
  columns: string[];
  overriding: boolean;
}

export const APP_SCHEMA_FILTER = `n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema' AND n.nspname <> ${escapeLiteral(SNAPSHOT_SCHEMA)}`;

/**
 * Tables of the app's schemas: ordinary and partitioned tables, not the partitions themselves (their
 * rows are read and put back through the partitioned table). Generated columns are left out: they
 * are computed again on insert.
 */
const SELECT_TABLES = `
SELECT c.oid::int8::text AS oid, n.nspname AS schema, c.relname AS name, c.relkind = 'p' AS partitioned,
  coalesce(array_agg(a.attname::text ORDER BY a.attnum) FILTER (WHERE a.attgenerated = ''), '{}') AS columns,
  coalesce(bool_or(a.attidentity = 'a'), false) AS overriding
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND ${APP_SCHEMA_FILTER}
GROUP BY c.oid, n.nspname, c.relname, c.relkind
ORDER BY n.nspname, c.relname`;

/** Foreign keys between tables, partitions mapped to their partitioned table. */
const SELECT_FOREIGN_KEYS = `
SELECT DISTINCT coalesce(pg_partition_root(k.conrelid), k.conrelid)::int8::text AS child,
  coalesce(pg_partition_root(k.confrelid), k.confrelid)::int8::text AS parent
FROM pg_constraint k WHERE k.contype = 'f'`;

const SELECT_SEQUENCES = `
SELECT n.nspname AS schema, c.relname AS name
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'S' AND ${APP_SCHEMA_FILTER}
ORDER BY n.nspname, c.relname`;

const qualified = (schema: string, name: string): string => `${escapeIdentifier(schema)}.${escapeIdentifier(name)}`;
export const inSnapshot = (name: string): string => qualified(SNAPSHOT_SCHEMA, name);

/**
 * Takes the snapshot of the database `client` is connected to: a freshly migrated and seeded
 * database (the template being built), that nobody else writes to meanwhile. Replaces any earlier
 * snapshot. In one transaction, it copies into {@link SNAPSHOT_SCHEMA}:
 *
 * - the rows of every table of the app's schemas (every schema but `pg_*`, `information_schema` and
 *   the snapshot's own; `_prisma_migrations` included), generated columns left out;
 * - `tables`: per table its schema, name, the columns to restore, whether it has an identity column
 *   `GENERATED ALWAYS` (restored with `OVERRIDING SYSTEM VALUE`), and its position in the restore
 *   order: parents before children by foreign keys. Tables in a cycle of foreign keys (two tables
 *   referencing each other, or longer) come after the others in name order, `in_fk_cycle` set;
 *   a self-reference does not count. The order matters little: the restore re-inserts every table
 *   in ONE statement, and foreign keys are checked (when they are) at its end, so self-references
 *   and cycles, deferrable or not, restore as they are;
 * - `sequences`: every sequence of the app's schemas with its `last_value` and `is_called`;
 * - `meta`: the format, the counts and the restore script.
 */
export async function takeSnapshot(client: Client): Promise<SnapshotSummary> {
  const started = performance.now();
  await client.query('BEGIN');
  try {
    await client.query(`DROP SCHEMA IF EXISTS ${escapeIdentifier(SNAPSHOT_SCHEMA)} CASCADE; CREATE SCHEMA ${escapeIdentifier(SNAPSHOT_SCHEMA)}`);
    const tables = (await client.query<TableRow>(SELECT_TABLES)).rows;
    const keys = (await client.query<{ child: string; parent: string }>(SELECT_FOREIGN_KEYS)).rows;
    const { order, cyclic } = restoreOrder(tables, keys);
    const sequences = (await client.query<{ schema: string; name: string }>(SELECT_SEQUENCES)).rows;

    const copies: Array<{ table: TableRow; copy: string; rows: number }> = [];
    for (const [index, table] of order.entries()) {
      const copy = `t${String(index + 1).padStart(4, '0')}`;
      const columns = table.columns.map(escapeIdentifier).join(', ');
      const source = `${table.partitioned ? '' : 'ONLY '}${qualified(table.schema, table.name)}`;
      // A table without any column left to copy still keeps its row count.
      const select = columns === '' ? `SELECT FROM ${source}` : `SELECT ${columns} FROM ${source}`;
      const result = await client.query(`CREATE TABLE ${inSnapshot(copy)} AS ${select}`);
      copies.push({ table, copy, rows: result.rowCount ?? 0 });
    }

    await client.query(`
      CREATE TABLE ${inSnapshot('tables')} (
        position int PRIMARY KEY, schema_name text NOT NULL, table_name text NOT NULL, snapshot_table text NOT NULL,
        columns text[] NOT NULL, overriding_system_value boolean NOT NULL, partitioned boolean NOT NULL,
        in_fk_cycle boolean NOT NULL, rows bigint NOT NULL);
      CREATE TABLE ${inSnapshot('sequences')} (
        schema_name text NOT NULL, sequence_name text NOT NULL, last_value bigint NOT NULL, is_called boolean NOT NULL,
        PRIMARY KEY (schema_name, sequence_name));
      CREATE TABLE ${inSnapshot('meta')} (
        format int NOT NULL, taken_at timestamptz NOT NULL DEFAULT now(), tables int NOT NULL, rows bigint NOT NULL,
        sequences int NOT NULL, restore_sql text NOT NULL)`);
    if (copies.length > 0) {
      const rows = copies.map(({ table, copy, rows: count }, index) => ({
        position: index + 1,
        schema_name: table.schema,
        table_name: table.name,
        snapshot_table: copy,
        columns: table.columns,
        overriding_system_value: table.overriding,
        partitioned: table.partitioned,
        in_fk_cycle: cyclic.has(table.oid),
        rows: count,
      }));
      await client.query(
        `INSERT INTO ${inSnapshot('tables')}
         SELECT position, schema_name, table_name, snapshot_table, ARRAY(SELECT jsonb_array_elements_text(columns)),
           overriding_system_value, partitioned, in_fk_cycle, rows
         FROM jsonb_to_recordset($1::jsonb) AS t(position int, schema_name text, table_name text, snapshot_table text,
           columns jsonb, overriding_system_value boolean, partitioned boolean, in_fk_cycle boolean, rows bigint)`,
        [JSON.stringify(rows)],
      );
    }
    if (sequences.length > 0) {
      await client.query(
        `INSERT INTO ${inSnapshot('sequences')} ${sequences
          .map(({ schema, name }) => `SELECT ${escapeLiteral(schema)}, ${escapeLiteral(name)}, last_value, is_called FROM ${qualified(schema, name)}`)
          .join(' UNION ALL ')}`,
      );
    }
    const summary: SnapshotSummary = { tables: copies.length, rows: copies.reduce((sum, { rows }) => sum + rows, 0), sequences: sequences.length };
    const script = restoreScript(copies, Number((await client.query<{ v: string }>(`SELECT current_setting('server_version_num') AS v`)).rows[0]?.v));
    await client.query(`INSERT INTO ${inSnapshot('meta')} (format, tables, rows, sequences, restore_sql) VALUES ($1, $2, $3, $4, $5)`, [
      SNAPSHOT_FORMAT,
      summary.tables,
      summary.rows,
      summary.sequences,
      script,
    ]);
    await client.query('COMMIT');
    debug('snapshot taken in %d ms: %o', Math.round(performance.now() - started), summary);
    return summary;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

/**
 * Parents before children (Kahn's algorithm, ties in name order). Tables left over are part of a
 * cycle (or depend on one); they come last, in name order. Private to this module.
 */
function restoreOrder(tables: readonly TableRow[], keys: ReadonlyArray<{ child: string; parent: string }>): { order: TableRow[]; cyclic: Set<string> } {
  const byOid = new Map(tables.map((table) => [table.oid, table]));
  const parents = new Map<string, Set<string>>(tables.map((table) => [table.oid, new Set<string>()]));
  for (const { child, parent } of keys) {
    if (child !== parent && byOid.has(child) && byOid.has(parent)) parents.get(child)?.add(parent);
  }
  const order: TableRow[] = [];
  const placed = new Set<string>();
  let progress = true;
  while (progress) {
    progress = false;
    for (const table of tables) {
      if (placed.has(table.oid)) continue;
      if ([...(parents.get(table.oid) ?? [])].every((parent) => placed.has(parent))) {
        order.push(table);
        placed.add(table.oid);
        progress = true;
      }
    }
  }
  const cyclic = new Set(tables.filter((table) => !placed.has(table.oid)).map((table) => table.oid));
  for (const table of tables) if (cyclic.has(table.oid)) order.push(table);
  return { order, cyclic };
}

/**
 * The restore, as one multi-statement script run inside the caller's transaction. Private to this module.
 * 1. `session_replication_role = replica` when the role may set it (superuser, or `GRANT SET ON
 *    PARAMETER session_replication_role` on PostgreSQL 15+): no foreign-key checks (the rows were
 *    consistent in the template), no user triggers. Otherwise the checks run at the end of step 3.
 * 2. Every snapshotted table emptied (`ONLY`, so tables the test created by inheritance are left
 *    alone; a partitioned table with its partitions): in replica mode `LOCK TABLE … IN ACCESS EXCLUSIVE
 *    MODE` then a `DELETE` of each (faster than `TRUNCATE` for the small tables of a seed), else one `TRUNCATE`.
 * 3. One `INSERT` per non-empty table, all in ONE statement (data-modifying `WITH`), in restore order.
 * 4. `setval` of every sequence, from the snapshot.
 * 5. The summary row.
 */
function restoreScript(copies: ReadonlyArray<{ table: TableRow; copy: string; rows: number }>, serverVersion: number): string {
  const privileged = serverVersion >= 150000
    ? `current_setting('is_superuser')::boolean OR has_parameter_privilege('session_replication_role', 'SET')`
    : `current_setting('is_superuser')::boolean`;
  const statements = [`SELECT set_config('session_replication_role', 'replica', true) WHERE ${privileged}`];
  if (copies.length > 0) {
    const targets = copies.map(({ table }) => `${table.partitioned ? '' : 'ONLY '}${qualified(table.schema, table.name)}`);
    // In replica mode (no foreign-key triggers), LOCK + DELETE empties small tables several times faster
    // than TRUNCATE, which makes new files for every table; the same exclusive locks keep the app's
    // writers out until the end. Without it, TRUNCATE (a DELETE would trip ON DELETE RESTRICT keys).
    const locked = copies.map(({ table }) => qualified(table.schema, table.name)).join(', ');
    const deletes = copies.map(({ table }) => `DELETE FROM ${table.partitioned ? '' : 'ONLY '}${qualified(table.schema, table.name)};`).join('\n    ');
    statements.push(
      `DO $e2e_lanes$ BEGIN\n  IF current_setting('session_replication_role') = 'replica' THEN\n    LOCK TABLE ${locked} IN ACCESS EXCLUSIVE MODE;\n    ${deletes}\n  ELSE\n    TRUNCATE TABLE ${targets.join(', ')};\n  END IF;\nEND $e2e_lanes$`,
    );
  }
  const inserts = copies
    .filter(({ rows }) => rows > 0)
    .map(({ table, copy }) => {
      const columns = table.columns.map(escapeIdentifier).join(', ');
      const target = qualified(table.schema, table.name);
      const insert = columns === ''
        ? `INSERT INTO ${target} SELECT FROM ${inSnapshot(copy)}`
        : `INSERT INTO ${target} (${columns})${table.overriding ? ' OVERRIDING SYSTEM VALUE' : ''} SELECT ${columns} FROM ${inSnapshot(copy)}`;
      return insert;
    });
  // The last INSERT is the main statement, the others data-modifying WITH queries of it.
  const last = inserts.pop();
  if (last) statements.push(inserts.length === 0 ? last : `WITH ${inserts.map((insert, index) => `i${index + 1} AS (${insert})`).join(',\n  ')}\n${last}`);
  statements.push(
    `SELECT setval(format('%I.%I', schema_name, sequence_name)::regclass, last_value, is_called) FROM ${inSnapshot('sequences')}`,
    `SELECT tables, rows::int8::text AS rows, sequences, current_setting('session_replication_role') AS role FROM ${inSnapshot('meta')}`,
  );
  return statements.join(';\n');
}

/** True when the database `client` is connected to holds a snapshot that `restoreSnapshot` can use. */
export async function hasSnapshot(client: Client): Promise<boolean> {
  const { rows } = await client.query<{ found: boolean }>(
    `SELECT to_regclass(${escapeLiteral(`${escapeIdentifier(SNAPSHOT_SCHEMA)}.meta`)}) IS NOT NULL AS found`,
  );
  if (!rows[0]?.found) return false;
  const meta = await client.query<{ format: number }>(`SELECT format FROM ${inSnapshot('meta')}`);
  return meta.rows[0]?.format === SNAPSHOT_FORMAT;
}

