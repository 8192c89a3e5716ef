import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  assertNothingLeft,
  expectExit,
  ledger,
  type LedgerName,
  reportTests,
  sandbox,
  serverProcesses,
  startPlaywright,
  suite,
  useSharedPostgres,
} from './helpers.ts';
import { HOSTILE_PROJECTS } from '../fixtures/suites/hostile-names.config.ts';
import { playwrightChromium } from '../../src/playwright/browser.js';

// Ports 6100-6199: this file's block.
const PORTS = [6100, 6199] as const;

const shared = useSharedPostgres();

/** A loopback port nothing listens on (bound, then closed). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('bad input fails clearly or is survived', { concurrency: false }, () => {
  test('Postgres unreachable: POSTGRES_UNREACHABLE with its hint in bounded time, nothing left behind', async (t) => {
    const box = await sandbox(t, { ports: PORTS });
    const port = await closedPort();
    const run = startPlaywright(box, {
      config: suite('basic'),
      env: { E2E_LANES_DATABASE_URL: `postgres://nobody:secret-unreachable@127.0.0.1:${port}/postgres` },
      timeoutMs: 90_000,
    });
    const exit = await run.exit;
    expectExit(exit, 'nonzero', run.output());
    assert.ok(exit.ms < 60_000, `the run failed after ${exit.ms} ms (bound: 60 s)`);
    const output = run.output();
    assert.match(output, /LanesError: \[POSTGRES_UNREACHABLE\] Could not connect/);
    assert.match(output, new RegExp(`Could not connect to PostgreSQL at 127\\.0\\.0\\.1:${port}/postgres`));
    assert.match(output, /Hint: Start PostgreSQL on 127\.0\.0\.1:\d+, or fix/);
    assert.doesNotMatch(output, /secret-unreachable/);
    await assertNothingLeft(box, [run.runId]);
    assert.deepEqual(serverProcesses({ stateDir: box.stateDir }), []);
  });

  test('no browser: BROWSER_NOT_FOUND with the install command, before any lane starts', async (t) => {
    if (playwrightChromium()) {
      t.skip("Playwright's own Chromium is installed here, so there is always a browser");
      return;
    }
    const box = await sandbox(t, { ports: PORTS });
    const run = startPlaywright(box, { config: suite('basic'), env: { E2E_LANES_CHROMIUM: '/nonexistent/chromium' } });
    expectExit(await run.exit, 'nonzero', run.output());
    const output = run.output();
    assert.match(output, /\[BROWSER_NOT_FOUND\] No Chromium found/);
    assert.match(output, /npx playwright install chromium/);
    assert.doesNotMatch(output, /lane project .* up in/);
    await assertNothingLeft(box, [run.runId]);
  });

  test('corrupt, empty and foreign-version state files are kept aside with a warning and the run passes', async (t) => {
    const box = await sandbox(t, { ports: PORTS });
    const files: LedgerName[] = ['allocated-ports.json', 'allocated-databases.json', 'allocated-lanes.json'];
    const kinds = { 'allocated-ports.json': 'e2e-lanes/ports', 'allocated-databases.json': 'e2e-lanes/databases', 'allocated-lanes.json': 'e2e-lanes/lanes' };
    const damages = [
      { name: 'corrupt', content: (_file: LedgerName) => '{"kind": "e2e-lanes/po' },
      { name: 'empty', content: (_file: LedgerName) => '' },
      { name: 'foreign-version', content: (file: LedgerName) => JSON.stringify({ kind: kinds[file], version: 99, updatedAt: '', entries: [{ future: true }] }) },
    ];
    // Three runs, rotating the damages, so every file meets every damage once.
    for (let round = 0; round < 3; round++) {
      const written = new Map<string, string>();
      for (const [index, file] of files.entries()) {
        const damage = damages[(index + round) % damages.length]!;
        const content = damage.content(file);
        await writeFile(join(box.stateDir, file), content);
        written.set(file, content);
      }
      const before = new Set(readdirSync(box.stateDir));
      const run = startPlaywright(box, { config: suite('basic'), args: ['--project', 'alpha'] });
      expectExit(await run.exit, 0, run.output());
      for (const file of files) {
        const aside = readdirSync(box.stateDir).filter((name) => !before.has(name) && name.startsWith(`${file}.corrupt-`));
        assert.equal(aside.length, 1, `round ${round}: ${file} was kept aside once (found ${aside.join(', ')})`);
        assert.equal(readFileSync(join(box.stateDir, aside[0]!), 'utf8'), written.get(file), `round ${round}: the bad ${file} is kept as it was`);
        assert.match(run.output(), new RegExp(`warning: state file \\S*${file.replace('.', '\\.')} was unreadable`), `round ${round}: a warning names ${file}`);
        assert.doesNotThrow(() => ledger(box.stateDir, file), `round ${round}: ${file} is valid JSON again`);
      }
      await assertNothingLeft(box, [run.runId]);
    }
  });

  test('a migration that fails half-way: MIGRATION_FAILED naming the file, no template, build or lane database left', async (t) => {
    const box = await sandbox(t, { ports: PORTS });
    const prefix = 'ftmig';
    const drop = async () => shared.server.dropDatabases(await shared.server.databasesStartingWith(`${prefix}_`));
    await drop();
    t.after(drop);
    const run = startPlaywright(box, { config: suite('broken-migration'), prefix, env: { FAULTS_PREFIX: prefix } });
    const exit = await run.exit;
    expectExit(exit, 'nonzero', run.output());
    const output = run.output();
    assert.match(output, /LanesError: \[MIGRATION_FAILED\] /);
    assert.match(output, /20250302000000_second[/\\]migration\.sql/);
    assert.deepEqual(await shared.server.databasesStartingWith(`${prefix}_`), [], 'no template, build or lane database');
    await assertNothingLeft(box, [run.runId], { prefix: prefix });
  });

  test('hostile project names: the suite passes, database names are safe, `postgres` still exists', async (t) => {
    const box = await sandbox(t, { ports: PORTS });
    const run = startPlaywright(box, { config: suite('hostile-names'), env: { FAULTS_WORKERS: '2' } });
    expectExit(await run.exit, 0, run.output());
    const report = await run.report();
    const tests = reportTests(report);
    assert.deepEqual(tests.map((test) => test.project).sort(), [...HOSTILE_PROJECTS].sort());
    assert.ok(tests.every((test) => test.results[0]?.status === 'passed'));
    const names = [...run.output().matchAll(/, database (\S+)$/gm)].map((match) => match[1]!);
    assert.equal(names.length, HOSTILE_PROJECTS.length, `one database per project in:\n${run.output()}`);
    for (const name of names) {
      assert.match(name, /^[a-z][a-z0-9_]*$/);
      assert.ok(Buffer.byteLength(name) <= 63, `${name} fits in 63 bytes`);
    }
    assert.equal(new Set(names).size, names.length, 'distinct databases');
    assert.equal((await shared.server.query("SELECT 1 FROM pg_database WHERE datname = 'postgres'")).length, 1, 'the postgres database still exists');
    await assertNothingLeft(box, [run.runId]);
    assert.ok(existsSync(box.stateDir));
  });
});
