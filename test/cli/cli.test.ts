import assert from 'node:assert/strict';
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Readable } from 'node:stream';
import { test, type TestContext } from 'node:test';
import { laneLedger } from '../../src/lanes/records/lane-ledger.js';
import { PortAllocator } from '../../src/ports/index.js';
import { isPidAlive, newOwner } from '../../src/state/index.js';
import { procStat } from '../../src/state/proc.js';
import { runCli } from '../helpers/cli.js';
import { exited } from '../helpers/processes.js';
import { tempDir } from '../helpers/tmp.js';

const root = new URL('../../', import.meta.url).pathname;
const BIN = join(root, 'bin/e2e-lanes.js');
const CONFIG = 'test/fixtures/cli/lanes.config.ts';

const cli = runCli;

/**
 * A process that looks like a lane server of `runId`. Its environment names this test process as
 * the owner, so the host-wide orphan scan of concurrent runs leaves it alone: only the ledger entry
 * (whose owner is dead) makes it garbage.
 */
function fakeServer(runId: string, ownerPid = process.pid): number {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], {
    detached: true,
    stdio: 'ignore',
    env: { ...process.env, E2E_LANES_SERVER: 'api', E2E_LANES_RUN_ID: runId, E2E_LANES_OWNER_PID: String(ownerPid) },
  });
  child.unref();
  return child.pid!;
}

/** A pid that is certainly dead: a child that already exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
  await exited(child);
  return child.pid!;
}

test('prints help and lists every command', async () => {
  const result = await cli(['--help']);
  assert.equal(result.code, 0);
  for (const command of ['status', 'gc', 'doctor', 'up', 'down']) assert.match(result.stdout, new RegExp(`\\b${command}\\b`));
  const gcHelp = await cli(['gc', '--help']);
  assert.equal(gcHelp.code, 0);
  assert.match(gcHelp.stdout, /--dry-run/);
});

test('rejects unknown commands and flags with a clear error', async () => {
  const command = await cli(['frobnicate']);
  assert.notEqual(command.code, 0);
  assert.match(command.stderr, /unknown command 'frobnicate'/);
  const flag = await cli(['status', '--frobnicate']);
  assert.notEqual(flag.code, 0);
  assert.match(flag.stderr, /unknown option '--frobnicate'/);
  const down = await cli(['down', '--config', CONFIG]);
  assert.notEqual(down.code, 0);
  assert.match(down.stderr, /--run <id> or --all/);
});

test('status shows live and dead lanes, as a table and as JSON', async (t) => {
  const stateDir = await tempDir(t);
  const ports = new PortAllocator({ stateDir, runId: 'live-run', range: [34200, 34299] });
  // (Not necessarily 34200: a port another test holds right now is skipped.)
  const live = await ports.allocatePortsForProject('checkout');
  const dead = await deadPid();
  await new PortAllocator({ stateDir, runId: 'dead-run', range: [34200, 34299] }).allocatePortsForProject('search', {
    owner: newOwner('dead-run', dead),
  });

  const table = await cli(['status', '--config', CONFIG, '--state-dir', stateDir]);
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, new RegExp(`live-run\\s+checkout\\s+backend:${live.ports.backend} frontend:${live.ports.frontend}\\b`));
  assert.match(table.stdout, /dead-run\s+search.*dead \(owner pid \d+ is gone\)/);

  const json = await cli(['--config', CONFIG, '--state-dir', stateDir, 'status', '--json']);
  const body = JSON.parse(json.stdout) as { lanes: Array<{ runId: string; ownerAlive: boolean }> };
  assert.deepEqual(body.lanes.map((lane) => [lane.runId, lane.ownerAlive]), [['live-run', true], ['dead-run', false]]);
});

test('status with no state says there are no lanes', async (t) => {
  const result = await cli(['--config', CONFIG, '--state-dir', await tempDir(t)]);
  assert.equal(result.code, 0);
  assert.match(result.stdout, /No lanes\./);
});

test('gc --dry-run shows what a dead run left and gc removes it, server processes included', { timeout: 120_000 }, async (t) => {
  const stateDir = await tempDir(t);
  const dead = await deadPid();
  const server = fakeServer('crashed-run');
  t.after(() => {
    if (isPidAlive(server)) process.kill(-server, 'SIGKILL');
  });
  const owner = newOwner('crashed-run', dead);
  await new PortAllocator({ stateDir, runId: 'crashed-run', range: [34300, 34399] }).allocatePortsForProject('cart', { owner });
  await laneLedger(stateDir).update((doc) => {
    doc.entries.push({ runId: 'crashed-run', project: 'cart', owner, status: 'up', ports: {}, servers: [{ name: 'api', pid: server, logFile: '/dev/null' }], logDir: stateDir });
  });

  const dry = await cli(['gc', '--dry-run', '--config', CONFIG, '--state-dir', stateDir]);
  assert.equal(dry.code, 0, dry.stderr);
  assert.match(dry.stdout, /would remove 1 lane\(s\), 1 server process\(es\), 0 database\(s\), 1 port entr/);
  assert.ok(isPidAlive(server), 'dry run must not kill');

  const real = await cli(['gc', '--config', CONFIG, '--state-dir', stateDir]);
  assert.equal(real.code, 0, real.stderr);
  assert.match(real.stdout, /removed 1 lane\(s\), 1 server process\(es\)/);
  assert.equal(isPidAlive(server), false);
  const after = await cli(['--config', CONFIG, '--state-dir', stateDir]);
  // The embedded server gc started may still be listed (as run "embedded-postgres") when another
  // process on the host joined it meanwhile: it keeps running for that one. The dead run is gone.
  assert.doesNotMatch(after.stdout, /crashed-run/);
  assert.match(after.stdout, /No lanes\.|^RUN .*\n(embedded-postgres .*\n)+$/);
});

test('gc --dry-run counts the server processes gc then kills: one per process group, children included', { timeout: 120_000 }, async (t) => {
  const stateDir = await tempDir(t);
  const dead = await deadPid();
  // A server whose owner died, with three children in its process group (like sh → npm → node): all carry its marks.
  // Marked kept, so that the orphan hunt of another suite's run on this host leaves it to this state folder's gc
  // (which finds it by its record).
  const leader = spawn(process.execPath, ['-e', "for (let i = 0; i < 3; i++) require('node:child_process').spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' }); setInterval(() => {}, 1000);"], {
    detached: true,
    stdio: 'ignore',
    env: { ...process.env, E2E_LANES_SERVER: 'api', E2E_LANES_RUN_ID: 'crashed-family', E2E_LANES_OWNER_PID: String(dead), E2E_LANES_KEEP: '1' },
  });
  leader.unref();
  t.after(() => {
    try {
      process.kill(-leader.pid!, 'SIGKILL');
    } catch {
      // gone
    }
  });
  const members = (): number[] =>
    readdirSync('/proc').filter((name) => /^\d+$/.test(name) && procStat(Number(name))?.pgrp === leader.pid && isPidAlive(Number(name))).map(Number);
  for (let poll = 0; poll < 100 && members().length < 4; poll++) await sleep(50);
  assert.equal(members().length, 4, 'the server and its three children run');
  const owner = newOwner('crashed-family', dead);
  await laneLedger(stateDir).update((doc) => {
    doc.entries.push({ runId: 'crashed-family', project: 'cart', owner, status: 'up', ports: {}, servers: [{ name: 'api', pid: leader.pid!, logFile: '/dev/null' }], logDir: stateDir });
  });

  const dry = await cli(['gc', '--dry-run', '--config', CONFIG, '--state-dir', stateDir]);
  assert.equal(dry.code, 0, dry.stderr);
  assert.match(dry.stdout, /would remove 1 lane\(s\), 1 server process\(es\)/);
  const real = await cli(['gc', '--config', CONFIG, '--state-dir', stateDir]);
  assert.equal(real.code, 0, real.stderr);
  assert.match(real.stdout, /removed 1 lane\(s\), 1 server process\(es\)/);
  assert.deepEqual(members(), [], 'the whole group is gone');
});

test('up stops by itself once down removed its lane', { timeout: 120_000 }, async (t) => {
  const stateDir = await tempDir(t);
  const { child, output } = await startUp(t, stateDir);
  const runId = /Press Ctrl-C to stop the lane \(run (\S+)\)/.exec(output())?.[1];
  assert.ok(runId, output());
  const down = await cli(['down', '--run', runId, '--config', CONFIG, '--state-dir', stateDir]);
  assert.equal(down.code, 0, down.stderr);
  const started = Date.now();
  const ended = await Promise.race([exited(child).then(() => true), sleep(15_000).then(() => false)]);
  assert.ok(ended, `up still runs 15 s after down:\n${output()}`);
  assert.ok(Date.now() - started < 10_000);
  assert.equal(child.exitCode, 0, output());
  assert.match(output(), /The lane was removed from allocated-lanes\.json \(e2e-lanes down\); stopping what is left of it\./);
  const status = await cli(['--config', CONFIG, '--state-dir', stateDir]);
  assert.match(status.stdout, /No lanes\./);
});

test('doctor checks everything and fails when Postgres is unreachable', { timeout: 120_000 }, async (t) => {
  const stateDir = await tempDir(t);
  const ok = await cli(['doctor', '--config', CONFIG, '--state-dir', stateDir]);
  assert.match(ok.stdout, /templates and ready copies.*\d+ template\(s\) of prefix \w+, \d+ ready cop(y|ies)/);
  assert.equal(ok.code, 0, ok.stdout + ok.stderr);
  for (const check of ['state file', 'embedded PostgreSQL', 'PostgreSQL reachable', 'CREATE DATABASE … TEMPLATE', 'WITH (FORCE)', 'max_connections', 'browser', 'ports']) {
    assert.ok(ok.stdout.includes(check), `missing check ${check}:\n${ok.stdout}`);
  }
  const bad = await cli(['doctor', '--config', CONFIG, '--state-dir', stateDir], {
    E2E_LANES_DATABASE_URL: 'postgres://someone:s3cret-pass@127.0.0.1:1/postgres',
  });
  assert.equal(bad.code, 1);
  assert.match(bad.stdout, /✗ PostgreSQL reachable: .*127\.0\.0\.1:1\/postgres/);
  assert.ok(!bad.stdout.includes('s3cret-pass') && !bad.stderr.includes('s3cret-pass'), 'the password leaked');
});

test('up holds a lane until Ctrl-C, and down removes a run', { timeout: 120_000 }, async (t) => {
  const stateDir = await tempDir(t);
  const { child, output } = await startUp(t, stateDir);
  assert.match(output(), /DATABASE_URL\s+postgres:\/\/[^:]+:\*\*\*@/);
  const url = /api\s+(http:\/\/localhost:\d+)/.exec(output())?.[1];
  assert.ok(url, output());
  assert.equal((await fetch(`${url}/health`)).status, 200);
  const database = /\/(clitest_[a-z0-9_]+)/.exec(output())?.[1];
  assert.ok(database, output());

  child.kill('SIGINT');
  await exited(child);
  assert.equal(child.exitCode, 0);
  await assert.rejects(fetch(`${url}/health`));
  const status = await cli(['--config', CONFIG, '--state-dir', stateDir]);
  assert.match(status.stdout, /No lanes\./);

  // down: a run recorded with a dead owner and a live fake server.
  const dead = await deadPid();
  const server = fakeServer('orphan-run');
  const owner = newOwner('orphan-run', dead);
  await new PortAllocator({ stateDir, runId: 'orphan-run', range: [34400, 34499] }).allocatePortsForProject('x', { owner });
  await laneLedger(stateDir).update((doc) => {
    doc.entries.push({ runId: 'orphan-run', project: 'x', owner: { ...owner, kept: true }, status: 'up', ports: {}, servers: [{ name: 'api', pid: server, logFile: '/dev/null' }], logDir: stateDir });
  });
  const down = await cli(['down', '--run', 'orphan-run', '--config', CONFIG, '--state-dir', stateDir]);
  assert.equal(down.code, 0, down.stderr);
  assert.match(down.stdout, /tore down 1 run\(s\): 1 server process\(es\)/);
  assert.equal(isPidAlive(server), false);
});

/** Starts `e2e-lanes up --project api` and resolves once it holds its lane; the child is killed after the test. */
async function startUp(t: TestContext, stateDir: string): Promise<{ child: ChildProcessByStdio<null, Readable, Readable>; output(): string }> {
  const child = spawn(process.execPath, [BIN, 'up', '--project', 'api', '--config', CONFIG, '--state-dir', stateDir], {
    cwd: root,
    env: { ...process.env, E2E_LANES_RUN_ID: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.after(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let out = '';
  child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`up printed no lane within 60 s:\n${out}`)), 60_000);
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('Press Ctrl-C')) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  return { child, output: () => out };
}
