import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { procStat } from '../../../src/state/proc.js';
import { displayPath, runDatabaseCommand } from '../../../src/databases/template/command.js';
import { tempDir } from '../../helpers/tmp.js';

const URL_WITH_SECRET = 'postgres://builder:s3cret-pw@127.0.0.1:5999/e2e_tpl_build';

describe('a command run for a database', () => {
  it('gets the database in DATABASE_URL and PG*, runs in its folder, and its output tail is kept without the password', async (t) => {
    const dir = await tempDir(t);
    const outcome = await runDatabaseCommand({ command: 'echo "$DATABASE_URL $PGDATABASE $PGPORT"; pwd', cwd: dir }, URL_WITH_SECRET);
    assert.equal(outcome.ok, true);
    assert.equal(outcome.reason, 'exit code 0');
    assert.match(outcome.tail, /e2e_tpl_build e2e_tpl_build 5999/);
    assert.ok(outcome.tail.includes(dir), 'ran in its folder');
    assert.doesNotMatch(outcome.tail, /s3cret-pw/);
  });

  it('reports a failing command by its exit code and keeps only the last 30 lines', async () => {
    const outcome = await runDatabaseCommand({ command: 'for i in $(seq 1 40); do echo line $i; done; exit 3' }, URL_WITH_SECRET);
    assert.equal(outcome.ok, false);
    assert.equal(outcome.reason, 'exit code 3');
    assert.equal(outcome.timedOut, false);
    const lines = outcome.tail.split('\n');
    assert.equal(lines.length, 30);
    assert.equal(lines[0], 'line 11');
    assert.equal(lines.at(-1), 'line 40');
  });

  it('kills a command past its deadline and says so', async () => {
    const outcome = await runDatabaseCommand({ command: 'exec sleep 30', timeoutMs: 300 }, URL_WITH_SECRET);
    assert.equal(outcome.ok, false);
    assert.equal(outcome.timedOut, true);
    assert.match(outcome.reason, /^timed out after 0 s$/);
    assert.ok(outcome.durationMs < 10_000, `ended in ${Math.round(outcome.durationMs)} ms`);
  });

  it('kills what the command started too when it runs past its deadline, even a child that keeps the output open', async () => {
    const outcome = await runDatabaseCommand({ command: 'sleep 30 & echo "child $!"; wait; echo never', timeoutMs: 300 }, URL_WITH_SECRET);
    assert.equal(outcome.timedOut, true);
    assert.equal(outcome.ok, false);
    assert.ok(outcome.durationMs < 10_000, `ended in ${Math.round(outcome.durationMs)} ms`);
    const child = Number(/child (\d+)/.exec(outcome.tail)?.[1]);
    assert.ok(child > 0, outcome.tail);
    assert.doesNotMatch(outcome.tail, /never/);
    let alive = true;
    for (let i = 0; i < 50 && alive; i++) {
      alive = procStat(child) !== undefined && procStat(child)?.state !== 'Z';
      if (alive) await sleep(100);
    }
    assert.equal(alive, false, `the command's child ${child} is gone`);
  });

  it('shows paths inside the current folder relative to it, others as they are', () => {
    assert.equal(displayPath(join(process.cwd(), 'prisma', 'seed.ts')), join('prisma', 'seed.ts'));
    assert.equal(displayPath('/elsewhere/seed.ts'), '/elsewhere/seed.ts');
  });
});
