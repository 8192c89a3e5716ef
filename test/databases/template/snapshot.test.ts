import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SNAPSHOT_SCHEMA } from '../../../src/databases/template/snapshot.js';
import { useSnapshotTemplates } from '../snapshot-templates.js';

const { built, templates, withDatabase } = useSnapshotTemplates();

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
