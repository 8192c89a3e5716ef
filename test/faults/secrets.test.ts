import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import pg from 'pg';
import { laneRoleKey, laneRolePassword } from '../../src/databases/sql/roles.js';
import {
  assertNothingLeft,
  attachmentText,
  expectExit,
  reportTests,
  sandbox,
  startPlaywright,
  suite,
  useSharedPostgres,
} from './helpers.ts';

// Ports 6300-6399: this file's block.
const PORTS = [6300, 6399] as const;
/** The prefix of every database of this test: its own template, built by its own role. */
const PREFIX = 'ftleak';

const shared = useSharedPostgres();

/** Every file under `dir`, recursively. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .map((name) => join(dir, name))
    .filter((path) => statSync(path, { throwIfNoEntry: false })?.isFile());
}

test('nothing the toolkit writes holds the database password: state files, server logs, console, report', async (t) => {
  const box = await sandbox(t, { ports: PORTS });
  // A role of its own with a long, distinctive password, on the shared embedded server.
  const role = `ftleak_${randomBytes(4).toString('hex')}`;
  const password = `pw-${randomBytes(20).toString('hex')}-Zq`;
  const cleanup = async (): Promise<void> => {
    await shared.server.dropDatabases(await shared.server.databasesStartingWith(`${PREFIX}_`));
    // The lane roles are dropped with their lanes; the template's owner role the given role made goes here.
    await shared.server.query(
      `DO $e$ DECLARE r text; BEGIN FOR r IN SELECT rolname FROM pg_roles WHERE left(rolname, ${PREFIX.length + 1}) = '${PREFIX}_' LOOP EXECUTE format('DROP ROLE %I', r); END LOOP; END $e$`,
    );
    await shared.server.query(`DROP ROLE IF EXISTS ${pg.escapeIdentifier(role)}`);
  };
  t.after(cleanup);
  await shared.server.dropDatabases(await shared.server.databasesStartingWith(`${PREFIX}_`));
  // CREATEROLE too: each lane gets a role of its own (database.laneRoles), whose password must not leak either.
  await shared.server.query(`CREATE ROLE ${pg.escapeIdentifier(role)} LOGIN CREATEDB CREATEROLE PASSWORD ${pg.escapeLiteral(password)}`);
  const port = new URL(shared.server.adminUrl).port;
  const givenUrl = `postgres://${role}:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;

  const run = startPlaywright(box, {
    config: suite('leak'),
    prefix: PREFIX,
    // A CREATEDB role may not create the server-side lane registry: this test is about one machine.
    env: { E2E_LANES_DATABASE_URL: givenUrl, E2E_LANES_REGISTRY: 'file', FAULTS_PREFIX: PREFIX },
  });
  const exit = await run.exit;
  expectExit(exit, 1, run.output()); // one test fails on purpose

  // The redaction was really exercised: the backend printed its URL and password, the log shows ***.
  const logs = filesUnder(join(box.stateDir, 'lanes')).filter((path) => path.endsWith('backend.log'));
  assert.equal(logs.length, 1, `one backend log: ${logs.join(', ')}`);
  const log = readFileSync(logs[0]!, 'utf8');
  const printed = new RegExp(`backend: DATABASE_URL=postgres://(${PREFIX}_[a-z0-9_]+):\\*\\*\\*@127\\.0\\.0\\.1:${port}/(${PREFIX}_[a-z0-9_]+)`).exec(log);
  assert.ok(printed, `the backend printed its lane role's URL: ${log}`);
  assert.equal(printed[1], printed[2], 'the lane connects as its own role, named like its database');
  const lanePassword = laneRolePassword(laneRoleKey(givenUrl, run.runId), printed[2]!);
  assert.match(log, /backend: connecting with password \*\*\*/);
  assert.match(log, /backend: admin URL in my environment: no/, 'servers get their lane URL, not the admin URL');

  const tests = reportTests(await run.report());
  const failed = tests.find((item) => item.results[0]?.status === 'failed')?.results[0];
  const attachment = failed?.attachments.find((item) => item.name === 'backend.log');
  assert.ok(attachment, 'the failing test carries the backend log');
  assert.match(await attachmentText(attachment), /connecting with password \*\*\*/);

  const places: Array<[string, string]> = [['console output of the run', run.output()]];
  for (const file of [...filesUnder(box.stateDir), ...filesUnder(run.outputDir), run.reportFile]) places.push([file, readFileSync(file, 'utf8')]);
  for (const [where, text] of places) {
    for (const form of new Set([password, encodeURIComponent(password)])) {
      assert.ok(!text.includes(form), `${where} contains the password`);
    }
    assert.ok(!text.includes(lanePassword), `${where} contains the lane role's password`);
  }
  assert.ok(places.length >= 6, `looked at ${places.map(([where]) => where).join(', ')}`);

  await assertNothingLeft(box, [run.runId], { prefix: PREFIX });
});
